/**
 * Reduces repeated measurements to the figures the report shows: per row
 * and concurrency the median of each quantity over the repetitions, and the
 * ratio of the median throughput to the median of the ceiling measured in
 * the same sitting on the same protocol and transport.
 */
import type { Measurement } from "./measure.js";
import { median, ratio, spread } from "./stats.js";

export interface SummaryRow {
  row: string;
  target: string;
  role: Measurement["role"];
  protocol: Measurement["protocol"];
  transport: Measurement["transport"];
  connections: number;
  repetitions: number;
  requestsPerSecond: number;
  requestsPerSecondMin: number;
  requestsPerSecondMax: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxRssMb: number;
  peakRssMb: number;
  cpuUsPerRequest: number;
  errors: number;
  statuses: Record<string, number>;
  /** Median throughput over the ceiling's median on the same protocol, transport and concurrency. */
  ratioToCeiling: number;
  /** Name of the ceiling row used for the ratio. */
  ceiling: string | null;
}

export function summarize(measurements: readonly Measurement[]): SummaryRow[] {
  const groups = new Map<string, Measurement[]>();
  for (const measurement of measurements) {
    const key = `${measurement.row}\u0000${measurement.connections}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [measurement]);
    else list.push(measurement);
  }
  const rows: SummaryRow[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const pick = (get: (m: Measurement) => number) => median(list.map(get));
    const throughput = list.map((m) => m.result.requestsPerSecond);
    const statuses: Record<string, number> = {};
    for (const m of list)
      for (const [status, count] of Object.entries(m.result.statuses))
        statuses[status] = (statuses[status] ?? 0) + count;
    const range = spread(throughput);
    rows.push({
      row: first.row,
      target: first.target,
      role: first.role,
      protocol: first.protocol,
      transport: first.transport,
      connections: first.connections,
      repetitions: list.length,
      requestsPerSecond: median(throughput),
      requestsPerSecondMin: range.min,
      requestsPerSecondMax: range.max,
      p50Us: pick((m) => m.result.latencyUs.p50),
      p90Us: pick((m) => m.result.latencyUs.p90),
      p99Us: pick((m) => m.result.latencyUs.p99),
      p999Us: pick((m) => m.result.latencyUs.p999),
      maxRssMb: pick((m) => m.server.maxRssMb),
      peakRssMb: pick((m) => m.server.peakRssMb),
      cpuUsPerRequest: pick((m) => m.server.cpuUsPerRequest),
      errors: list.reduce((sum, m) => sum + m.result.errors, 0),
      statuses,
      ratioToCeiling: Number.NaN,
      ceiling: null,
    });
  }
  for (const row of rows) {
    // The LDAP anchor speaks another protocol; it is set against the socketmap ceiling on the same concurrency.
    const protocol = row.protocol === "ldap" ? "socketmap" : row.protocol;
    const ceiling =
      rows.find(
        (c) =>
          c.role === "ceiling" &&
          c.protocol === protocol &&
          c.transport === row.transport &&
          c.connections === row.connections,
      ) ??
      rows.find((c) => c.role === "ceiling" && c.protocol === protocol && c.connections === row.connections);
    if (ceiling === undefined) continue;
    row.ceiling = ceiling.row;
    row.ratioToCeiling = ratio(row.requestsPerSecond, ceiling.requestsPerSecond);
  }
  return rows.sort((a, b) => a.connections - b.connections || roleOrder(a.role) - roleOrder(b.role));
}

function roleOrder(role: Measurement["role"]): number {
  return role === "ceiling" ? 0 : role === "daemon" ? 1 : 2;
}
