/**
 * Preloaded into a daemon by bench/profile-verifyd.ts (`node --expose-gc
 * --import …/memory-probe.js`), never shipped: on SIGUSR2 it writes one
 * line `MEMORY-PROBE {json}` to standard error with process.memoryUsage()
 * and V8's heap spaces, before and after a full garbage collection, so the
 * profile can say which part of the RSS is live JavaScript data, which is
 * heap V8 keeps committed, and which lies outside the V8 heap.
 */
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";

const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

function sample() {
  const usage = process.memoryUsage();
  const heap = getHeapStatistics();
  return {
    rssMb: mb(usage.rss),
    heapTotalMb: mb(usage.heapTotal),
    heapUsedMb: mb(usage.heapUsed),
    externalMb: mb(usage.external),
    arrayBuffersMb: mb(usage.arrayBuffers),
    mallocedMb: mb(heap.malloced_memory),
    peakMallocedMb: mb(heap.peak_malloced_memory),
    spaces: getHeapSpaceStatistics().map((space) => ({
      name: space.space_name,
      sizeMb: mb(space.space_size),
      usedMb: mb(space.space_used_size),
    })),
  };
}

process.on("SIGUSR2", () => {
  const before = sample();
  (globalThis as { gc?: () => void }).gc?.();
  const after = sample();
  process.stderr.write(`MEMORY-PROBE ${JSON.stringify({ before, after })}\n`);
});
