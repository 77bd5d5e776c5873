/**
 * Durations and sizes as people write them in the configuration file, and the
 * zod schemas that turn them into the numbers the programs use.
 *
 * A duration is a whole number followed by one unit: `250ms`, `3s`, `5m`,
 * `2h`, `1d`; it becomes milliseconds. A size is a whole number of bytes,
 * optionally followed by `K`, `M` or `G`; these are binary multiples
 * (K = 1024, M = 1024², G = 1024³), as in Postfix's and Dovecot's own size
 * settings, so `10M` is 10 485 760 bytes. Units are mandatory for durations
 * because a bare `30` is ambiguous (Postfix reads seconds, Dovecot often
 * milliseconds); sizes may be a bare byte count.
 *
 * Bounds are written in the same notation as the values, so a rejected value
 * is explained in the words the administrator used:
 * `90s is above the maximum 60s`. Every failure carries a `fix` in the issue
 * params; the loader shows it after the message.
 */
import { z } from "zod";

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const SIZE_UNITS = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as const;

const DURATION_PATTERN = /^(\d{1,15})(ms|s|m|h|d)$/;
const SIZE_PATTERN = /^(\d{1,15})([KMG]?)$/;

/** Milliseconds for a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_PATTERN.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * DURATION_UNITS[match[2] as keyof typeof DURATION_UNITS];
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Bytes for a size string, or undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS];
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Parses a bound written in the source code; a typo there is a bug, so it throws. */
function requireParsed(text: string, parse: (text: string) => number | undefined): number {
  const value = parse(text);
  if (value === undefined) throw new Error(`invalid bound in schema: ${text}`);
  return value;
}

export interface UnitBounds {
  /** Value used when the key is absent, in the file's notation ("5s", "10M"). */
  default: string;
  min: string;
  max: string;
}

interface UnitKind {
  name: "duration" | "size";
  parse: (text: string) => number | undefined;
  example: string;
  howToWrite: string;
}

const DURATION: UnitKind = {
  name: "duration",
  parse: parseDuration,
  example: '"30s"',
  howToWrite: "write a whole number followed by one unit: ms, s, m, h or d",
};

const SIZE: UnitKind = {
  name: "size",
  parse: parseSize,
  example: '"10M"',
  howToWrite: "write a whole number of bytes, optionally followed by K, M or G (multiples of 1024)",
};

function unitSchema(kind: UnitKind, bounds: UnitBounds) {
  const min = requireParsed(bounds.min, kind.parse);
  const max = requireParsed(bounds.max, kind.parse);
  const fallback = requireParsed(bounds.default, kind.parse);
  if (!(min <= fallback && fallback <= max)) throw new Error(`default ${bounds.default} is out of bounds`);
  const range = `use a value between ${bounds.min} and ${bounds.max}`;

  // Sizes may be TOML integers (a plain byte count); durations must be strings
  // so that the unit is always visible in the file.
  return z
    .unknown()
    .transform((raw, context): number => {
      let text: string;
      if (typeof raw === "string") text = raw.trim();
      else if (typeof raw === "number" && kind === SIZE && Number.isSafeInteger(raw) && raw >= 0)
        text = String(raw);
      else {
        const shown = typeof raw === "number" ? String(raw) : typeof raw;
        context.addIssue({
          code: "custom",
          message: `expected a ${kind.name} string like ${kind.example}, got ${shown}`,
          params: { fix: `${kind.howToWrite}, e.g. ${kind.example}` },
        });
        return z.NEVER;
      }
      const value = kind.parse(text);
      if (value === undefined) {
        context.addIssue({
          code: "custom",
          message: `${JSON.stringify(text)} is not a ${kind.name}`,
          params: { fix: `${kind.howToWrite}, e.g. ${kind.example}` },
        });
        return z.NEVER;
      }
      if (value < min) {
        context.addIssue({
          code: "custom",
          message: `${text} is below the minimum ${bounds.min}`,
          params: { fix: range },
        });
        return z.NEVER;
      }
      if (value > max) {
        context.addIssue({
          code: "custom",
          message: `${text} is above the maximum ${bounds.max}`,
          params: { fix: range },
        });
        return z.NEVER;
      }
      return value;
    })
    .prefault(bounds.default);
}

/** A duration key; the parsed value is in milliseconds. */
export function duration(bounds: UnitBounds) {
  return unitSchema(DURATION, bounds);
}

/** A size key; the parsed value is in bytes (K, M, G are binary multiples). */
export function size(bounds: UnitBounds) {
  return unitSchema(SIZE, bounds);
}

/**
 * A whole number with bounds and the same style of messages as durations and
 * sizes (zod's own are written for developers, not administrators).
 */
export function integer(bounds: { default: number; min: number; max: number }) {
  const range = `use a whole number between ${bounds.min} and ${bounds.max}`;
  return z
    .unknown()
    .transform((raw, context): number => {
      if (typeof raw !== "number" || !Number.isInteger(raw)) {
        const shown = typeof raw === "string" ? JSON.stringify(raw) : String(raw);
        context.addIssue({
          code: "custom",
          message: `expected a whole number, got ${shown}`,
          params: { fix: range },
        });
        return z.NEVER;
      }
      if (raw < bounds.min) {
        context.addIssue({
          code: "custom",
          message: `${raw} is below the minimum ${bounds.min}`,
          params: { fix: range },
        });
        return z.NEVER;
      }
      if (raw > bounds.max) {
        context.addIssue({
          code: "custom",
          message: `${raw} is above the maximum ${bounds.max}`,
          params: { fix: range },
        });
        return z.NEVER;
      }
      return raw;
    })
    .prefault(bounds.default);
}
