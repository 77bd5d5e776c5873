/**
 * Interleaved A/B measurement of verifyd (or of the bare core/net server, or
 * the do-nothing ceiling): two builds, or one build under two sets of Node
 * flags, or two servers of one build, on the same
 * generated snapshot, driven by the suites' generator in turn (A B, B A,
 * A B … so neither side always runs right after the other), and reported as
 * medians over the rounds (RSS: the largest seen in any round). On a shared machine the other load changes from
 * second to second; interleaving spreads it over both sides, and server CPU
 * per request (from /proc) moves much less with it than requests per second.
 *
 *   npm run bench:build && node dist-bench/bench/ab.js --a /tmp/ab-base/dist [--b DIST]
 *     [--a-flags "--max-semi-space-size=16"] [--b-flags "…"]
 *     [--protocol socketmap,dict] [--server verifyd|core-net|do-nothing] [--a-server S] [--b-server S]
 *     [--users 10000]
 *     [--rounds 4] [--duration 3s] [--warmup 1s] [--concurrency 50]
 *
 * A dist directory is what `tsc -p tsconfig.build.json` writes (it holds
 * cli/main.js) or dist-bench; --b defaults to this checkout's dist-bench.
 * This tool builds nothing. --server core-net (or do-nothing) starts
 * bench/servers/core-net-server.js (do-nothing-server.js) from the dist
 * instead of verifyd, for both sides or, with --a-server/--b-server, for
 * one: `--a dist-bench --a-server do-nothing` puts verifyd beside the
 * ceiling. Those servers exist in dist-bench directories only.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { makeTempDir, removeTempDir } from "../test/harness/process.js";
import { parseDuration } from "./lib/args.js";
import { measure } from "./lib/measure.js";
import { median } from "./lib/stats.js";
import { textTable } from "./lib/table.js";
import { startChildServer } from "./targets/child-server.js";
import { REPOSITORY_ROOT, type RunningTarget } from "./targets/target.js";
import { verifydConfigText } from "./targets/verifyd.js";
import { buildWorkloadDirectory, type WorkloadDirectory } from "./workload/directory.js";
import { dictPool, socketmapPool } from "./workload/pools.js";

type Protocol = "socketmap" | "dict";

type ServerKind = "verifyd" | "core-net" | "do-nothing";
const SERVER_KINDS: readonly string[] = ["verifyd", "core-net", "do-nothing"];

interface Side {
  label: "A" | "B";
  dist: string;
  nodeFlags: string[];
  server: ServerKind;
}

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

function fail(message: string): never {
  console.error(`ab: ${message}`);
  process.exit(2);
}

function positive(name: string, fallback: string): number {
  const value = Number(flag(name, fallback));
  if (!Number.isSafeInteger(value) || value <= 0) fail(`--${name} must be a positive integer`);
  return value;
}

function verifydConfig(work: string, protocol: Protocol, directory: WorkloadDirectory): string {
  const path = join(work, "emailng.toml");
  writeFileSync(
    path,
    verifydConfigText({
      snapshotPath: protocol === "dict" ? directory.internalSnapshotPath : directory.snapshotPath,
      socketPath: join(work, "verifyd.sock"),
      ...(protocol === "dict" ? { dictPath: join(work, "verifyd-dict.sock") } : {}),
    }),
  );
  return path;
}

async function startSide(
  side: Side,
  protocol: Protocol,
  directory: WorkloadDirectory,
  parent: string,
): Promise<RunningTarget> {
  const work = join(parent, `${protocol}-${side.label}`);
  mkdirSync(work, { recursive: true });
  const logPath = join(work, "server.log");
  if (side.server !== "verifyd") {
    const path = join(work, `${side.server}.sock`);
    return startChildServer({
      name: `${side.server} ${side.label}`,
      file: process.execPath,
      args: [
        ...side.nodeFlags,
        join(side.dist, `bench/servers/${side.server}-server.js`),
        "--protocol",
        protocol,
        "--unix",
        path,
      ],
      logPath,
      endpoint: { path },
      ...(protocol === "dict" ? { spec: { dictName: "auth" } } : {}),
    });
  }
  const config = verifydConfig(work, protocol, directory);
  const path = join(work, protocol === "dict" ? "verifyd-dict.sock" : "verifyd.sock");
  return startChildServer({
    name: `verifyd ${side.label}`,
    file: process.execPath,
    args: [...side.nodeFlags, join(side.dist, "cli/main.js"), "verifyd", "--config", config],
    logPath,
    endpoint: { path },
    startTimeoutMs: 180_000,
    // A socket that accepts is not enough: the snapshot must be loaded and answering.
    ready: () => answersKnown(protocol, path, directory),
    ...(protocol === "dict" ? { spec: { dictName: "auth" } } : {}),
  });
}

/** One request for a name the snapshot holds, on a fresh connection; true once it is answered found. */
function answersKnown(protocol: Protocol, path: string, directory: WorkloadDirectory): Promise<boolean> {
  const login = directory.keys.logins[0] ?? "";
  const address = directory.keys.primaries[0] ?? "";
  const request =
    protocol === "dict"
      ? `H3\t2\t0\t\tauth\nLshared/userdb/${login}\t${login}\n`
      : `${Buffer.byteLength(`recipient ${address}`)}:recipient ${address},`;
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5_000);
    let reply = "";
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString("latin1");
      clearTimeout(timer);
      socket.destroy();
      resolve(protocol === "dict" ? reply.startsWith("O") : reply.includes(":OK"));
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

