/**
 * Runs every doctor check in order and returns the findings: the
 * configuration, the snapshot, each socket emailng serves here (probed in
 * its protocol), LDAP and Redis when configured, and, when Postfix or
 * Dovecot are installed, whether their configuration leads to those
 * sockets. Paths of the peers' tools and of systemd's unit directories
 * are options, so tests can point at a private Postfix.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { parse } from "smol-toml";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { readSnapshotMeta } from "../core/directory/snapshot-store.js";
import { checkLdap, checkRedis } from "./dependencies.js";
import { dictAuthFiles, judgeDovecot } from "./dovecot-check.js";
import {
  type DeployedTables,
  describeAddress,
  type Endpoint,
  readSystemdSockets,
  SERVICE_OF,
  SYSTEMD_UNIT_DIRECTORIES,
  servedEndpoints,
} from "./endpoints.js";
import { type Finding, fail, ok, skip, warn } from "./findings.js";
import { judgePostfix, POSTFIX_PARAMETERS, parsePostconf } from "./postfix-check.js";
import {
  judgeDict,
  judgePolicy,
  judgeSocketmap,
  type ProbeTarget,
  probeDict,
  probePolicy,
  probeSocketmap,
} from "./probes.js";
import { judgeSnapshot, type SnapshotReading } from "./snapshot-check.js";

export interface DoctorOptions {
  configPath: string;
  /** Default /usr/sbin/postconf; not installed = the Postfix check is skipped. */
  postconf?: string;
  /** postconf -c DIR. */
  postfixConfigDirectory?: string;
  /** Default /usr/bin/doveconf. */
  doveconf?: string;
  /** doveconf -c FILE. */
  dovecotConfig?: string;
  systemdUnitDirectories?: readonly string[];
  /** Per probe. Default 5 s. */
  timeoutMs?: number;
  now?: () => number;
}

const QUOTA_KEY = "priv/quota/storage";

/** The top-level tables written in the configuration file. */
export function deployedTables(configText: string): DeployedTables {
  try {
    return new Set(Object.keys(parse(configText)));
  } catch {
    return new Set(["verifyd", "policyd", "quotad"]);
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(file: string, args: string[], timeoutMs: number) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error?.message ?? "") });
    });
  });
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

async function probeEndpoint(
  endpoint: Endpoint,
  config: DeepReadonly<Config>,
  timeoutMs: number,
): Promise<Finding> {
  const address = endpoint.address;
  const check = `${endpoint.kind} socket`;
  const where = `${describeAddress(address)} (${endpoint.key})`;
  if (address.kind === "unresolved") {
    return warn(
      check,
      `${endpoint.key} is the systemd socket "${address.name}", but no installed socket unit has FileDescriptorName=${address.name} with a UNIX path`,
      `install deploy/systemd/${SERVICE_OF[endpoint.kind]}*.socket in /etc/systemd/system and systemctl enable --now it`,
    );
  }
  if (address.kind === "tcp" && !isLoopback(address.host)) {
    return skip(
      check,
      `${where}: TCP listener on another address is not probed (its allow-list decides who may connect)`,
    );
  }
  const target: ProbeTarget =
    address.kind === "unix" ? { path: address.path } : { host: address.host, port: address.port };
  const domain = config.directory.primary_domain;
  switch (endpoint.kind) {
    case "verifyd": {
      const key = domain === "" ? "emailng-doctor.invalid" : domain;
      return judgeSocketmap(
        where,
        key,
        domain !== "",
        await probeSocketmap(target, "domain", key, timeoutMs),
      );
    }
    case "policyd":
    case "quotad": {
      const recipient = `postmaster@${domain === "" ? "emailng-doctor.invalid" : domain}`;
      return judgePolicy(endpoint.kind, where, await probePolicy(target, recipient, timeoutMs));
    }
    case "verifyd-dict":
      return judgeDict(
        endpoint.kind,
        where,
        await probeDict(target, "auth", "shared/userdb/emailng-doctor", timeoutMs),
      );
    case "quotad-feed": {
      const name = config.quotad.feed.dict_name === "" ? "quotaclone" : config.quotad.feed.dict_name;
      return judgeDict(endpoint.kind, where, await probeDict(target, name, QUOTA_KEY, timeoutMs));
    }
    default: {
      const unexpected: never = endpoint.kind;
      throw new Error(`unknown endpoint kind ${String(unexpected)}`);
    }
  }
}

