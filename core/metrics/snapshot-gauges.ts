/**
 * The three gauges every daemon reading the directory snapshot exports, so
 * that one alert rule (docs/operations.md) covers verifyd and quotad alike:
 * the version in use, its age, and whether it is fresh enough to answer.
 */
import type { LiveSnapshot } from "../directory/live-snapshot.js";
import type { DaemonMetrics } from "./registry.js";

/** `whenStale` completes the help text of emailng_snapshot_fresh: what the daemon answers meanwhile. */
export function registerSnapshotGauges(
  metrics: DaemonMetrics,
  snapshot: LiveSnapshot,
  whenStale: string,
): void {
  metrics.gauge({
    name: "emailng_snapshot_version",
    help: "Version of the directory snapshot in use (0 before one is loaded).",
    collect() {
      this.set(snapshot.current()?.meta.version ?? 0);
    },
  });
  metrics.gauge({
    name: "emailng_snapshot_age_seconds",
    help: "Age of the snapshot in use, from its creation time (-1 before one is loaded).",
    collect() {
      const age = snapshot.ageMs();
      this.set(age === null ? -1 : age / 1000);
    },
  });
  metrics.gauge({
    name: "emailng_snapshot_fresh",
    help: `1 while the snapshot in use is younger than snapshot.max_age, else 0 (${whenStale}).`,
    collect() {
      this.set(snapshot.current()?.fresh === true ? 1 : 0);
    },
  });
}
