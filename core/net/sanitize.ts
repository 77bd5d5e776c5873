/**
 * Renders an opaque frame for the server's per-request debug line. Frames are
 * codec-specific types the server does not know; peer text is made safe and
 * bounded by core/log's sanitizePeerString, the one sanitiser of the project.
 */
import { sanitizePeerString } from "../log/logger.js";

/**
 * A short, sanitised description of an opaque frame for the per-request
 * debug line. Frames are codec-specific types the server does not know, so
 * they are rendered as JSON with byte arrays shown as text.
 */
export function describeForLog(value: unknown, max = 200): string {
  if (typeof value === "string") return sanitizePeerString(value, max);
  try {
    // `holder[key]` is the value before toJSON ran: a Buffer's toJSON would
    // otherwise turn it into an array of numbers.
    const json = JSON.stringify(value, function (this: Record<string, unknown>, key, inner: unknown) {
      const original = this[key];
      if (original instanceof Uint8Array) return Buffer.from(original).toString("latin1");
      // Codecs keep attributes in Maps (policy requests), which JSON would print as {}.
      if (original instanceof Map) return Object.fromEntries(original);
      return inner;
    });
    return sanitizePeerString(json ?? String(value), max);
  } catch {
    // Cycles or BigInt: still say something rather than throw on the hot path.
    return sanitizePeerString(String(value), max);
  }
}
