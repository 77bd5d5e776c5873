/**
 * Builds docs/performance.md and its SVG charts from the result files in
 * bench/results/ — only numbers that a run measured, each section saying
 * when, on what machine and with which command it was measured (suites can
 * be run alone, so sections may come from different runs). Pure: results in,
 * Markdown and SVG text out; bench/run.ts writes the files.
 */
import type { RunInfo } from "../lib/machine.js";
import { formatCount, formatMicros, formatPercent } from "../lib/stats.js";
import type { SummaryRow } from "../lib/summary.js";
import { markdownTable } from "../lib/table.js";
import type { SuiteResult } from "../suites/suite.js";
import { type ChartSeries, lineChart } from "./svg-chart.js";

export type StoredResult = SuiteResult & { run: RunInfo };

export interface ReportInput {
  socketmap?: StoredResult;
  dict?: StoredResult;
  policy?: StoredResult;
  growth?: StoredResult;
  /** Output of bench/profile-verifyd.ts by protocol, when it was run (bench/results/profile/verifyd-<protocol>-profile.txt). */
  profiles?: Record<string, string>;
}

export interface RenderedReport {
  markdown: string;
  /** Chart file name (in bench/results/charts/) → SVG text. */
  charts: Record<string, string>;
}

/** Where docs/performance.md finds the charts. */
export const CHART_LINK_PREFIX = "../bench/results/charts/";

const GOALS = {
  socketmapRatio: 0.8,
  socketmapP99Us: 2_000,
  rssMbAt100k: 150,
  dictPerSecond: 20_000,
  /** Issue 5: policyd against the do-nothing policy server. */
  policydRatio: 0.7,
  /** Issue 6: quotad against Dovecot's quota-status. */
  quotadOverQuotaStatus: 20,
};

function rowsTable(rows: readonly SummaryRow[]): string {
  return markdownTable(
    [
      "target",
      "connections",
      "requests/s (median)",
      "min–max",
      "of ceiling",
      "p50",
      "p90",
      "p99",
      "p99.9",
      "server RSS",
      "server CPU / request",
      "errors",
    ],
    rows.map((row) => [
      row.row,
      String(row.connections),
      formatCount(row.requestsPerSecond),
      `${formatCount(row.requestsPerSecondMin)}–${formatCount(row.requestsPerSecondMax)}`,
      row.role === "ceiling" ? "(ceiling)" : formatPercent(row.ratioToCeiling),
      formatMicros(row.p50Us),
      formatMicros(row.p90Us),
      formatMicros(row.p99Us),
      formatMicros(row.p999Us),
      // 0 means the server's processes could not be read (a daemon that detached from its PID).
      row.maxRssMb > 0 ? `${row.maxRssMb.toFixed(0)} MB` : "–",
      row.maxRssMb > 0 ? formatMicros(row.cpuUsPerRequest) : "–",
      String(row.errors),
    ]),
  );
}

function statusLine(rows: readonly SummaryRow[]): string {
  const lines = rows
    .filter((row) => row.role !== "ceiling")
    .filter((row, index, all) => all.findIndex((other) => other.row === row.row) === index)
    .map((row) => {
      const merged: Record<string, number> = {};
      for (const other of rows.filter((candidate) => candidate.row === row.row)) {
        for (const [status, count] of Object.entries(other.statuses))
          merged[status] = (merged[status] ?? 0) + count;
      }
      const total = Object.values(merged).reduce((sum, count) => sum + count, 0);
      const shares = Object.entries(merged)
        .sort((a, b) => b[1] - a[1])
        .map(([status, count]) => `${status} ${formatPercent(count / total)}`)
        .join(", ");
      return `- ${row.row}: ${shares}`;
    });
  return lines.length === 0
    ? ""
    : `Answers seen (all repetitions and concurrencies):\n\n${lines.join("\n")}\n`;
}

