/**
 * The message a Sieve script is tested against, read from RFC 5322 bytes:
 * header fields (unfolded, with RFC 2047 encoded words decoded, as Sieve's
 * header test wants them), the raw body, the MIME parts with their content
 * type and decoded text (for the body test), and address lists parsed into
 * local part and domain (for the address test). Bounded: at most 1000
 * header fields per part, 100 parts, 10 levels of multipart nesting; the
 * rest of an over-limit message is treated as opaque body.
 */

export interface HeaderField {
  /** As written. */
  name: string;
  /** Unfolded, surrounding white space removed, not decoded. */
  raw: string;
}

export interface MimePart {
  headers: HeaderField[];
  /** "text/plain" when the part has no usable Content-Type. */
  contentType: string;
  /** Body bytes as transmitted (transfer encoding not undone). */
  rawBody: Uint8Array;
  /** Decoded text of a text/* part (transfer encoding undone, charset converted); null otherwise. */
  text: string | null;
  children: MimePart[];
}

export interface Message {
  headers: HeaderField[];
  rawBody: Uint8Array;
  size: number;
  /** The top part and every part below it, depth first. */
  parts: MimePart[];
}

export interface Address {
  local: string;
  domain: string;
}

const MAX_HEADERS = 1000;
const MAX_PARTS = 100;
const MAX_DEPTH = 10;

function latin1(bytes: Uint8Array): string {
  return new TextDecoder("latin1").decode(bytes);
}

function decodeCharset(bytes: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset.toLowerCase() === "us-ascii" ? "utf-8" : charset).decode(bytes);
  } catch {
    return new TextDecoder("utf-8").decode(bytes);
  }
}

/** Splits header section and body; tolerates LF-only line ends. */
function splitHeader(bytes: Uint8Array): { header: string; body: Uint8Array } {
  for (let index = 0; index < bytes.length; index += 1) {
    if (bytes[index] !== 0x0a) continue;
    if (index === 0) return { header: "", body: bytes.subarray(1) };
    const next = bytes[index + 1];
    if (next === 0x0a)
      return { header: latin1(bytes.subarray(0, index + 1)), body: bytes.subarray(index + 2) };
    if (next === 0x0d && bytes[index + 2] === 0x0a) {
      return { header: latin1(bytes.subarray(0, index + 1)), body: bytes.subarray(index + 3) };
    }
  }
  return { header: latin1(bytes), body: new Uint8Array(0) };
}

