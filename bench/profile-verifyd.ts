/**
 * Where verifyd spends its time and memory under the socketmap benchmark's
 * load: `npm run bench:build && node dist-bench/bench/profile-verifyd.js
 * [--users 100000] [--connections 50] [--duration 10s] [--heap]`.
 *
 * First run: verifyd (the compiled CLI) with `node --cpu-prof` on a
 * workload snapshot, driven by the socketmap generator, stopped with SIGTERM
 * (V8 writes the profile on exit): self time by function and by file.
 * Second run (memory): verifyd with bench/profile/memory-probe.ts preloaded,
 * loaded and idle: RSS, V8 heap committed and used per space, outside-heap
 * memory, before and after a full GC — and with --heap a heap snapshot
 * summarised by constructor. Raw .cpuprofile/.heapsnapshot go to
 * bench/results/profile/ for Chrome DevTools.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openSocketmapClient } from "../core/net/socketmap-client.js";
import { makeTempDir, removeTempDir, startDaemon, waitFor } from "../test/harness/process.js";
import { parseDuration } from "./lib/args.js";
import { measure } from "./lib/measure.js";
import { CLI_PATH, DIST_BENCH, REPOSITORY_ROOT } from "./targets/target.js";
import { buildWorkloadDirectory } from "./workload/directory.js";
import { socketmapPool } from "./workload/pools.js";

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per file, in ms, from a V8 .cpuprofile. */
export function summarizeCpuProfile(profile: CpuProfile, top = 30): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000);
  }
  const total = [...selfMs.values()].reduce((sum, ms) => sum + ms, 0);
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    const file = frame.url.replace(/^file:\/\//, "").replace(`${REPOSITORY_ROOT}/`, "") || "(native/V8)";
    const name = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const group = file.includes("node_modules/")
      ? file.replace(/.*node_modules\/((?:@[^/]+\/)?[^/]+).*/, "node_modules/$1")
      : file;
    files.set(group, (files.get(group) ?? 0) + ms);
  }
  const list = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, ms]) =>
          `${((ms / total) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${name}`,
      )
      .join("\n");
  return `total sampled: ${total.toFixed(0)} ms\n\nself time by file or package:\n${list(files)}\n\nself time by function:\n${list(functions)}`;
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size by node type and constructor name, in MB, from a .heapsnapshot. */
export function summarizeHeapSnapshot(heap: HeapSnapshot, top = 25): string {
  const fields = heap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeIndex = fields.indexOf("type");
  const nameIndex = fields.indexOf("name");
  const sizeIndex = fields.indexOf("self_size");
  const types = heap.snapshot.meta.node_types[0];
  const groups = new Map<string, { bytes: number; count: number }>();
  let total = 0;
  for (let offset = 0; offset < heap.nodes.length; offset += width) {
    const type = types[heap.nodes[offset + typeIndex]!] ?? "?";
    const size = heap.nodes[offset + sizeIndex]!;
    const name = type === "object" || type === "closure" ? heap.strings[heap.nodes[offset + nameIndex]!] : "";
    const key = name === "" ? `(${type})` : `${name} (${type})`;
    const entry = groups.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += size;
    entry.count += 1;
    groups.set(key, entry);
    total += size;
  }
  const lines = [...groups.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(
      ([name, entry]) =>
        `${(entry.bytes / 1024 / 1024).toFixed(1).padStart(7)} MB  ${String(entry.count).padStart(9)} objects  ${name}`,
    );
  return `heap total (self sizes): ${(total / 1024 / 1024).toFixed(1)} MB\n${lines.join("\n")}`;
}

async function startProfiled(
  work: string,
  label: string,
  snapshotPath: string,
  knownAddress: string,
  nodeFlags: string[],
): Promise<{ daemon: ReturnType<typeof startDaemon>; socketPath: string; logPath: string }> {
  const socketPath = join(work, `${label}.sock`);
  const configPath = join(work, `${label}.toml`);
  const logPath = join(work, `${label}.log`);
  writeFileSync(
    configPath,
    `[log]\nlevel = "warn"\n[snapshot]\npath = "${snapshotPath}"\nmax_age = "30d"\n[verifyd]\n[[verifyd.listen]]\nunix = "${socketPath}"\n`,
  );
  const daemon = startDaemon({
    name: "verifyd",
    file: process.execPath,
    args: [...nodeFlags, CLI_PATH, "verifyd", "--config", configPath],
    logPath,
  });
  await waitFor(
    async () => {
      const client = await openSocketmapClient({ path: socketPath }, 5_000);
      try {
        return (await client.lookup("recipient", knownAddress)).status === "OK";
      } finally {
        client.close();
      }
    },
    {
      timeoutMs: 180_000,
      what: "verifyd to answer",
      intervalMs: 200,
      logPaths: [logPath],
      abortIf: () => daemon.exitStatus(),
    },
  );
  return { daemon, socketPath, logPath };
}

async function newestFile(dir: string, suffix: string, timeoutMs: number): Promise<string> {
  let last = -1;
  let found = "";
  await waitFor(
    () => {
      const name = readdirSync(dir).find((entry) => entry.endsWith(suffix));
      if (name === undefined) return false;
      found = join(dir, name);
      const size = readFileSync(found).length;
      const stable = size === last && size > 0;
      last = size;
      return stable;
    },
    { timeoutMs, what: `a ${suffix} file in ${dir}`, intervalMs: 1_000 },
  );
  return found;
}

async function main(): Promise<void> {
  const users = Number(flag("users", "100000"));
  const connections = Number(flag("connections", "50"));
  const durationMs = parseDuration(flag("duration", "10s")) ?? 10_000;
  const heap = process.argv.includes("--heap");
  const work = makeTempDir("bench-profile");
  const out = join(REPOSITORY_ROOT, "bench/results/profile");
  mkdirSync(out, { recursive: true });
  const report: string[] = [];
  const say = (text: string) => {
    console.log(text);
    report.push(text);
  };
  try {
    console.log(`building a directory of ${users} users …`);
    const directory = await buildWorkloadDirectory(work, users);
    const known = directory.keys.primaries[0]!;
    const pool = join(work, "pool.json");
    writeFileSync(pool, JSON.stringify(socketmapPool(directory.keys, "recipient", 50_000, 4_2001)));

    // 1. CPU under load.
    const profileDir = join(work, "cpu");
    const cpu = await startProfiled(work, "cpu", directory.snapshotPath, known, [
      "--cpu-prof",
      `--cpu-prof-dir=${profileDir}`,
    ]);
    const { result, server } = await measure(
      {
        pid: cpu.daemon.pid,
        endpoint: { path: cpu.socketPath },
        idleRssMb: 0,
        logPath: cpu.logPath,
        stop: () => cpu.daemon.stop(),
      },
      "socketmap",
      pool,
      connections,
      { warmupMs: 1_000, durationMs, maxRequests: 10_000_000 },
      work,
    );
    say(
      `${users} users, ${connections} connections, ${durationMs / 1000} s: ${Math.round(result.requestsPerSecond)}/s, p50 ${result.latencyUs.p50} µs, p99 ${result.latencyUs.p99} µs, server CPU ${server.cpuUsPerRequest.toFixed(1)} µs/request, RSS ${server.maxRssMb} MB (profiler on)`,
    );
    await cpu.daemon.stop(20_000);
    const profilePath = await newestFile(profileDir, ".cpuprofile", 60_000);
    copyFileSync(profilePath, join(out, "verifyd.cpuprofile"));
    say(`\n${summarizeCpuProfile(JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile)}`);

    // 2. Memory of the loaded, idle daemon.
    const probe = join(DIST_BENCH, "profile/memory-probe.js");
    const memory = await startProfiled(work, "memory", directory.snapshotPath, known, [
      "--expose-gc",
      "--import",
      pathToFileURL(probe).href,
      ...(heap ? ["--heapsnapshot-signal=SIGUSR1", `--diagnostic-dir=${work}`] : []),
    ]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      process.kill(memory.daemon.pid, "SIGUSR2");
      let line = "";
      await waitFor(
        () => {
          line =
            readFileSync(memory.logPath, "utf8")
              .split("\n")
              .find((entry) => entry.startsWith("MEMORY-PROBE ")) ?? "";
          return line !== "";
        },
        { timeoutMs: 30_000, what: "the memory probe's report", logPaths: [memory.logPath] },
      );
      const probed = JSON.parse(line.slice("MEMORY-PROBE ".length)) as Record<string, unknown>;
      say(`\nmemory of the loaded, idle daemon (MB):\n${JSON.stringify(probed, null, 1)}`);
      if (heap) {
        process.kill(memory.daemon.pid, "SIGUSR1");
        const snapshotPath = await newestFile(work, ".heapsnapshot", 180_000);
        copyFileSync(snapshotPath, join(out, "verifyd.heapsnapshot"));
        say(`\n${summarizeHeapSnapshot(JSON.parse(readFileSync(snapshotPath, "utf8")) as HeapSnapshot)}`);
      }
    } finally {
      await memory.daemon.stop(20_000);
    }
    writeFileSync(join(out, "verifyd-profile.txt"), `${report.join("\n")}\n`);
    console.log("\nwritten to bench/results/profile/");
  } finally {
    removeTempDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