function throughputChart(title: string, rows: readonly SummaryRow[]): string {
  const concurrency = [...new Set(rows.map((row) => row.connections))].sort((a, b) => a - b);
  const names = [...new Set(rows.map((row) => row.row))];
  const series: ChartSeries[] = names.map((name) => {
    const role = rows.find((row) => row.row === name)?.role;
    return {
      name,
      dashed: role !== "daemon",
      values: concurrency.map(
        (connections) =>
          rows.find((row) => row.row === name && row.connections === connections)?.requestsPerSecond ?? null,
      ),
    };
  });
  return lineChart({
    title,
    categories: concurrency.map(String),
    xLabel: "concurrent connections",
    yLabel: "requests per second (median)",
    series,
  });
}

function latencyChart(title: string, result: StoredResult, connections: number): string {
  const points = [50, 90, 99, 99.9, 99.99];
  const names = [
    ...new Set(result.measurements.filter((m) => m.connections === connections).map((m) => m.row)),
  ];
  const series: ChartSeries[] = names.map((name) => {
    const runs = result.measurements.filter((m) => m.row === name && m.connections === connections);
    return {
      name,
      dashed: runs[0]?.role !== "daemon",
      values: points.map((percentile) => {
        const values = runs
          .map((m) => m.result.percentilesUs.find(([p]) => p === percentile)?.[1])
          .filter((value): value is number => typeof value === "number" && Number.isFinite(value))
          .sort((a, b) => a - b);
        return values.length === 0 ? null : values[Math.floor(values.length / 2)]! / 1000;
      }),
    };
  });
  return lineChart({
    title,
    categories: points.map((p) => `p${p}`),
    xLabel: "percentile",
    yLabel: "latency, ms (median of repetitions)",
    yScale: "log",
    series,
  });
}

function provenance(result: StoredResult): string {
  const m = result.run.machine;
  const s = result.settings;
  return (
    `Measured ${result.startedAt.slice(0, 16).replace("T", " ")} UTC with \`${result.run.command}\` ` +
    `(${s.repetitions} repetitions, ${s.warmupMs / 1000} s warm-up + ${s.durationMs / 1000} s per run, at most ${formatCount(s.maxRequests)} requests per run) ` +
    `on ${m.cpuModel}, ${m.cores} cores, Node ${m.node}; load average ${m.loadAverageAtStart} at the start of the run.`
  );
}

function targetsList(result: StoredResult): string {
  const lines = result.targets.map(
    (target) =>
      `- **${target.name}** (${target.role}): ${target.description}. Started in ${formatCount(target.startMs)} ms, idle RSS ${target.idleRssMb.toFixed(0)} MB.`,
  );
  const failures = result.failures.map(
    (failure) => `- **${failure.target}: not measured** — ${failure.error.split("\n")[0]}`,
  );
  return [...lines, ...failures].join("\n");
}

function comparisonSection(
  heading: string,
  intro: string,
  key: string,
  result: StoredResult,
  charts: Record<string, string>,
): string {
  const maxConnections = Math.max(...result.settings.concurrency);
  charts[`${key}-throughput.svg`] = throughputChart(`${heading}: throughput`, result.summary);
  charts[`${key}-latency.svg`] = latencyChart(
    `${heading}: latency at ${maxConnections} connections`,
    result,
    maxConnections,
  );
  return [
    `## ${heading}`,
    "",
    intro,
    "",
    provenance(result),
    "",
    rowsTable(result.summary),
    "",
    `![${heading} throughput](${CHART_LINK_PREFIX}${key}-throughput.svg)`,
    `![${heading} latency](${CHART_LINK_PREFIX}${key}-latency.svg)`,
    "",
    "Targets:",
    "",
    targetsList(result),
    "",
    statusLine(result.summary),
    result.notes.map((note) => `- ${note}`).join("\n"),
    "",
  ].join("\n");
}

interface PostmapSummary {
  processes: number;
  requestsPerSecond: number;
  keys: number;
  repetitions: number;
}

function postmapTable(result: StoredResult): string {
  const postmap = (result.extra["postmap"] as { summary?: PostmapSummary[] } | undefined)?.summary;
  if (postmap === undefined || postmap.length === 0) return "";
  const ceiling = (connections: number) =>
    result.summary.find((row) => row.role === "ceiling" && row.connections === connections)
      ?.requestsPerSecond ?? Number.NaN;
  return [
    "Postfix's own LDAP client, `postmap -q - ldap:…` with the same filter, as many processes as connections (throughput only):",
    "",
    markdownTable(
      ["processes", "keys per run", "lookups/s (median)", "of ceiling", "runs"],
      postmap.map((run) => [
        String(run.processes),
        formatCount(run.keys),
        formatCount(run.requestsPerSecond),
        formatPercent(run.requestsPerSecond / ceiling(run.processes)),
        String(run.repetitions),
      ]),
    ),
    "",
  ].join("\n");
}

