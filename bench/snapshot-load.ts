/**
 * Child process of bench/directory.ts: loads a snapshot the way a daemon
 * does (readSnapshot verifies the hash, then the Resolver builds its
 * indexes) and measures lookups from memory. Prints one JSON object.
 * Usage: node dist-bench/bench/snapshot-load.js SNAPSHOT USERS
 */
import { performance } from "node:perf_hooks";
import { Resolver } from "../core/directory/resolver.js";
import { readSnapshot } from "../core/directory/snapshot-store.js";

const [path, usersText] = process.argv.slice(2);
if (path === undefined) throw new Error("usage: snapshot-load SNAPSHOT USERS");
const users = Number(usersText ?? "100000");
const rssMb = () => Math.round(process.memoryUsage().rss / 1024 / 1024);

const rssBefore = rssMb();
const started = performance.now();
const snapshot = readSnapshot(path);
const readMs = performance.now() - started;
const resolver = new Resolver(snapshot.directory);
const loadMs = performance.now() - started;
const rssLoaded = rssMb();

// A mix like a relay sees: known users, +extensions, groups, unknown local addresses, other domains.
const keys: string[] = [];
for (let i = 0; i < 10_000; i++) {
  const user = `csd${100000 + ((i * 7919) % users)}`;
  switch (i % 5) {
    case 0:
      keys.push(`${user}@cs.example.org`);
      break;
    case 1:
      keys.push(`${user}+lists@CS.example.org`);
      break;
    case 2:
      keys.push(`gen-group-${i % 50}@cs.example.org`);
      break;
    case 3:
      keys.push(`nobody${i}@cs.example.org`);
      break;
    default:
      keys.push(`someone${i}@gmail.example`);
  }
}
let sink = 0;
for (let round = 0; round < 20; round++) for (const key of keys) sink += resolver.resolve(key).kind.length; // warm-up
const total = 1_000_000;
const loopStart = performance.now();
for (let n = 0; n < total; n++) sink += resolver.resolve(keys[n % keys.length]!).kind.length;
const meanNs = ((performance.now() - loopStart) * 1e6) / total;

const samples = new Float64Array(200_000);
for (let n = 0; n < samples.length; n++) {
  const t0 = process.hrtime.bigint();
  sink += resolver.resolve(keys[n % keys.length]!).kind.length;
  samples[n] = Number(process.hrtime.bigint() - t0);
}
samples.sort();
const percentile = (p: number) => Math.round(samples[Math.floor((samples.length - 1) * p)]!);

process.stdout.write(
  `${JSON.stringify({
    users: snapshot.directory.users.length,
    groups: snapshot.directory.groups.length,
    readMs: Math.round(readMs),
    loadMs: Math.round(loadMs),
    rssBeforeMb: rssBefore,
    rssLoadedMb: rssLoaded,
    lookupMeanNs: Math.round(meanNs),
    lookupP50Ns: percentile(0.5),
    lookupP99Ns: percentile(0.99),
    checksum: sink,
  })}\n`,
);