function parseHeaderFields(section: string): HeaderField[] {
  // Header bytes were read as latin1; re-read them as UTF-8 (RFC 6532) where they are valid.
  const text = (() => {
    const bytes = Uint8Array.from(section, (c) => c.charCodeAt(0));
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return section;
    }
  })();
  const fields: HeaderField[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === "") continue;
    if ((line.startsWith(" ") || line.startsWith("\t")) && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      last.raw = `${last.raw} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0 || fields.length >= MAX_HEADERS) continue;
    fields.push({ name: line.slice(0, colon).trim(), raw: line.slice(colon + 1).trim() });
  }
  for (const field of fields) field.raw = field.raw.replace(/[ \t]+$/, "");
  return fields;
}

/** RFC 2047 encoded words to text; white space between adjacent encoded words disappears. */
export function decodeEncodedWords(value: string): string {
  const word = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;
  return value
    .replace(/(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)/g, "$1")
    .replace(word, (whole, charset: string, encoding: string, text: string) => {
      const name = charset.split("*")[0]!;
      let bytes: Uint8Array;
      if (encoding.toUpperCase() === "B") {
        bytes = Buffer.from(text, "base64");
      } else {
        const out: number[] = [];
        for (let index = 0; index < text.length; index += 1) {
          const c = text[index]!;
          if (c === "_") out.push(0x20);
          else if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(index + 1, index + 3))) {
            out.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
            index += 2;
          } else out.push(c.charCodeAt(0) & 0xff);
        }
        bytes = Uint8Array.from(out);
      }
      try {
        return new TextDecoder(name.toLowerCase() === "us-ascii" ? "utf-8" : name, { fatal: false }).decode(
          bytes,
        );
      } catch {
        return whole;
      }
    });
}

export function headerValues(headers: readonly HeaderField[], name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter((field) => field.name.toLowerCase() === lower).map((field) => field.raw);
}

interface ContentType {
  type: string;
  params: Map<string, string>;
}

function parseContentType(value: string | undefined): ContentType {
  const params = new Map<string, string>();
  if (value === undefined) return { type: "text/plain", params };
  const [head = "", ...rest] = value.split(";");
  for (const part of rest) {
    const equals = part.indexOf("=");
    if (equals < 0) continue;
    const key = part.slice(0, equals).trim().toLowerCase();
    let parameter = part.slice(equals + 1).trim();
    if (parameter.startsWith('"') && parameter.endsWith('"') && parameter.length >= 2)
      parameter = parameter.slice(1, -1);
    params.set(key, parameter);
  }
  const type = head.trim().toLowerCase();
  return { type: /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : "text/plain", params };
}

function decodeTransfer(body: Uint8Array, encoding: string): Uint8Array {
  switch (encoding.toLowerCase()) {
    case "base64":
      return Buffer.from(latin1(body).replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
    case "quoted-printable": {
      const text = latin1(body).replace(/=\r?\n/g, "");
      const out: number[] = [];
      for (let index = 0; index < text.length; index += 1) {
        const c = text[index]!;
        if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(index + 1, index + 3))) {
          out.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
          index += 2;
        } else out.push(c.charCodeAt(0));
      }
      return Uint8Array.from(out);
    }
    default:
      return body;
  }
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(
    Buffer.from(needle),
    from,
  );
}

function splitMultipart(body: Uint8Array, boundary: string): Uint8Array[] {
  const delimiter = new TextEncoder().encode(`--${boundary}`);
  const parts: Uint8Array[] = [];
  let position = indexOfBytes(body, delimiter, 0);
  while (position >= 0 && parts.length < MAX_PARTS) {
    let start = position + delimiter.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break;
    const lineEnd = body.indexOf(0x0a, start);
    if (lineEnd < 0) break;
    start = lineEnd + 1;
    const next = indexOfBytes(body, delimiter, start);
    if (next < 0) {
      parts.push(body.subarray(start));
      break;
    }
    let end = next;
    if (body[end - 1] === 0x0a) end -= 1;
    if (body[end - 1] === 0x0d) end -= 1;
    parts.push(body.subarray(start, Math.max(start, end)));
    position = next;
  }
  return parts;
}

function parsePart(bytes: Uint8Array, depth: number, all: MimePart[]): MimePart {
  const { header, body } = splitHeader(bytes);
  const headers = parseHeaderFields(header);
  return buildPart(headers, body, depth, all);
}

function buildPart(headers: HeaderField[], body: Uint8Array, depth: number, all: MimePart[]): MimePart {
  const contentType = parseContentType(headerValues(headers, "content-type")[0]);
  const part: MimePart = { headers, contentType: contentType.type, rawBody: body, text: null, children: [] };
  all.push(part);
  const boundary = contentType.params.get("boundary");
  if (contentType.type.startsWith("multipart/") && boundary !== undefined && depth < MAX_DEPTH) {
    for (const child of splitMultipart(body, boundary)) {
      if (all.length >= MAX_PARTS) break;
      part.children.push(parsePart(child, depth + 1, all));
    }
  } else if (contentType.type.startsWith("text/")) {
    const encoding = headerValues(headers, "content-transfer-encoding")[0] ?? "7bit";
    part.text = decodeCharset(
      decodeTransfer(body, encoding.trim()),
      contentType.params.get("charset") ?? "utf-8",
    );
  }
  return part;
}

export function parseMessage(bytes: Uint8Array): Message {
  const { header, body } = splitHeader(bytes);
  const headers = parseHeaderFields(header);
  const parts: MimePart[] = [];
  buildPart(headers, body, 0, parts);
  return { headers, rawBody: body, size: bytes.length, parts };
}

/**
 * The addresses in an address-list header value: name-addr and addr-spec,
 * groups flattened, comments dropped, entries without local@domain left out.
 */
export function parseAddressList(value: string): Address[] {
  const withoutComments = stripComments(value);
  const addresses: Address[] = [];
  for (const entry of splitTopLevel(withoutComments)) {
    let text = entry.trim().replace(/;$/, "").trim();
    const group = /^[^"<@]*:(.*)$/.exec(text);
    if (group !== null) text = group[1]!.trim();
    if (text === "") continue;
    const angle = /<([^>]*)>/.exec(text);
    const spec = (angle === null ? text : angle[1]!).trim();
    if (spec === "") continue;
    const at = spec.lastIndexOf("@");
    // Entries that are not addresses are skipped, as Pigeonhole does.
    if (at <= 0 || at === spec.length - 1) continue;
    addresses.push({ local: unquote(spec.slice(0, at).trim()), domain: spec.slice(at + 1).trim() });
  }
  return addresses;
}

function unquote(local: string): string {
  return local.startsWith('"') && local.endsWith('"') && local.length >= 2
    ? local.slice(1, -1).replace(/\\(.)/g, "$1")
    : local;
}

function stripComments(value: string): string {
  let out = "";
  let depth = 0;
  let quoted = false;
  for (let index = 0; index < value.length; index += 1) {
    const c = value[index]!;
    if (c === "\\" && index + 1 < value.length) {
      if (depth === 0) out += c + value[index + 1];
      index += 1;
      continue;
    }
    if (quoted) {
      out += c;
      if (c === '"') quoted = false;
    } else if (c === "(") depth += 1;
    else if (c === ")" && depth > 0) depth -= 1;
    else if (depth === 0) {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out;
}

function splitTopLevel(value: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let angle = false;
  for (let index = 0; index < value.length; index += 1) {
    const c = value[index]!;
    if (c === "\\" && quoted) {
      current += c + (value[index + 1] ?? "");
      index += 1;
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === "<") angle = true;
    else if (!quoted && c === ">") angle = false;
    if (c === "," && !quoted && !angle) {
      parts.push(current);
      current = "";
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}