function goalsSection(input: ReportInput): string {
  const rows: string[][] = [];
  const socketmap = input.socketmap;
  if (socketmap !== undefined) {
    const connections = Math.max(...socketmap.settings.concurrency);
    const users = (socketmap.extra["directory"] as { users?: number } | undefined)?.users ?? 0;
    const verifyd = socketmap.summary.find(
      (row) => row.row === "verifyd recipient" && row.connections === connections,
    );
    const ceiling = socketmap.summary.find(
      (row) => row.role === "ceiling" && row.connections === connections,
    );
    if (verifyd !== undefined && ceiling !== undefined) {
      const met = (ok: boolean) => (ok ? "yes" : "**no**");
      rows.push([
        `verifyd socketmap throughput at ${connections} connections`,
        `≥ ${formatPercent(GOALS.socketmapRatio)} of the ceiling`,
        `${formatCount(verifyd.requestsPerSecond)}/s = ${formatPercent(verifyd.ratioToCeiling)} of ${formatCount(ceiling.requestsPerSecond)}/s`,
        met(verifyd.ratioToCeiling >= GOALS.socketmapRatio),
      ]);
      rows.push([
        `verifyd socketmap p99 at ${connections} connections`,
        `≤ ${formatMicros(GOALS.socketmapP99Us)}`,
        `${formatMicros(verifyd.p99Us)} (ceiling ${formatMicros(ceiling.p99Us)})`,
        met(verifyd.p99Us <= GOALS.socketmapP99Us),
      ]);
      rows.push([
        `verifyd RSS, ${formatCount(users)} users`,
        `≤ ${GOALS.rssMbAt100k} MB with 100,000 users`,
        `${verifyd.maxRssMb.toFixed(0)} MB under load (peak ${verifyd.peakRssMb.toFixed(0)} MB including snapshot loading)`,
        users >= 100_000 ? met(verifyd.maxRssMb <= GOALS.rssMbAt100k) : "(run with --users 100000)",
      ]);
      const slapd = socketmap.summary.find(
        (row) => row.target.startsWith("slapd") && row.connections === connections,
      );
      if (slapd !== undefined) {
        rows.push([
          `verifyd vs slapd searched directly at ${connections} connections`,
          "(issue 4 expects > 2.5×)",
          `${(verifyd.requestsPerSecond / slapd.requestsPerSecond).toFixed(1)}× (${formatCount(slapd.requestsPerSecond)}/s)`,
          verifyd.requestsPerSecond / slapd.requestsPerSecond > 2.5 ? "yes" : "**no**",
        ]);
      }
    }
  }
  const dict = input.dict;
  if (dict !== undefined) {
    const connections = Math.max(...dict.settings.concurrency);
    const verifyd = dict.summary.find((row) => row.role === "daemon" && row.connections === connections);
    if (verifyd !== undefined) {
      rows.push([
        `verifyd dict userdb/passdb at ${connections} connections`,
        `≥ ${formatCount(GOALS.dictPerSecond)}/s`,
        `${formatCount(verifyd.requestsPerSecond)}/s (${formatPercent(verifyd.ratioToCeiling)} of the ceiling), p99 ${formatMicros(verifyd.p99Us)}`,
        verifyd.requestsPerSecond >= GOALS.dictPerSecond ? "yes" : "**no**",
      ]);
    }
  }
  const policy = input.policy;
  if (policy !== undefined) {
    const connections = Math.max(...policy.settings.concurrency);
    const at = (name: string) =>
      policy.summary.find((row) => row.row === name && row.connections === connections);
    const policyd = at("policyd");
    if (policyd !== undefined) {
      const anchors = ["policyd-rate-limit", "postgrey", "postfwd"]
        .map(at)
        .filter((row) => row !== undefined && row.requestsPerSecond > 0)
        .map(
          (row) =>
            `${(policyd.requestsPerSecond / (row as SummaryRow).requestsPerSecond).toFixed(1)}× ${(row as SummaryRow).row}`,
        );
      rows.push([
        `policyd at ${connections} connections`,
        `≥ ${formatPercent(GOALS.policydRatio)} of the ceiling`,
        `${formatCount(policyd.requestsPerSecond)}/s = ${formatPercent(policyd.ratioToCeiling)} of the ceiling${anchors.length > 0 ? `; ${anchors.join(", ")}` : ""}`,
        policyd.ratioToCeiling >= GOALS.policydRatio ? "yes" : "**no**",
      ]);
    }
    const quotad = at("quotad");
    const quotaStatus = at("quota-status");
    if (quotad !== undefined && quotaStatus !== undefined && quotaStatus.requestsPerSecond > 0) {
      const times = quotad.requestsPerSecond / quotaStatus.requestsPerSecond;
      rows.push([
        `quotad vs Dovecot's quota-status at ${connections} connections`,
        `≥ ${GOALS.quotadOverQuotaStatus}×`,
        `${times.toFixed(1)}× (${formatCount(quotad.requestsPerSecond)} against ${formatCount(quotaStatus.requestsPerSecond)}/s; ${formatPercent(quotad.ratioToCeiling)} of the ceiling)`,
        times >= GOALS.quotadOverQuotaStatus ? "yes" : "**no**",
      ]);
    }
  }
  if (rows.length === 0) return "";
  return [
    "## Against the targets of the issues",
    "",
    markdownTable(["what", "target", "measured (median)", "met"], rows),
    "",
  ].join("\n");
}

