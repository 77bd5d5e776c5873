/**
 * Command-line flags of `npm run bench -- …`. Every measurement is bounded
 * in time and count, so the defaults give a complete report in about half an
 * hour on two cores, and the flags cut a run down to one piece in seconds
 * (`--only socketmap --concurrency 50 --duration 2s --repetitions 1`).
 */

export const SUITES = ["socketmap", "dict", "policy", "growth"] as const;
export type SuiteName = (typeof SUITES)[number];

export interface BenchOptions {
  suites: SuiteName[];
  /** Measuring time of one run of one target at one concurrency, after the warm-up. */
  durationMs: number;
  /** Unrecorded time before each measurement (JIT, caches, connection set-up). */
  warmupMs: number;
  /** Upper bound on requests per measurement, whatever the duration. */
  maxRequests: number;
  repetitions: number;
  concurrency: number[];
  /** Directory sizes for the growth curves (verifyd, quotad, sync run). */
  growthUsers: number[];
  /** Distinct rate-limit counters prefilled into policyd's store for its growth curve. */
  growthKeys: number[];
  /** Directory size of the side-by-side socketmap comparison (verifyd, LDAP anchor). */
  users: number;
  /** Write docs/performance.md from the results (default true). */
  report: boolean;
  /** Only rewrite docs/performance.md from the result files already in bench/results/. */
  reportOnly: boolean;
  /** Only print the usage. */
  help: boolean;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  suites: [...SUITES],
  durationMs: 5_000,
  warmupMs: 1_000,
  maxRequests: 2_000_000,
  repetitions: 3,
  concurrency: [1, 10, 50],
  growthUsers: [1_000, 10_000, 100_000],
  growthKeys: [1_000, 100_000, 1_000_000],
  users: 100_000,
  report: true,
  reportOnly: false,
  help: false,
};

export const USAGE = `usage: npm run bench -- [flags]
  --only LIST          suites to run, comma-separated: ${SUITES.join(",")} (default: all)
  --duration TIME      measuring time per run, e.g. 5s, 500ms (default 5s)
  --warmup TIME        unrecorded warm-up before each run (default 1s)
  --max-requests N     cap on requests per run (default 2000000)
  --repetitions N      runs per target and concurrency; tables show the median (default 3)
  --concurrency LIST   connections, comma-separated (default 1,10,50)
  --users N            directory size for the socketmap comparison (default 100000)
  --growth-users LIST  directory sizes for the growth curves (default 1000,10000,100000)
  --growth-keys LIST   policyd counter keys prefilled for its growth curve (default 1000,100000,1000000)
  --no-report          do not rewrite docs/performance.md
  --report-only        only rewrite docs/performance.md from bench/results/*.json
  --help               this text`;

const VALUE_FLAGS = new Set([
  "--only",
  "--duration",
  "--warmup",
  "--max-requests",
  "--repetitions",
  "--users",
  "--concurrency",
  "--growth-users",
  "--growth-keys",
]);

/** Leaves room under policyd.store.max_entries (100,000,000) for what the run itself adds. */
export const MAX_GROWTH_KEYS = 50_000_000;

export type ParsedOptions = { ok: true; options: BenchOptions } | { ok: false; error: string };

/** "5s", "500ms", "2m" or a bare number of seconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? "s";
  const ms = unit === "ms" ? value : unit === "s" ? value * 1_000 : value * 60_000;
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms) : undefined;
}

function positiveInteger(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function integerList(text: string): number[] | undefined {
  const values = text.split(",").map((part) => positiveInteger(part.trim()));
  if (values.length === 0 || values.some((value) => value === undefined)) return undefined;
  return [...new Set(values as number[])].sort((a, b) => a - b);
}

export function parseBenchArgs(argv: readonly string[]): ParsedOptions {
  const options: BenchOptions = {
    ...DEFAULT_OPTIONS,
    suites: [...DEFAULT_OPTIONS.suites],
    concurrency: [...DEFAULT_OPTIONS.concurrency],
    growthUsers: [...DEFAULT_OPTIONS.growthUsers],
    growthKeys: [...DEFAULT_OPTIONS.growthKeys],
  };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index]!;
    if (flag === "--help" || flag === "-h") {
      options.help = true;
      continue;
    }
    if (flag === "--report-only") {
      options.reportOnly = true;
      continue;
    }
    if (flag === "--no-report") {
      options.report = false;
      continue;
    }
    const [name, inline] = flag.includes("=") ? flag.split(/=(.*)/s, 2) : [flag, undefined];
    if (name === undefined || !VALUE_FLAGS.has(name))
      return { ok: false, error: `unknown flag ${flag}\n${USAGE}` };
    const value = inline ?? argv[++index];
    if (value === undefined) return { ok: false, error: `${name} needs a value` };
    const bad = (what: string): ParsedOptions => ({ ok: false, error: `${name} ${value}: ${what}` });
    switch (name) {
      case "--only": {
        const names = value.split(",").map((part) => part.trim());
        const unknown = names.filter((suite) => !(SUITES as readonly string[]).includes(suite));
        if (unknown.length > 0 || names.length === 0) return bad(`expected some of ${SUITES.join(",")}`);
        options.suites = SUITES.filter((suite) => names.includes(suite));
        break;
      }
      case "--duration":
      case "--warmup": {
        const ms = parseDuration(value);
        if (ms === undefined) return bad("expected a duration such as 5s or 500ms");
        if (name === "--duration") options.durationMs = ms;
        else options.warmupMs = ms;
        break;
      }
      case "--max-requests":
      case "--repetitions":
      case "--users": {
        const number = positiveInteger(value);
        if (number === undefined) return bad("expected a positive whole number");
        if (name === "--max-requests") options.maxRequests = number;
        else if (name === "--repetitions") options.repetitions = number;
        else options.users = number;
        break;
      }
      case "--concurrency":
      case "--growth-users":
      case "--growth-keys": {
        const list = integerList(value);
        if (list === undefined) return bad("expected positive whole numbers separated by commas");
        if (name === "--concurrency") options.concurrency = list;
        else if (name === "--growth-users") options.growthUsers = list;
        else options.growthKeys = list;
        break;
      }
      default:
        return { ok: false, error: `unknown flag ${flag}\n${USAGE}` };
    }
  }
  if (options.concurrency.some((connections) => connections > 1_000)) {
    return { ok: false, error: "--concurrency: at most 1000 connections" };
  }
  // policyd's store holds at most 100,000,000 records (policyd.store.max_entries).
  if (options.growthKeys.some((keys) => keys > MAX_GROWTH_KEYS)) {
    return { ok: false, error: `--growth-keys: at most ${MAX_GROWTH_KEYS} keys` };
  }
  return { ok: true, options };
}