async function checkPostfix(endpoints: readonly Endpoint[], options: DoctorOptions): Promise<Finding[]> {
  const postconf = options.postconf ?? "/usr/sbin/postconf";
  if (!endpoints.some((endpoint) => ["verifyd", "policyd", "quotad"].includes(endpoint.kind))) return [];
  if (!executable(postconf)) return [skip("postfix", `${postconf} is not installed: Postfix not checked`)];
  const directory = options.postfixConfigDirectory;
  const args = [...(directory === undefined ? [] : ["-c", directory]), ...POSTFIX_PARAMETERS];
  const result = await run(postconf, args, 15_000);
  if (result.code !== 0) {
    return [
      fail(
        "postfix",
        `postconf failed: ${result.stderr.trim().split("\n")[0] ?? ""}`,
        "run postconf by hand and correct main.cf (postfix check)",
      ),
    ];
  }
  return judgePostfix(parsePostconf(result.stdout), endpoints);
}

async function checkDovecot(
  config: DeepReadonly<Config>,
  endpoints: readonly Endpoint[],
  options: DoctorOptions,
): Promise<Finding[]> {
  const doveconf = options.doveconf ?? "/usr/bin/doveconf";
  if (!endpoints.some((endpoint) => endpoint.kind === "verifyd-dict" || endpoint.kind === "quotad-feed"))
    return [];
  if (!executable(doveconf)) return [skip("dovecot", `${doveconf} is not installed: Dovecot not checked`)];
  const file = options.dovecotConfig;
  const result = await run(doveconf, [...(file === undefined ? [] : ["-c", file]), "-n"], 15_000);
  if (result.code !== 0) {
    return [
      fail(
        "dovecot",
        `doveconf -n failed: ${result.stderr.trim().split("\n")[0] ?? ""}`,
        "run doveconf -n by hand and correct dovecot.conf",
      ),
    ];
  }
  const authFiles = new Map<string, string | null>();
  for (const path of dictAuthFiles(result.stdout)) {
    try {
      authFiles.set(path, readFileSync(path, "utf8"));
    } catch {
      authFiles.set(path, null);
    }
  }
  return judgeDovecot(
    { doveconf: result.stdout, authFiles, feedDictName: config.quotad.feed.dict_name },
    endpoints,
  );
}

export async function runDoctor(config: DeepReadonly<Config>, options: DoctorOptions): Promise<Finding[]> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const findings: Finding[] = [ok("config", `${options.configPath} is valid`)];

  let reading: SnapshotReading;
  try {
    const meta = readSnapshotMeta(config.snapshot.path);
    reading = meta === null ? { kind: "missing" } : { kind: "read", meta };
  } catch (error) {
    reading = { kind: "unreadable", reason: error instanceof Error ? error.message : String(error) };
  }
  let deployed: DeployedTables;
  try {
    deployed = deployedTables(readFileSync(options.configPath, "utf8"));
  } catch {
    deployed = new Set(["verifyd", "policyd", "quotad"]);
  }
  const systemd = readSystemdSockets(options.systemdUnitDirectories ?? SYSTEMD_UNIT_DIRECTORIES);
  const endpoints = servedEndpoints(config, deployed, systemd);
  findings.push(
    ...judgeSnapshot(reading, {
      path: config.snapshot.path,
      maxAgeMs: config.snapshot.max_age,
      nowMs: now(),
      needsInternalView: endpoints.some((endpoint) => endpoint.kind === "verifyd-dict"),
    }),
  );
  for (const daemon of ["verifyd", "policyd", "quotad"]) {
    if (!deployed.has(daemon))
      findings.push(skip(daemon, `no [${daemon}] table in the configuration: not run here`));
  }
  findings.push(
    ...(await Promise.all(endpoints.map((endpoint) => probeEndpoint(endpoint, config, timeoutMs)))),
  );
  findings.push(await checkLdap(config), await checkRedis(config));
  findings.push(...(await checkPostfix(endpoints, options)));
  findings.push(...(await checkDovecot(config, endpoints, options)));
  return findings;
}
