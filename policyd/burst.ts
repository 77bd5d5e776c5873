/**
 * Compromised-account bursts as pure functions. For each SASL login the
 * store keeps the current interval's volume (recipients) and distinct
 * recipients, and a moving baseline of both: an exponentially weighted
 * average over about `baseline_intervals` past intervals (weight
 * 2/(N+1), silent intervals count as zero). A login whose current interval
 * goes above `factor` times its baseline AND above the absolute floor
 * (`min_recipients` or `min_distinct_recipients`) is held: its message goes
 * to Postfix's hold queue, one alert is raised, and every later message of
 * the login is held too until an administrator releases it. A new login
 * has a zero baseline, so the floors alone decide at first.
 */
import type { BurstSettings } from "./rules.js";

export interface BurstRecord {
  /** Start of the current interval (aligned to the interval length). */
  intervalStart: number;
  /** Recipients in the current interval. */
  volume: number;
  /** Distinct recipients in the current interval. */
  distinct: number;
  baselineVolume: number;
  baselineDistinct: number;
}

export interface HoldRecord {
  login: string;
  since: number;
  reason: string;
}

export interface BurstTrigger {
  volume: number;
  distinct: number;
  volumeThreshold: number;
  distinctThreshold: number;
  reason: string;
}

type Timing = Pick<BurstSettings, "intervalMs" | "baselineIntervals">;
type Thresholds = Pick<BurstSettings, "factor" | "minRecipients" | "minDistinctRecipients">;

/** Longest gap folded step by step; beyond it the baseline has decayed to nothing anyway. */
const MAX_FOLDED_INTERVALS = 10_000;

/** The record moved to the interval holding `now`: finished intervals folded into the baseline. */
export function rollBurst(record: BurstRecord | undefined, now: number, timing: Timing): BurstRecord {
  const intervalStart = Math.floor(now / timing.intervalMs) * timing.intervalMs;
  if (record === undefined) {
    return { intervalStart, volume: 0, distinct: 0, baselineVolume: 0, baselineDistinct: 0 };
  }
  if (record.intervalStart >= intervalStart) return record;
  const weight = 2 / (timing.baselineIntervals + 1);
  let baselineVolume = record.baselineVolume + weight * (record.volume - record.baselineVolume);
  let baselineDistinct = record.baselineDistinct + weight * (record.distinct - record.baselineDistinct);
  const silent = Math.min(
    (intervalStart - record.intervalStart) / timing.intervalMs - 1,
    MAX_FOLDED_INTERVALS,
  );
  if (silent > 0) {
    const decay = (1 - weight) ** silent;
    baselineVolume *= decay;
    baselineDistinct *= decay;
  }
  return { intervalStart, volume: 0, distinct: 0, baselineVolume, baselineDistinct };
}

/** Null when the current interval is normal; the figures that tripped otherwise. */
export function assessBurst(record: BurstRecord, thresholds: Thresholds): BurstTrigger | null {
  const volumeThreshold = Math.max(thresholds.minRecipients, thresholds.factor * record.baselineVolume);
  const distinctThreshold = Math.max(
    thresholds.minDistinctRecipients,
    thresholds.factor * record.baselineDistinct,
  );
  const overVolume = record.volume > volumeThreshold;
  const overDistinct = record.distinct > distinctThreshold;
  if (!overVolume && !overDistinct) return null;
  const reason = overVolume
    ? `${record.volume} recipients this interval, above ${Math.ceil(volumeThreshold)}`
    : `${record.distinct} distinct recipients this interval, above ${Math.ceil(distinctThreshold)}`;
  return { volume: record.volume, distinct: record.distinct, volumeThreshold, distinctThreshold, reason };
}

/** After this the record carries nothing worth keeping (baseline decayed below one recipient). */
export function burstExpiresAt(record: BurstRecord, timing: Timing): number {
  return record.intervalStart + timing.intervalMs * (timing.baselineIntervals * 4 + 2);
}
