/**
 * The arithmetic of one rate-limit window, shared by every store (the Redis
 * Lua scripts in redis-scripts.ts repeat it line for line). Two algorithms,
 * neither a fixed window that forgives everything at an arbitrary boundary:
 *
 * - sliding_window: two aligned buckets of one period each; usage is the
 *   current bucket plus the previous bucket weighted by how much of it still
 *   lies inside the sliding period ending now. Sending stops at the limit and
 *   recovers gradually as the previous bucket slides out.
 * - gcra: the generic cell rate algorithm. One number, the theoretical
 *   arrival time (TAT); each unit costs period/limit of time; a request fits
 *   when the new TAT is at most one period ahead of now. A full burst of
 *   `limit` is allowed, then one unit every period/limit.
 *
 * Pure functions of the state and a clock value in milliseconds.
 */

export type Algorithm = "sliding_window" | "gcra";

export type CounterState =
  | { algorithm: "sliding_window"; start: number; current: number; previous: number }
  | { algorithm: "gcra"; tat: number };

export interface WindowSpec {
  algorithm: Algorithm;
  periodMs: number;
  limit: number;
}

export interface WindowReading {
  /** Units counted in the sliding period ending now (GCRA: units not yet drained). */
  used: number;
  /** True when `cost` more units still fit under the limit. */
  fits: boolean;
  /** When `cost` would fit again, in milliseconds from now (0 when it fits). */
  retryAfterMs: number;
}

function bucketStart(now: number, periodMs: number): number {
  return Math.floor(now / periodMs) * periodMs;
}

/** The sliding-window state moved forward to the bucket holding `now`. */
function slidingAt(
  state: CounterState | undefined,
  now: number,
  periodMs: number,
): { start: number; current: number; previous: number } {
  const start = bucketStart(now, periodMs);
  if (state === undefined || state.algorithm !== "sliding_window") return { start, current: 0, previous: 0 };
  // A clock that stepped back keeps the newer bucket rather than losing it.
  if (state.start >= start) return { start: state.start, current: state.current, previous: state.previous };
  if (state.start === start - periodMs) return { start, current: 0, previous: state.current };
  return { start, current: 0, previous: 0 };
}

function slidingUsed(
  state: { start: number; current: number; previous: number },
  now: number,
  periodMs: number,
) {
  const elapsed = Math.min(Math.max(now - state.start, 0), periodMs);
  return state.previous * (1 - elapsed / periodMs) + state.current;
}

/** Usage and whether `cost` more units fit; changes nothing. */
export function readWindow(
  state: CounterState | undefined,
  spec: WindowSpec,
  cost: number,
  now: number,
): WindowReading {
  if (spec.algorithm === "gcra") return readGcra(state, spec, cost, now);
  const moved = slidingAt(state, now, spec.periodMs);
  const used = slidingUsed(moved, now, spec.periodMs);
  if (used + cost <= spec.limit) return { used, fits: true, retryAfterMs: 0 };
  return { used, fits: false, retryAfterMs: slidingRetryAfter(moved, spec, cost, now) };
}

/**
 * When the weighted usage will have dropped enough for `cost`: within this
 * bucket if the current count alone leaves room, else from the next bucket
 * on (where today's count becomes the decaying previous one).
 */
function slidingRetryAfter(
  state: { start: number; current: number; previous: number },
  spec: WindowSpec,
  cost: number,
  now: number,
): number {
  const { periodMs, limit } = spec;
  if (cost > limit) return Number.POSITIVE_INFINITY;
  const room = limit - cost;
  if (state.current <= room && state.previous > 0) {
    // previous * (1 - (t - start)/P) + current <= room
    const t = state.start + periodMs * (1 - (room - state.current) / state.previous);
    return Math.max(0, Math.ceil(t - now));
  }
  const nextStart = state.start + periodMs;
  if (state.current === 0) return Math.max(0, nextStart - now);
  const t = nextStart + periodMs * Math.max(0, 1 - room / state.current);
  return Math.max(0, Math.ceil(t - now));
}

function readGcra(
  state: CounterState | undefined,
  spec: WindowSpec,
  cost: number,
  now: number,
): WindowReading {
  const tat = state?.algorithm === "gcra" ? state.tat : now;
  if (spec.limit <= 0) {
    return { used: 0, fits: cost <= 0, retryAfterMs: cost <= 0 ? 0 : Number.POSITIVE_INFINITY };
  }
  const interval = spec.periodMs / spec.limit;
  const backlog = Math.max(tat - now, 0);
  const used = backlog / interval;
  const newTat = Math.max(tat, now) + cost * interval;
  if (newTat - now <= spec.periodMs + 1e-9) return { used, fits: true, retryAfterMs: 0 };
  if (cost > spec.limit) return { used, fits: false, retryAfterMs: Number.POSITIVE_INFINITY };
  return { used, fits: false, retryAfterMs: Math.ceil(newTat - now - spec.periodMs) };
}

/** The state after charging `cost` units at `now` (charges always apply, even past the limit). */
export function chargeWindow(
  state: CounterState | undefined,
  spec: WindowSpec,
  cost: number,
  now: number,
): CounterState {
  if (spec.algorithm === "gcra") {
    const tat = state?.algorithm === "gcra" ? state.tat : now;
    const interval = spec.limit > 0 ? spec.periodMs / spec.limit : spec.periodMs;
    return { algorithm: "gcra", tat: Math.max(tat, now) + cost * interval };
  }
  const moved = slidingAt(state, now, spec.periodMs);
  return { algorithm: "sliding_window", ...moved, current: moved.current + cost };
}

/** After this instant the state counts nothing and may be dropped. */
export function windowExpiresAt(state: CounterState, periodMs: number): number {
  return state.algorithm === "gcra" ? state.tat : state.start + 2 * periodMs;
}
