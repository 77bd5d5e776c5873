/**
 * The sync-agent commands: `emailng sync run|conflicts|serve|pull|daemon`
 * and `emailng cleanup run`. This file only wires configuration, lock,
 * logging and output to the modules that do the work.
 *
 * Exit statuses: 0 done (also "nothing changed"), 2 invalid configuration,
 * 3 the job failed (LDAP down, lock held, bad download: nothing was
 * published), 4 the safety rail refused to publish (see --force).
 */
import pino from "pino";
import { exitWith } from "../cli/io.js";
import type { ProgramContext, ProgramDefinition } from "../cli/programs.js";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { readSecretFile } from "../core/config/secrets.js";
import { Resolver } from "../core/directory/resolver.js";
import { readSnapshot } from "../core/directory/snapshot-store.js";
import { createLogger, type Logger } from "../core/log/logger.js";
import { installShutdownHandlers } from "../core/net/signals.js";
import { formatCleanupReport, planCleanup, runCleanup } from "./cleanup.js";
import { conflictsJson, findConflicts, formatConflictsText } from "./conflicts.js";
import { withLock } from "./lock.js";
import { pullSnapshot, startSnapshotServer } from "./replicate.js";
import { startScheduler } from "./scheduler.js";
import { formatSyncOutcome, syncOutcomeJson } from "./sync-output.js";
import { resolverOptionsFromConfig, runSync } from "./sync-run.js";

export const EXIT_FAILED = 3;
export const EXIT_REFUSED = 4;

/** Tools log to standard error, so standard output carries only their report. */
function toolLogger(config: DeepReadonly<Config>, program: string): Logger {
  return createLogger({ program, level: config.log.level, destination: pino.destination(2) });
}

function fail(context: ProgramContext, what: string, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  context.io.err(`${what} failed: ${message}\n`);
  return exitWith(EXIT_FAILED, "emailng.job_failed", message);
}

const syncRun: ProgramDefinition = {
  name: "sync run",
  summary: "build the directory snapshot from LDAP and legacy files, check it and publish it",
  configure: (command) =>
    command
      .option("--dry-run", "print what would change and publish nothing")
      .option("--incremental", "apply only the LDAP entries changed since the last sync")
      .option("--force", "publish even when the safety rail refuses (many addresses dropped)")
      .option("--json", "print the report as JSON"),
  async run(context) {
    const { config, options, io } = context;
    const log = toolLogger(config, "sync-agent");
    let outcome: Awaited<ReturnType<typeof runSync>>;
    try {
      outcome = await withLock(config.sync.lock_file, () =>
        runSync({
          config,
          mode: options["incremental"] === true ? "incremental" : "full",
          dryRun: options["dryRun"] === true,
          force: options["force"] === true,
          log,
        }),
      );
    } catch (error) {
      log.error({ err: error }, "sync failed");
      return fail(context, "sync run", error);
    }
    io.out(
      options["json"] === true
        ? `${JSON.stringify(syncOutcomeJson(outcome), null, 2)}\n`
        : formatSyncOutcome(outcome),
    );
    log.info(
      {
        status: outcome.status,
        conflicts: outcome.conflicts?.length ?? null,
        problems: outcome.problems.length,
      },
      "sync finished",
    );
    if (outcome.status === "refused") {
      io.err(`${outcome.refusal}\n`);
      exitWith(EXIT_REFUSED, "emailng.sync_refused", outcome.refusal);
    }
  },
};

const syncConflicts: ProgramDefinition = {
  name: "sync conflicts",
  summary: "list the conflicts in the published snapshot (aliases, cycles, loops, double claims)",
  configure: (command) => command.option("--json", "print the report as JSON"),
  async run(context) {
    const { config, options, io } = context;
    let conflicts: ReturnType<typeof findConflicts>;
    try {
      conflicts = findConflicts(
        readSnapshot(config.snapshot.path).directory,
        resolverOptionsFromConfig(config),
      );
    } catch (error) {
      return fail(context, "sync conflicts", error);
    }
    io.out(
      options["json"] === true
        ? `${JSON.stringify(conflictsJson(conflicts), null, 2)}\n`
        : formatConflictsText(conflicts),
    );
  },
};

/** Resolves when SIGTERM/SIGINT has run `stop`. */
function untilTerminated(log: Logger, stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const remove = installShutdownHandlers({
      log,
      onTerminate: stop,
      exit: () => {
        remove();
        resolve();
      },
    });
  });
}