interface GrowthPoint {
  users: number;
  groups: number;
  snapshotBytes: number;
  target: string;
  startMs: number | null;
  idleRssMb: number | null;
}

interface SyncPoint {
  users: number;
  seconds: number;
  peakRssMb: number;
  slapaddSeconds: number;
}

function growthSection(result: StoredResult, charts: Record<string, string>): string {
  const points = (result.extra["points"] as GrowthPoint[] | undefined) ?? [];
  const sync = (result.extra["sync"] as SyncPoint[] | undefined) ?? [];
  const connections = Number(result.extra["connections"]);
  const rowOf = (point: GrowthPoint) => result.summary.find((row) => row.row === point.target);
  const ceiling = result.summary.find((row) => row.role === "ceiling" && row.protocol === "socketmap");
  const categories = points.map((point) => formatCount(point.users));
  charts["growth-throughput.svg"] = lineChart({
    title: `verifyd socketmap at ${connections} connections by directory size`,
    categories,
    xLabel: "users in the snapshot",
    yLabel: "requests per second (median)",
    series: [
      { name: "verifyd recipient", values: points.map((point) => rowOf(point)?.requestsPerSecond ?? null) },
      {
        name: "do-nothing (ceiling)",
        dashed: true,
        values: points.map(() => ceiling?.requestsPerSecond ?? null),
      },
    ],
  });
  charts["growth-latency-memory.svg"] = lineChart({
    title: "verifyd p99 latency and memory by directory size",
    categories,
    xLabel: "users in the snapshot",
    yLabel: "p99 (ms) / RSS (MB) / start (s)",
    yScale: "log",
    series: [
      { name: "p99, ms", values: points.map((point) => (rowOf(point)?.p99Us ?? Number.NaN) / 1000) },
      { name: "RSS under load, MB", values: points.map((point) => rowOf(point)?.maxRssMb ?? null) },
      {
        name: "start until answering, s",
        values: points.map((point) => (point.startMs ?? Number.NaN) / 1000),
      },
    ],
  });
  if (sync.length > 0) {
    charts["growth-sync.svg"] = lineChart({
      title: "emailng sync run (first publish) by directory size",
      categories: sync.map((point) => formatCount(point.users)),
      xLabel: "users in LDAP",
      yLabel: "seconds / MB",
      yScale: "log",
      series: [
        { name: "wall time, s", values: sync.map((point) => point.seconds) },
        { name: "peak RSS, MB", values: sync.map((point) => point.peakRssMb) },
      ],
    });
  }
  const table = markdownTable(
    [
      "users",
      "groups",
      "snapshot file",
      "start until answering",
      "idle RSS",
      "requests/s",
      "of ceiling",
      "p99",
      "RSS under load",
      "sync run",
      "sync peak RSS",
    ],
    points.map((point) => {
      const row = rowOf(point);
      const synced = sync.find((entry) => entry.users === point.users);
      return [
        formatCount(point.users),
        formatCount(point.groups),
        `${(point.snapshotBytes / 1024 / 1024).toFixed(1)} MB`,
        point.startMs === null ? "–" : `${(point.startMs / 1000).toFixed(1)} s`,
        point.idleRssMb === null ? "–" : `${point.idleRssMb.toFixed(0)} MB`,
        formatCount(row?.requestsPerSecond ?? Number.NaN),
        formatPercent(row?.ratioToCeiling ?? Number.NaN),
        formatMicros(row?.p99Us ?? Number.NaN),
        row === undefined ? "–" : `${row.maxRssMb.toFixed(0)} MB`,
        synced === undefined ? "–" : `${synced.seconds} s`,
        synced === undefined ? "–" : `${synced.peakRssMb} MB`,
      ];
    }),
  );
  return [
    "## How cost grows with the directory",
    "",
    provenance(result),
    "",
    table,
    "",
    `Ceiling in the same sitting: ${formatCount(ceiling?.requestsPerSecond ?? Number.NaN)}/s at ${connections} connections.`,
    "",
    "![throughput by size](../bench/results/charts/growth-throughput.svg)",
    "![latency and memory by size](../bench/results/charts/growth-latency-memory.svg)",
    sync.length > 0 ? "![sync time by size](../bench/results/charts/growth-sync.svg)" : "",
    "",
    result.failures
      .map((failure) => `- **${failure.target}: not measured** — ${failure.error.split("\n")[0]}`)
      .join("\n"),
    result.notes.map((note) => `- ${note}`).join("\n"),
    "",
    quotadGrowth(result, charts),
    policydGrowth(result, charts),
  ].join("\n");
}

