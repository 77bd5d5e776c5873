import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CounterState, chargeWindow, readWindow, type WindowSpec, windowExpiresAt } from "./windows.js";

const MINUTE = 60_000;
const T0 = 1_000 * MINUTE; // aligned to a minute boundary

/** Charges `count` units of 1 at the given offsets from T0, then reads with cost 1 at `at`. */
function run(spec: WindowSpec, offsets: number[], at: number) {
  let state: CounterState | undefined;
  for (const offset of offsets) state = chargeWindow(state, spec, 1, T0 + offset);
  return readWindow(state, spec, 1, T0 + at);
}

describe("sliding window", () => {
  const spec: WindowSpec = { algorithm: "sliding_window", periodMs: MINUTE, limit: 3 };

  it.each([
    { name: "empty", offsets: [], at: 0, used: 0, fits: true },
    { name: "two of three", offsets: [0, 1000], at: 2000, used: 2, fits: true },
    { name: "full", offsets: [0, 1000, 2000], at: 3000, used: 3, fits: false },
    // Half of the previous minute still lies inside the window ending now.
    {
      name: "previous bucket half inside",
      offsets: [0, 1000, 2000],
      at: MINUTE + 30_000,
      used: 1.5,
      fits: true,
    },
    // No fixed-window reset: right after the boundary the old bucket still counts fully.
    {
      name: "just after the boundary",
      offsets: [50_000, 51_000, 52_000],
      at: MINUTE + 1,
      used: 3,
      fits: false,
    },
    { name: "two periods later", offsets: [0, 1000, 2000], at: 2 * MINUTE, used: 0, fits: true },
  ])("$name", ({ offsets, at, used, fits }) => {
    const reading = run(spec, offsets, at);
    expect(reading.used).toBeCloseTo(used, 3);
    expect(reading.fits).toBe(fits);
    if (!fits) expect(reading.retryAfterMs).toBeGreaterThan(0);
  });

  it("says when a full window has room again, and it does then", () => {
    let state: CounterState | undefined;
    for (const offset of [10_000, 20_000, 30_000]) state = chargeWindow(state, spec, 1, T0 + offset);
    const full = readWindow(state, spec, 1, T0 + 40_000);
    expect(full.fits).toBe(false);
    const later = T0 + 40_000 + full.retryAfterMs;
    expect(readWindow(state, spec, 1, later).fits).toBe(true);
    expect(readWindow(state, spec, 1, later - 1000).fits).toBe(false);
  });

  it("a cost above the limit never fits", () => {
    expect(readWindow(undefined, spec, 4, T0)).toEqual({ used: 0, fits: false, retryAfterMs: Infinity });
  });

  it("never lets more than the limit through in any period (accepting only what fits)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 200 }), (gaps) => {
        let state: CounterState | undefined;
        let now = T0;
        const accepted: number[] = [];
        for (const gap of gaps) {
          now += gap;
          if (readWindow(state, spec, 1, now).fits) {
            state = chargeWindow(state, spec, 1, now);
            accepted.push(now);
          }
        }
        // The weighted estimate is exact for the current bucket: no aligned minute holds more than the limit.
        const perBucket = new Map<number, number>();
        for (const time of accepted) {
          const bucket = Math.floor(time / MINUTE);
          perBucket.set(bucket, (perBucket.get(bucket) ?? 0) + 1);
        }
        return [...perBucket.values()].every((count) => count <= spec.limit);
      }),
    );
  });
});

describe("GCRA", () => {
  const spec: WindowSpec = { algorithm: "gcra", periodMs: MINUTE, limit: 3 };

  it.each([
    { name: "a full burst fits", offsets: [0, 0], at: 0, fits: true },
    { name: "the burst is spent", offsets: [0, 0, 0], at: 0, fits: false },
    // One unit comes back every period/limit = 20 s.
    { name: "one unit back after 20 s", offsets: [0, 0, 0], at: 20_000, fits: true },
    { name: "not yet after 19 s", offsets: [0, 0, 0], at: 19_000, fits: false },
  ])("$name", ({ offsets, at, fits }) => {
    expect(run(spec, offsets, at).fits).toBe(fits);
  });

  it("reports the wait and the backlog", () => {
    const reading = run(spec, [0, 0, 0], 5_000);
    expect(reading.used).toBeCloseTo(2.75, 6);
    expect(reading.retryAfterMs).toBe(15_000);
  });

  it("a zero limit lets nothing through", () => {
    expect(readWindow(undefined, { ...spec, limit: 0 }, 1, T0).fits).toBe(false);
  });

  it("expires when the backlog is drained", () => {
    const state = chargeWindow(undefined, spec, 3, T0);
    expect(windowExpiresAt(state, MINUTE)).toBe(T0 + MINUTE);
  });
});
