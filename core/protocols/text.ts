/**
 * Small text helpers shared by the codecs: UTF-8 conversion that never
 * throws, strict UTF-8 validation for peer input, and sanitising of the
 * free-form texts we put on the wire (policy action texts, socketmap
 * reasons, dict error strings). Peers treat those texts differently
 * (Postfix rejects invalid UTF-8 in an action, logs non-printables as "?"),
 * so every outgoing text passes through here before it is encoded.
 */

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Replaces lone UTF-16 surrogates with U+FFFD so that the string has a UTF-8 form. */
export function toWellFormed(text: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++; // a valid pair
      continue;
    }
    out += text.slice(start, i) + "\uFFFD";
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

export function utf8Encode(text: string): Uint8Array {
  // Buffer.from, unlike TextEncoder, takes small results from Node's shared pool instead of allocating
  // an ArrayBuffer per reply; both write U+FFFD for a lone surrogate. Callers must not use `.buffer`.
  return Buffer.from(text, "utf8");
}

/** Strict decoding of peer bytes: undefined when they are not valid UTF-8. */
export function utf8DecodeStrict(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Lenient decoding for places where Postfix itself passes bytes through (attribute values). */
export function utf8DecodeLenient(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}

/** UTF-8 length of a string without encoding it (lone surrogates count 3, as TextEncoder writes U+FFFD). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Cuts a string to at most maxBytes of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text; // fast path: cannot exceed
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/**
 * Makes a text safe for a single-line protocol field: well-formed Unicode,
 * every control character (C0, DEL, C1, line/paragraph separators) replaced
 * by a space, runs of spaces kept as they are, bounded in UTF-8 bytes.
 */
export function sanitizeLineText(text: string, maxBytes: number): string {
  const cleaned = toWellFormed(text).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ");
  return truncateUtf8(cleaned, maxBytes);
}

/**
 * Stricter: printable ASCII only, anything else becomes "?" (what Postfix
 * shows in its logs anyway), bounded in bytes (= characters here).
 */
export function sanitizeAscii(text: string, maxBytes: number): string {
  let out = "";
  for (const char of text) {
    if (out.length >= maxBytes) break;
    const code = char.codePointAt(0) ?? 0;
    out += code >= 0x20 && code <= 0x7e ? char : "?";
  }
  return out;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
