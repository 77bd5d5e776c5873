/**
 * Makes peer-supplied text safe to put in a log line: control characters
 * (C0, DEL, C1) become "?" as Postfix does in its own logs, so a peer cannot
 * forge log lines or hide text with terminal escapes, and the result is cut
 * to a bounded length so a hostile peer cannot inflate the logs. Kept local
 * to core/net on purpose (core/log is written in parallel); it is small
 * enough to merge later.
 */

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Replace control characters with "?" and cut to `max` characters, marking the cut with "…". */
export function sanitizeForLog(text: string, max = 200): string {
  // Cut first so the replacement never walks a megabyte-long string.
  const cut = text.length > max ? text.slice(0, max) : text;
  const clean = cut.replace(CONTROL_CHARACTERS, "?");
  return text.length > max ? `${clean}…` : clean;
}

/**
 * A short, sanitised description of an opaque frame for the per-request
 * debug line. Frames are codec-specific types the server does not know, so
 * they are rendered as JSON with byte arrays shown as text.
 */
export function describeForLog(value: unknown, max = 200): string {
  if (typeof value === "string") return sanitizeForLog(value, max);
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
    return sanitizeForLog(json ?? String(value), max);
  } catch {
    // Cycles or BigInt: still say something rather than throw on the hot path.
    return sanitizeForLog(String(value), max);
  }
}