interface QuotadGrowthPoint {
  users: number;
  target: string;
  usageRows: number;
  startMs: number | null;
  idleRssMb: number | null;
}

interface PolicydGrowthPoint {
  keys: number;
  poolKeys: number;
  target: string;
  storeBytes: number;
  prefillMs: number;
  startMs: number | null;
  idleRssMb: number | null;
}

/** Start, idle RSS, throughput, p99 and RSS under load of one growth point's row. */
function growthCells(
  result: StoredResult,
  point: { target: string; startMs: number | null; idleRssMb: number | null },
): string[] {
  const row = result.summary.find((candidate) => candidate.row === point.target);
  return [
    point.startMs === null ? "–" : `${(point.startMs / 1000).toFixed(1)} s`,
    point.idleRssMb === null ? "–" : `${point.idleRssMb.toFixed(0)} MB`,
    formatCount(row?.requestsPerSecond ?? Number.NaN),
    formatPercent(row?.ratioToCeiling ?? Number.NaN),
    formatMicros(row?.p99Us ?? Number.NaN),
    row === undefined ? "–" : `${row.maxRssMb.toFixed(0)} MB`,
    row === undefined ? "–" : formatMicros(row.cpuUsPerRequest),
  ];
}

const GROWTH_COLUMNS = [
  "start until answering",
  "idle RSS",
  "requests/s",
  "of ceiling",
  "p99",
  "RSS under load",
  "CPU / request",
];

/** The chart of one daemon's growth: throughput on one axis would hide p99 and RSS, so all on a log axis. */
function growthChart(
  title: string,
  xLabel: string,
  categories: string[],
  result: StoredResult,
  points: ReadonlyArray<{ target: string; startMs: number | null }>,
): string {
  const rowOf = (target: string) => result.summary.find((row) => row.row === target);
  return lineChart({
    title,
    categories,
    xLabel,
    yLabel: "requests/s (thousands) / p99 (ms) / RSS (MB) / start (s)",
    yScale: "log",
    series: [
      {
        name: "requests/s, thousands",
        values: points.map((point) => (rowOf(point.target)?.requestsPerSecond ?? Number.NaN) / 1000),
      },
      { name: "p99, ms", values: points.map((point) => (rowOf(point.target)?.p99Us ?? Number.NaN) / 1000) },
      { name: "RSS under load, MB", values: points.map((point) => rowOf(point.target)?.maxRssMb ?? null) },
      {
        name: "start until answering, s",
        values: points.map((point) => (point.startMs ?? Number.NaN) / 1000),
      },
    ],
  });
}

