/**
 * Reads the TOML configuration file and validates it against the schema,
 * once, at start. The result is either a deeply frozen, fully typed
 * configuration (defaults filled in, durations in milliseconds, sizes in
 * bytes) or the complete list of problems, each with the key path, what is
 * wrong and how to fix it, so an administrator can correct every mistake in
 * one pass. Daemons and `emailng config check` call the same function, so the
 * check can never pass a file a daemon would refuse.
 */
import { readFile, stat } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import type { z } from "zod";
import { keyPaths, tableShapeAt } from "./introspect.js";
import { type Config, configSchema } from "./schema.js";

export interface ConfigIssue {
  /** Key path such as "policyd.listen[0].tcp"; "" for problems with the file as a whole. */
  path: string;
  message: string;
  fix: string;
  /** Position in the file, for TOML syntax errors. */
  line?: number;
  column?: number;
}

export type DeepReadonly<T> = T extends (infer Element)[]
  ? readonly DeepReadonly<Element>[]
  : T extends object
    ? { readonly [Key in keyof T]: DeepReadonly<T[Key]> }
    : T;

export type LoadResult = { ok: true; config: DeepReadonly<Config> } | { ok: false; errors: ConfigIssue[] };

/** A configuration file is a few kilobytes; refusing huge files keeps a wrong path from eating memory. */
const MAX_FILE_BYTES = 1024 * 1024;

/** Reads, parses and validates the file at `path`. Never throws for a bad file. */
export async function loadConfig(path: string): Promise<LoadResult> {
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) return fileProblem(`${path} is not a regular file`, "give the path of the TOML file");
    if (info.size > MAX_FILE_BYTES) {
      return fileProblem(
        `${path} is larger than ${MAX_FILE_BYTES} bytes`,
        "check that --config names the TOML file",
      );
    }
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    return fileProblem(
      `cannot read ${path} (${code})`,
      "check the path given with --config and its permissions",
    );
  }
  return parseConfigText(text);
}

/** Parses and validates TOML text; for tests and for callers that already hold the text. */
export function parseConfigText(text: string): LoadResult {
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const message = (error.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    const unquotedUnit = /numeric literal|invalid value/.test(message);
    const fix = unquotedUnit
      ? 'correct the TOML syntax there; durations and sizes are quoted strings, e.g. timeout = "5s"'
      : "correct the TOML syntax there";
    return {
      ok: false,
      errors: [
        {
          path: "",
          message: `TOML syntax error: ${message}`,
          fix,
          line: error.line,
          column: error.column,
        },
      ],
    };
  }
  return validateConfig(data);
}

/** Validates already-parsed data (a TOML table) against the schema. */
export function validateConfig(data: unknown): LoadResult {
  const result = configSchema.safeParse(data, { reportInput: true });
  if (result.success) return { ok: true, config: deepFreeze(result.data) as DeepReadonly<Config> };
  return { ok: false, errors: result.error.issues.flatMap(toConfigIssues) };
}

/** One line per issue, as `emailng config check` and the daemons print it. */
export function formatConfigIssue(issue: ConfigIssue, file: string): string {
  const where =
    issue.path !== ""
      ? issue.path
      : issue.line !== undefined
        ? `${file}:${issue.line}:${issue.column}`
        : file;
  return `${where}: ${issue.message} (fix: ${issue.fix})`;
}

function fileProblem(message: string, fix: string): LoadResult {
  return { ok: false, errors: [{ path: "", message, fix }] };
}

/** "policyd.listen[0].tcp" from ["policyd", "listen", 0, "tcp"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

function toConfigIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case "custom": {
      const fix =
        typeof issue.params?.["fix"] === "string" ? (issue.params["fix"] as string) : "see the example file";
      return [{ path, message: issue.message, fix }];
    }
    case "unrecognized_keys":
      return issue.keys.map((key) => unknownKey(issue.path, key));
    case "invalid_type": {
      if (issue.input === undefined) return [{ path, message: "is required", fix: "add it" }];
      return [
        {
          path,
          message: `expected ${article(issue.expected)}, got ${describe(issue.input)}`,
          fix: typeFix(issue.expected),
        },
      ];
    }
    case "invalid_value": {
      const allowed = issue.values.map((value) => String(value)).join(", ");
      return [
        { path, message: `${describe(issue.input)} is not one of ${allowed}`, fix: `use one of: ${allowed}` },
      ];
    }
    case "too_small":
      return [{ path, message: issue.message, fix: "add at least one entry" }];
    default:
      return [{ path, message: issue.message, fix: "see deploy/emailng.example.toml" }];
  }
}

function unknownKey(tablePath: readonly PropertyKey[], key: string): ConfigIssue {
  const path = formatPath([...tablePath, key]);
  const allowed = Object.keys(tableShapeAt(configSchema, tablePath) ?? {});
  // Secrets stay out of the file (which is often world-readable and kept in
  // version control); the schema offers `<key>_file` instead.
  if (allowed.includes(`${key}_file`)) {
    return {
      path,
      message: "secrets are not accepted inline",
      fix: `write the secret to a file owned by the daemon's user with mode 0600, and set ${key}_file to its path`,
    };
  }
  const suggestion = closestKey(key, allowed);
  const fix = suggestion
    ? `did you mean ${suggestion}?`
    : allowed.length > 0
      ? `remove it; allowed here: ${allowed.join(", ")}`
      : "remove it";
  return { path, message: "unknown key", fix };
}

/** The allowed key within a small edit distance of a typo, if there is one. */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Up to a third of the key may be wrong ("timout", "max_conections", "idle-timeout").
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}

function article(expected: string): string {
  const names: Record<string, string> = {
    string: "a string",
    boolean: "true or false",
    array: "a list",
    object: "a table",
    number: "a number",
  };
  return names[expected] ?? expected;
}

function typeFix(expected: string): string {
  switch (expected) {
    case "string":
      return 'write it in double quotes, e.g. "value"';
    case "boolean":
      return "write true or false, without quotes";
    case "array":
      return 'write a list in square brackets, e.g. ["a", "b"]';
    case "object":
      return "write a [table] or an inline { key = value } table";
    default:
      return "see deploy/emailng.example.toml";
  }
}

/** Describes a wrong value without echoing long or nested content. */
function describe(value: unknown): string {
  if (typeof value === "string")
    return value.length > 40 ? `a ${value.length}-character string` : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return value instanceof Date ? "a date" : "a table";
  return typeof value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Every key the schema knows, for documentation checks. */
export function configKeyPaths(): string[] {
  return keyPaths(configSchema);
}