interface Round {
  side: Side["label"];
  round: number;
  requestsPerSecond: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerRequest: number;
  /** Largest RSS of the server seen during the round (MB). */
  rssMb: number;
  errors: number;
}

function summaryRow(label: string, rounds: readonly Round[]): string[] {
  const pick = (read: (round: Round) => number) => median(rounds.map(read));
  return [
    label,
    Math.round(pick((round) => round.requestsPerSecond)).toLocaleString("en-US"),
    `${(pick((round) => round.p50Us) / 1000).toFixed(2)} ms`,
    `${(pick((round) => round.p99Us) / 1000).toFixed(2)} ms`,
    pick((round) => round.cpuUsPerRequest).toFixed(1),
    `${Math.max(...rounds.map((round) => round.rssMb)).toFixed(1)} MB`,
    String(rounds.reduce((sum, round) => sum + round.errors, 0)),
  ];
}

async function compare(
  protocol: Protocol,
  sides: readonly [Side, Side],
  directory: WorkloadDirectory,
  work: string,
  settings: { rounds: number; durationMs: number; warmupMs: number; connections: number },
): Promise<void> {
  const poolFile = join(work, `pool-${protocol}.json`);
  const pool =
    protocol === "dict"
      ? dictPool(directory.keys, 50_000, 9_001)
      : socketmapPool(directory.keys, "recipient", 50_000, 4_2001);
  writeFileSync(poolFile, JSON.stringify(pool));
  const running: RunningTarget[] = [];
  try {
    for (const side of sides) running.push(await startSide(side, protocol, directory, work));
    const rounds: Round[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      // A B, then B A: neither side always inherits the other's leftovers (page cache, CPU clocks).
      const order = round % 2 === 1 ? [0, 1] : [1, 0];
      for (const index of order) {
        const side = sides[index]!;
        const target = running[index]!;
        const { result, server: usage } = await measure(
          target,
          protocol,
          poolFile,
          settings.connections,
          { warmupMs: settings.warmupMs, durationMs: settings.durationMs, maxRequests: 50_000_000 },
          work,
        );
        const entry: Round = {
          side: side.label,
          round,
          requestsPerSecond: result.requestsPerSecond,
          p50Us: result.latencyUs.p50,
          p99Us: result.latencyUs.p99,
          cpuUsPerRequest: usage.cpuUsPerRequest,
          rssMb: usage.maxRssMb,
          errors: result.errors,
        };
        rounds.push(entry);
        console.log(
          `  ${protocol} round ${round} ${side.label}: ${Math.round(entry.requestsPerSecond).toLocaleString("en-US")}/s, p50 ${(entry.p50Us / 1000).toFixed(2)} ms, p99 ${(entry.p99Us / 1000).toFixed(2)} ms, CPU ${entry.cpuUsPerRequest.toFixed(1)} µs/request, RSS ${entry.rssMb.toFixed(1)} MB, statuses ${JSON.stringify(result.statuses)}${entry.errors > 0 ? `, ${entry.errors} errors` : ""}`,
        );
      }
    }
    const rowsFor = (label: Side["label"]) => rounds.filter((round) => round.side === label);
    const [a, b] = [rowsFor("A"), rowsFor("B")];
    const ratio = (read: (round: Round) => number) => median(b.map(read)) / median(a.map(read));
    console.log(
      `\n${protocol}, ${settings.connections} connections, ${settings.rounds} rounds of ${settings.durationMs / 1000} s (medians)`,
    );
    console.log(
      textTable(
        ["side", "req/s", "p50", "p99", "CPU µs/req", "max RSS", "errors"],
        [summaryRow(`A ${describe(sides[0])}`, a), summaryRow(`B ${describe(sides[1])}`, b)],
      ),
    );
    console.log(
      `B/A: req/s ×${ratio((round) => round.requestsPerSecond).toFixed(2)}, CPU per request ×${ratio((round) => round.cpuUsPerRequest).toFixed(2)}\n`,
    );
  } finally {
    await Promise.all(running.map((target) => target.stop()));
  }
}