function policyCeilingLine(result: StoredResult): string {
  const ceiling = result.summary.find((row) => row.role === "ceiling" && row.protocol === "policy");
  return ceiling === undefined
    ? ""
    : `Policy ceiling in the same sitting: ${formatCount(ceiling.requestsPerSecond)}/s at ${ceiling.connections} connections (p99 ${formatMicros(ceiling.p99Us)}).`;
}

function quotadGrowth(result: StoredResult, charts: Record<string, string>): string {
  const points = result.extra["quotad"] as QuotadGrowthPoint[] | undefined;
  if (points === undefined || points.length === 0) return "";
  const connections = Number(result.extra["connections"]);
  charts["growth-quotad.svg"] = growthChart(
    `quotad RCPT checks at ${connections} connections by users (usage rows)`,
    "users in the snapshot, one usage row each",
    points.map((point) => formatCount(point.users)),
    result,
    points,
  );
  return [
    "### quotad by directory and usage table size",
    "",
    markdownTable(
      ["users", "usage rows", ...GROWTH_COLUMNS],
      points.map((point) => [
        formatCount(point.users),
        formatCount(point.usageRows),
        ...growthCells(result, point),
      ]),
    ),
    "",
    policyCeilingLine(result),
    "",
    `![quotad by size](${CHART_LINK_PREFIX}growth-quotad.svg)`,
    "",
  ].join("\n");
}

function policydGrowth(result: StoredResult, charts: Record<string, string>): string {
  const points = result.extra["policyd"] as PolicydGrowthPoint[] | undefined;
  if (points === undefined || points.length === 0) return "";
  const connections = Number(result.extra["connections"]);
  charts["growth-policyd.svg"] = growthChart(
    `policyd RCPT checks at ${connections} connections by distinct counters`,
    "rate-limit counters in the store at start",
    points.map((point) => formatCount(point.keys)),
    result,
    points,
  );
  return [
    "### policyd by distinct rate-limit counters",
    "",
    markdownTable(
      ["counters", "store file", "written in", ...GROWTH_COLUMNS],
      points.map((point) => [
        formatCount(point.keys),
        `${(point.storeBytes / 1024 / 1024).toFixed(1)} MB`,
        `${(point.prefillMs / 1000).toFixed(1)} s`,
        ...growthCells(result, point),
      ]),
    ),
    "",
    `The requests touch ${formatCount(points[0]?.poolKeys ?? Number.NaN)} distinct counters; with fewer prefilled, the rest start empty.`,
    policyCeilingLine(result),
    "",
    `![policyd by counters](${CHART_LINK_PREFIX}growth-policyd.svg)`,
    "",
  ].join("\n");
}

