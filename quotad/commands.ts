/**
 * The `emailng quota …` commands: import (doveadm output into the usage
 * store), report (who is over, near, biggest, stale) and explain (one
 * address, resolved and judged exactly as the daemon would). This file
 * wires configuration, store, snapshot and output; the work is in
 * import.ts, report.ts and explain.ts.
 *
 * Exit statuses: 0 done, 1 usage error (bad arguments), 2 invalid
 * configuration, 3 failed (input refused, store or snapshot unreadable —
 * nothing written).
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { EXIT_USAGE, exitWith } from "../cli/io.js";
import type { ProgramContext, ProgramDefinition } from "../cli/programs.js";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { Directory } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { readSnapshot } from "../core/directory/snapshot-store.js";
import { explainAddress, formatExplanationText, usernamesToExplain } from "./explain.js";
import { parseDoveadmQuota } from "./import.js";
import { repliesFromConfig } from "./replies.js";
import { buildReport, formatReportText } from "./report.js";
import {
  type OpenedUsageStore,
  openUsageStore,
  quotaSettingsFromConfig,
  resolverOptionsFromConfig,
} from "./settings.js";

export const EXIT_FAILED = 3;

function fail(context: ProgramContext, what: string, error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  context.io.err(`${what} failed: ${message}\n`);
  return exitWith(EXIT_FAILED, "emailng.quota_failed", message);
}

/**
 * Positional arguments for commands whose ProgramDefinition only passes
 * options on: collected before the action and handed over as an option.
 */
function positional(command: Command, name: string, usage: string, required: boolean): void {
  command.allowExcessArguments(true).usage(`[options] ${usage}`);
  command.hook("preAction", (self) => {
    const args = self.args;
    if (args.length > 1 || (required && args.length === 0)) {
      self.error(`expected ${usage}, got ${args.length} argument(s)`, { exitCode: EXIT_USAGE });
    }
    self.setOptionValue(name, args[0]);
  });
}

interface LoadedSnapshot {
  current: CurrentSnapshot;
  directory: Directory;
}

function loadSnapshot(config: DeepReadonly<Config>, now: number): LoadedSnapshot {
  const { directory, meta } = readSnapshot(config.snapshot.path);
  const resolver = new Resolver(directory, resolverOptionsFromConfig(config));
  const fresh = now - Date.parse(meta.createdAt) <= config.snapshot.max_age;
  return { current: { resolver, meta, fresh }, directory };
}

async function withStore<T>(
  context: ProgramContext,
  what: string,
  readonly: boolean,
  work: (opened: OpenedUsageStore) => Promise<T>,
): Promise<T> {
  let opened: OpenedUsageStore;
  try {
    opened = await openUsageStore(context.config, `emailng-quota-${what}`, { readonly });
  } catch (error) {
    return fail(context, `quota ${what}`, error);
  }
  try {
    return await work(opened);
  } catch (error) {
    return fail(context, `quota ${what}`, error);
  } finally {
    await opened.close();
  }
}

async function readInput(file: string): Promise<string> {
  if (file !== "-") return readFile(file, "utf8");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const quotaImport: ProgramDefinition = {
  name: "quota import",
  summary: "load mailbox usage from `doveadm -f tab quota get -A` output (FILE, or - for standard input)",
  configure: (command) => {
    positional(command, "file", "[FILE]", false);
    command.option("--dry-run", "parse and report, write nothing");
  },
  async run(context) {
    const file = typeof context.options["file"] === "string" ? context.options["file"] : "-";
    let text: string;
    try {
      text = await readInput(file);
    } catch (error) {
      return fail(context, "quota import", error);
    }
    const parsed = parseDoveadmQuota(text);
    if (!parsed.ok) {
      for (const problem of parsed.problems) context.io.err(`${file === "-" ? "stdin" : file}: ${problem}\n`);
      return exitWith(EXIT_FAILED, "emailng.quota_import_refused", "input refused; nothing imported");
    }
    const skipped =
      parsed.skippedRoots > 0 ? ` (${parsed.skippedRoots} lines of second quota roots ignored)` : "";
    if (context.options["dryRun"] === true) {
      context.io.out(`would import usage of ${parsed.updates.length} users${skipped}\n`);
      return;
    }
    await withStore(context, "import", false, async ({ store }) => {
      await store.write(parsed.updates, Date.now());
    });
    context.io.out(
      `imported usage of ${parsed.updates.length} users into ${context.config.quotad.usage.backend}${skipped}\n`,
    );
  },
};

const quotaReport: ProgramDefinition = {
  name: "quota report",
  summary: "list mailboxes over and near their limit, the biggest, and stale usage",
  configure: (command) =>
    command
      .option("--json", "print the report as JSON")
      .option("--top <n>", "how many of the biggest users to list", "10")
      .option("--near <percent>", "list users at or above this share of their limit", "90"),
  async run(context) {
    const top = Number(context.options["top"]);
    const near = Number(context.options["near"]);
    if (!Number.isInteger(top) || top < 0 || !Number.isInteger(near) || near < 0 || near > 100) {
      return exitWith(EXIT_USAGE, "emailng.usage", "--top needs a whole number, --near one from 0 to 100");
    }
    const now = Date.now();
    let directory: Directory | null = null;
    try {
      directory = loadSnapshot(context.config, now).directory;
    } catch (error) {
      context.io.err(
        `no directory snapshot (${error instanceof Error ? error.message : String(error)}); limits unknown\n`,
      );
    }
    const entries = await withStore(context, "report", true, ({ store }) => store.list());
    const report = buildReport(entries, directory, quotaSettingsFromConfig(context.config), now, {
      top,
      nearPercent: near,
    });
    context.io.out(
      context.options["json"] === true ? `${JSON.stringify(report, null, 2)}\n` : formatReportText(report),
    );
  },
};

const quotaExplain: ProgramDefinition = {
  name: "quota explain",
  summary: "show how an address resolves, the usage and limit of each mailbox, and the answer quotad gives",
  configure: (command) => {
    positional(command, "address", "ADDRESS", true);
    command
      .option("--size <bytes>", "message size, as MAIL FROM SIZE= or at end of data", "0")
      .option("--end-of-message", "ask as at END-OF-MESSAGE instead of RCPT")
      .option("--json", "print the explanation as JSON");
  },
  async run(context) {
    const address = String(context.options["address"]);
    const size = Number(context.options["size"]);
    if (!Number.isSafeInteger(size) || size < 0) {
      return exitWith(EXIT_USAGE, "emailng.usage", "--size needs a whole number of bytes");
    }
    const now = Date.now();
    let snapshot: CurrentSnapshot | null = null;
    try {
      snapshot = loadSnapshot(context.config, now).current;
    } catch (error) {
      context.io.err(`no directory snapshot: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    const settings = quotaSettingsFromConfig(context.config);
    const state = context.options["endOfMessage"] === true ? "END-OF-MESSAGE" : "RCPT";
    const usernames = usernamesToExplain({ address, state, size, snapshot, settings });
    const readings = await withStore(context, "explain", true, async ({ store }) => store.read(usernames));
    const explanation = explainAddress({
      address,
      state,
      size,
      snapshot,
      readings,
      now,
      settings,
      replies: repliesFromConfig(context.config.quotad.replies),
    });
    context.io.out(
      context.options["json"] === true
        ? `${JSON.stringify(explanation, null, 2)}\n`
        : formatExplanationText(explanation),
    );
  },
};

export const QUOTA_COMMANDS: readonly ProgramDefinition[] = [quotaImport, quotaReport, quotaExplain];