const syncServe: ProgramDefinition = {
  name: "sync serve",
  summary: "publish the relay view of the snapshot over HTTP(S) for `sync pull` on the relays",
  async run(context) {
    const { config } = context;
    const serve = config.sync.serve;
    const log = createLogger({ program: "sync-serve", level: config.log.level });
    if (serve.listen === null || serve.token_file === "") {
      return fail(context, "sync serve", new Error("set sync.serve.listen and sync.serve.token_file"));
    }
    let server: Awaited<ReturnType<typeof startSnapshotServer>>;
    try {
      const token = await readSecretFile(serve.token_file);
      const tls =
        serve.tls_cert_file === "" ? undefined : { cert: serve.tls_cert_file, key: serve.tls_key_file };
      server = await startSnapshotServer({
        snapshotPath: config.snapshot.path,
        listen: { host: serve.listen.host, port: serve.listen.port },
        token,
        log,
        ...(tls === undefined ? {} : { tls }),
      });
    } catch (error) {
      return fail(context, "sync serve", error);
    }
    log.info({ url: server.url }, "serving the relay snapshot");
    await untilTerminated(log, () => server.close());
  },
};

async function pullOnce(config: DeepReadonly<Config>, log: Logger) {
  const pull = config.sync.pull;
  if (pull.from === "") throw new Error("sync.pull.from is not set");
  const token = pull.token_file === "" ? "" : await readSecretFile(pull.token_file);
  const result = await pullSnapshot({
    from: pull.from,
    token,
    timeoutMs: pull.timeout,
    snapshotPath: config.snapshot.path,
    ...(pull.ca_file === "" ? {} : { caFile: pull.ca_file }),
  });
  log.info({ status: result.status, version: result.meta.version }, "pull finished");
  return result;
}

const syncPull: ProgramDefinition = {
  name: "sync pull",
  summary: "on a relay: fetch the snapshot from the internal host, verify it and swap it in",
  async run(context) {
    const { config, io } = context;
    const log = toolLogger(config, "sync-pull");
    try {
      const result = await withLock(config.sync.lock_file, () => pullOnce(config, log));
      io.out(`${result.status}: snapshot version ${result.meta.version} ${result.meta.contentHash}\n`);
    } catch (error) {
      log.error({ err: error }, "pull failed; keeping the current snapshot");
      return fail(context, "sync pull", error);
    }
  },
};

async function cleanupOnce(config: DeepReadonly<Config>, log: Logger, dryRun: boolean) {
  const snapshot = readSnapshot(config.snapshot.path);
  const resolver = new Resolver(snapshot.directory, resolverOptionsFromConfig(config));
  const plan = planCleanup(snapshot.directory, resolver, config.cleanup.rules, {
    mailHost: config.cleanup.mail_host,
  });
  for (const warning of plan.warnings) log.warn({ warning }, "clean-up rule not applied");
  const report = await runCleanup(plan, {
    doveadm: config.cleanup.doveadm,
    doveadmConfig: config.cleanup.doveadm_config,
    dryRun,
    log,
  });
  return { report, warnings: plan.warnings };
}

const cleanupRun: ProgramDefinition = {
  name: "cleanup run",
  summary: "expunge old messages from Junk, Trash and other folders by the [cleanup] rules",
  configure: (command) =>
    command
      .option("--dry-run", "count what would be expunged and remove nothing")
      .option("--json", "print the report as JSON"),
  async run(context) {
    const { config, options, io } = context;
    const log = toolLogger(config, "cleanup");
    const dryRun = options["dryRun"] === true;
    try {
      const { report, warnings } = await withLock(config.sync.lock_file, () =>
        cleanupOnce(config, log, dryRun),
      );
      if (options["json"] === true) io.out(`${JSON.stringify({ ...report, warnings }, null, 2)}\n`);
      else {
        for (const warning of warnings) io.out(`warning: ${warning}\n`);
        io.out(formatCleanupReport(report, dryRun));
      }
      if (report.failures.length > 0) {
        exitWith(EXIT_FAILED, "emailng.cleanup_failures", `${report.failures.length} clean-up failures`);
      }
    } catch (error) {
      log.error({ err: error }, "clean-up failed");
      return fail(context, "cleanup run", error);
    }
  },
};

const syncDaemon: ProgramDefinition = {
  name: "sync daemon",
  summary:
    "run the [sync.schedule] jobs (sync, pull, clean-up) with a built-in scheduler, for hosts without systemd",
  async run(context) {
    const { config } = context;
    const log = createLogger({ program: "sync-daemon", level: config.log.level });
    const scheduler = startScheduler({
      config,
      log,
      jobs: {
        full: () => runSync({ config, mode: "full", dryRun: false, force: false, log }),
        incremental: () => runSync({ config, mode: "incremental", dryRun: false, force: false, log }),
        pull: () => pullOnce(config, log),
        cleanup: () => cleanupOnce(config, log, false),
      },
    });
    await untilTerminated(log, () => scheduler.stop());
  },
};

export const SYNC_AGENT_PROGRAMS: readonly ProgramDefinition[] = [
  syncRun,
  syncConflicts,
  syncServe,
  syncPull,
  syncDaemon,
  cleanupRun,
];