export function renderReport(input: ReportInput): RenderedReport {
  const charts: Record<string, string> = {};
  const sections: string[] = [];
  const results = [input.socketmap, input.dict, input.policy, input.growth].filter(
    (result): result is StoredResult => result !== undefined,
  );
  const machine = results[0]?.run.machine;
  sections.push(
    "# Performance",
    "",
    "Written by `npm run bench` (bench/run.ts) from the result files in `bench/results/`; do not edit by hand.",
    "Every figure below was measured by the run its section names; nothing is estimated or carried over.",
    "",
  );
  if (machine !== undefined) {
    sections.push(
      "## Machine",
      "",
      markdownTable(
        ["", ""],
        [
          ["CPU", `${machine.cpuModel}, ${machine.cores} cores`],
          ["memory", `${machine.memoryGb} GB`],
          ["system", `${machine.os}, Linux ${machine.kernel}`],
          ["Node", machine.node],
        ],
      ),
      "",
      "The machine is shared: other work may have run during a measurement. Rows of one table were measured interleaved (every target in turn, for each repetition and concurrency), so a disturbance hits them alike, and the tables show medians.",
      "",
    );
  }
  sections.push(
    "## Method",
    "",
    "- The server under test runs as its own process; the load generator (bench/load/generate.ts) is another process, one per measurement, so the generator's CPU and memory are not the server's and the server's RSS and CPU time are read from `/proc/<pid>` (summed over its process tree).",
    "- Each connection sends one request, waits for the complete reply and sends the next at once — how Postfix and Dovecot use these servers — on UNIX sockets (or 127.0.0.1 where a target only listens on TCP).",
    "- Requests come from a pool drawn beforehand with Zipf popularity (exponent 1) from a realistic mix, the same pool for every target of a table.",
    "- After an unrecorded warm-up, each request's time from write to complete reply goes into an HDR histogram (microseconds, 3 significant digits); latency therefore includes the generator's own queueing, identically for every target.",
    "- *of ceiling* divides a row's median throughput by the median of the do-nothing server for the same protocol, transport and concurrency in the same sitting. The do-nothing server frames requests and answers a constant; it is the most this generator, Node and this machine allow.",
    "- *server RSS* is the largest resident set sampled every 250 ms during the run; *server CPU / request* is the server's CPU time divided by the requests it answered; – where the server's processes could not be followed (a daemon that detached from the PID it was started as).",
    "- *errors* counts failed answers (TEMP, PERM, dict F, a reply without action), timeouts, connections the server refused or closed; the generator reconnects at once.",
    "",
  );
  const goals = goalsSection(input);
  if (goals !== "") sections.push(goals);
  if (input.socketmap !== undefined) {
    sections.push(
      comparisonSection(
        "Postfix socketmap: verifyd",
        "verifyd's `recipient` and `alias` maps answered from the snapshot, against the do-nothing socketmap server and against Postfix asking LDAP directly.",
        "socketmap",
        input.socketmap,
        charts,
      ),
      postmapTable(input.socketmap),
    );
  }
  if (input.dict !== undefined) {
    sections.push(
      comparisonSection(
        "Dovecot dict: verifyd userdb and passdb",
        "verifyd's Dovecot 2.3 dict (passdb/userdb `driver = dict`) against the do-nothing dict server.",
        "dict",
        input.dict,
        charts,
      ),
    );
  }
  if (input.policy !== undefined) {
    sections.push(
      comparisonSection(
        "Postfix policy delegation",
        "Policy servers a site would run (from Debian's packages) and emailng's, against the do-nothing policy server, all driven with the same RCPT requests.",
        "policy",
        input.policy,
        charts,
      ),
    );
  }
  if (input.growth !== undefined) sections.push(growthSection(input.growth, charts));
  for (const [protocol, text] of Object.entries(input.profiles ?? {})) {
    sections.push(
      `## Profile of verifyd (${protocol})`,
      "",
      `Output of \`node dist-bench/bench/profile-verifyd.js --protocol ${protocol} --heap\` (after \`npm run bench:build\`), run separately from the tables above: verifyd under \`node --cpu-prof\` (which slows it) driven like the benchmark, then a second, idle verifyd's memory. Raw profiles: \`bench/results/profile/\`.`,
      "",
      "<details><summary>profile output</summary>",
      "",
      "```",
      text.trim(),
      "```",
      "",
      "</details>",
      "",
    );
  }
  const commands = [...new Set(results.map((result) => result.run.command))];
  sections.push(
    "## Reproduce",
    "",
    "On Debian 12 with Node 20, from a checkout (as root, so the bench can `apt-get install` the anchors it lacks: postfwd, postgrey, policyd-rate-limit, postfix-ldap; slapd, Postfix and Dovecot as for the tests):",
    "",
    "```sh",
    "npm ci",
    "npm run bench                  # every suite, about half an hour",
    ...commands
      .filter((command) => command !== "npm run bench")
      .map((command) => `${command}   # as run for this report`),
    "```",
    "",
    "`npm run bench -- --help` lists the flags (`--only`, `--duration`, `--repetitions`, `--concurrency`, `--users`, `--growth-users`). Raw results, every repetition with its full percentile list and status counts: `bench/results/<suite>.json`.",
    "",
  );
  return { markdown: `${sections.join("\n").replace(/\n{3,}/g, "\n\n")}`, charts };
}
