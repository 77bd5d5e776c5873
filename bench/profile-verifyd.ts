/**
 * Where verifyd spends its time and memory under the socketmap benchmark's
 * load: `npm run bench:build && node dist-bench/bench/profile-verifyd.js
 * [--protocol socketmap|dict] [--users 100000] [--connections 50] [--duration 10s] [--heap]
 * [--node-flags "--max-semi-space-size=1"]`.
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
import { dictPool, socketmapPool } from "./workload/pools.js";

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

/**
 * Self time per function and per file, in ms, from a V8 .cpuprofile; with a
 * window (monotonic-clock microseconds, the clock V8 stamps samples with and
 * process.hrtime reads) only the samples taken inside it count, so start-up
 * and snapshot loading stay out of the load's profile.
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  top = 30,
  window?: { fromUs: number; toUs: number },
): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  let at = profile.startTime;
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index]!;
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    selfMs.set(id, (selfMs.get(id) ?? 0) + delta / 1000);
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

interface MemorySample {
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
  mallocedMb: number;
  spaces: Array<{ name: string; sizeMb: number; usedMb: number }>;
}

interface MemoryProbe {
  before: MemorySample;
  after: MemorySample;
}

/** The memory probe's report as a small table: committed and used per V8 space, before and after a full GC. */
export function formatMemoryProbe(probe: MemoryProbe): string {
  const line = (label: string, sample: MemorySample) =>
    `${label}: RSS ${sample.rssMb}, V8 heap committed ${sample.heapTotalMb} (used ${sample.heapUsedMb}), outside the V8 heap ${Math.round((sample.rssMb - sample.heapTotalMb) * 10) / 10}, external ${sample.externalMb}, malloced by V8 ${sample.mallocedMb}`;
  const spaces = probe.after.spaces
    .filter((space) => space.sizeMb > 0)
    .map((space) => {
      const before = probe.before.spaces.find((candidate) => candidate.name === space.name);
      return `  ${space.name.padEnd(24)} committed ${String(space.sizeMb).padStart(6)}  used ${String(space.usedMb).padStart(6)}  (before GC: used ${before?.usedMb ?? "?"})`;
    });
  return [
    line("before GC", probe.before),
    line("after GC ", probe.after),
    "V8 spaces after GC (MB):",
    ...spaces,
  ].join("\n");
}

async function startProfiled(
  work: string,
  label: string,
  snapshotPath: string,
  knownAddress: string,
  nodeFlags: string[],
  protocol: "socketmap" | "dict",
): Promise<{
  daemon: ReturnType<typeof startDaemon>;
  socketPath: string;
  loadPath: string;
  logPath: string;
}> {
  const socketPath = join(work, `${label}.sock`);
  const dictPath = join(work, `${label}-dict.sock`);
  // The dict needs the internal snapshot (homes, uids); the socketmap side reads it as well.
  const dict =
    protocol === "dict"
      ? `[verifyd.dovecot]\nusername = "login"\nuid = 5000\ngid = 5000\nhome = "/var/vmail/%d/%n"\nmail_location = "maildir:~/Maildir"\n[[verifyd.dovecot.listen]]\nunix = "${dictPath}"\n`
      : "";
  const configPath = join(work, `${label}.toml`);
  const logPath = join(work, `${label}.log`);
  writeFileSync(
    configPath,
    `[log]\nlevel = "warn"\n[snapshot]\npath = "${snapshotPath}"\nmax_age = "30d"\n[verifyd]\n[[verifyd.listen]]\nunix = "${socketPath}"\n${dict}`,
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
  return { daemon, socketPath, loadPath: protocol === "dict" ? dictPath : socketPath, logPath };
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
  const protocol = flag("protocol", "socketmap") === "dict" ? "dict" : "socketmap";
  // Extra Node flags for verifyd in both runs, e.g. "--max-semi-space-size=1", to try a memory setting.
  const extraFlags = flag("node-flags", "")
    .split(" ")
    .filter((part) => part !== "");
  const variant = `${protocol}${extraFlags.length > 0 ? "-with-flags" : ""}`;
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
    writeFileSync(
      pool,
      JSON.stringify(
        protocol === "dict"
          ? dictPool(directory.keys, 50_000, 9_001)
          : socketmapPool(directory.keys, "recipient", 50_000, 4_2001),
      ),
    );
    const snapshotPath = protocol === "dict" ? directory.internalSnapshotPath : directory.snapshotPath;

    // 1. CPU under load.
    const profileDir = join(work, "cpu");
    const cpu = await startProfiled(
      work,
      "cpu",
      snapshotPath,
      known,
      [...extraFlags, "--cpu-prof", `--cpu-prof-dir=${profileDir}`],
      protocol,
    );
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    // The generator's own warm-up second is load too; its start-up is not.
    const fromUs = nowUs() + 500_000;
    const { result, server } = await measure(
      {
        pid: cpu.daemon.pid,
        endpoint: { path: cpu.loadPath },
        idleRssMb: 0,
        logPath: cpu.logPath,
        stop: () => cpu.daemon.stop(),
        spec: { dictName: "auth" },
      },
      protocol,
      pool,
      connections,
      { warmupMs: 1_000, durationMs, maxRequests: 10_000_000 },
      work,
    );
    say(
      `${protocol}, ${users} users${extraFlags.length > 0 ? ` (node ${extraFlags.join(" ")})` : ""}, ${connections} connections, ${durationMs / 1000} s: ${Math.round(result.requestsPerSecond)}/s, p50 ${result.latencyUs.p50} µs, p99 ${result.latencyUs.p99} µs, server CPU ${server.cpuUsPerRequest.toFixed(1)} µs/request, RSS ${server.maxRssMb} MB (profiler on)`,
    );
    const toUs = nowUs();
    await cpu.daemon.stop(20_000);
    const profilePath = await newestFile(profileDir, ".cpuprofile", 60_000);
    copyFileSync(profilePath, join(out, `verifyd-${variant}.cpuprofile`));
    const profile = JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile;
    say(`\nCPU during the load only:\n${summarizeCpuProfile(profile, 40, { fromUs, toUs })}`);
    say(
      `\nCPU over the whole life of the process (start-up and snapshot loading included):\n${summarizeCpuProfile(profile, 15)}`,
    );

    // 2. Memory of the loaded, idle daemon.
    const probe = join(DIST_BENCH, "profile/memory-probe.js");
    const memory = await startProfiled(
      work,
      "memory",
      snapshotPath,
      known,
      [
        ...extraFlags,
        "--expose-gc",
        "--import",
        pathToFileURL(probe).href,
        ...(heap ? ["--heapsnapshot-signal=SIGUSR1", `--diagnostic-dir=${work}`] : []),
      ],
      protocol,
    );
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
      say(
        `\nmemory of the loaded, idle daemon (MB):\n${formatMemoryProbe(probed as unknown as MemoryProbe)}`,
      );
      if (heap) {
        process.kill(memory.daemon.pid, "SIGUSR1");
        const heapPath = await newestFile(work, ".heapsnapshot", 180_000);
        copyFileSync(heapPath, join(out, `verifyd-${variant}.heapsnapshot`));
        say(`\n${summarizeHeapSnapshot(JSON.parse(readFileSync(heapPath, "utf8")) as HeapSnapshot)}`);
      }
    } finally {
      await memory.daemon.stop(20_000);
    }
    writeFileSync(join(out, `verifyd-${variant}-profile.txt`), `${report.join("\n")}\n`);
    console.log("\nwritten to bench/results/profile/");
  } finally {
    removeTempDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