function describe(side: Side): string {
  const flags = side.nodeFlags.length > 0 ? ` (node ${side.nodeFlags.join(" ")})` : "";
  return `${side.server} ${side.dist}${flags}`;
}

function splitFlags(text: string): string[] {
  return text.split(/\s+/).filter((part) => part.length > 0);
}

async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    console.log(
      "usage: ab --a DIST [--b DIST] [--a-flags F] [--b-flags F] [--protocol socketmap,dict] [--server S] [--a-server S] [--b-server S] [--users N] [--rounds N] [--duration 3s] [--warmup 1s] [--concurrency N]",
    );
    return;
  }
  const aDist = resolve(flag("a", ""));
  const bDist = resolve(flag("b", join(REPOSITORY_ROOT, "dist-bench")));
  const serverFor = (label: "a" | "b"): ServerKind => {
    const server = flag(`${label}-server`, flag("server", "verifyd"));
    if (!SERVER_KINDS.includes(server)) fail(`--${label}-server is one of ${SERVER_KINDS.join(", ")}`);
    return server as ServerKind;
  };
  const servers = { a: serverFor("a"), b: serverFor("b") };
  for (const [dist, server] of [
    [aDist, servers.a],
    [bDist, servers.b],
  ] as const) {
    const entry = server === "verifyd" ? "cli/main.js" : `bench/servers/${server}-server.js`;
    if (!existsSync(join(dist, entry)))
      fail(`${join(dist, entry)} missing: build it first (this tool builds nothing)`);
  }
  const protocols = flag("protocol", "socketmap,dict").split(",");
  for (const protocol of protocols) {
    if (protocol !== "socketmap" && protocol !== "dict") fail(`unknown protocol ${protocol}`);
  }
  const durationMs = parseDuration(flag("duration", "3s")) ?? fail("--duration: e.g. 3s or 500ms");
  const warmupMs = parseDuration(flag("warmup", "1s")) ?? fail("--warmup: e.g. 1s");
  const settings = {
    rounds: positive("rounds", "4"),
    durationMs,
    warmupMs,
    connections: positive("concurrency", "50"),
  };
  const users = positive("users", "10000");
  const sides: [Side, Side] = [
    { label: "A", dist: aDist, nodeFlags: splitFlags(flag("a-flags", "")), server: servers.a },
    { label: "B", dist: bDist, nodeFlags: splitFlags(flag("b-flags", "")), server: servers.b },
  ];
  const work = makeTempDir("ab");
  try {
    console.log(`building a directory of ${users.toLocaleString("en-US")} users …`);
    const directory = await buildWorkloadDirectory(work, users);
    for (const protocol of protocols as Protocol[]) {
      await compare(protocol, sides, directory, work, settings);
    }
  } finally {
    removeTempDir(work);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
