/**
 * Checks of constant argument values that Pigeonhole makes at compile time:
 * e-mail addresses (redirect, vacation :from, mailto recipients), header
 * field names, notification method URIs. Each returns null when the value
 * is acceptable or the reason it is not, in words close to Pigeonhole's so
 * an administrator who compares the two outputs sees the same complaint.
 */

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;

function isAtext(c: string): boolean {
  return ATEXT.test(c);
}

/** Domain labels also take UTF-8 (internationalised domains), as Pigeonhole does. */
function isDomainText(c: string): boolean {
  return isAtext(c) || c.charCodeAt(0) >= 0x80;
}

class AddressScanner {
  index = 0;
  constructor(readonly text: string) {}

  peek(): string {
    return this.text[this.index] ?? "";
  }

  /** Skips folding white space and (nested) comments; false on an unterminated comment. */
  skipCfws(): boolean {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || c === "\r" || c === "\n") {
        this.index += 1;
        continue;
      }
      if (c === "(") {
        let depth = 0;
        do {
          const d = this.peek();
          if (d === "") return false;
          if (d === "\\") this.index += 1;
          else if (d === "(") depth += 1;
          else if (d === ")") depth -= 1;
          this.index += 1;
        } while (depth > 0);
        continue;
      }
      return true;
    }
  }

  quoted(): boolean {
    this.index += 1;
    for (;;) {
      const c = this.peek();
      if (c === "") return false;
      this.index += 1;
      if (c === "\\") {
        if (this.peek() === "") return false;
        this.index += 1;
      } else if (c === '"') {
        return true;
      }
    }
  }

  atom(test: (c: string) => boolean): string {
    const begin = this.index;
    while (this.peek() !== "" && test(this.peek())) this.index += 1;
    return this.text.slice(begin, this.index);
  }
}

/** local-part "@" domain at the scanner's position; null when fine. */
function addrSpec(scanner: AddressScanner): string | null {
  const localStart = scanner.index;
  let words = 0;
  for (;;) {
    if (!scanner.skipCfws()) return "unterminated comment";
    if (scanner.peek() === '"') {
      if (!scanner.quoted()) return "unterminated quoted string in local part";
      words += 1;
    } else if (scanner.atom(isAtext) !== "") {
      words += 1;
    }
    if (!scanner.skipCfws()) return "unterminated comment";
    // Pigeonhole tolerates empty words between dots ("a..b").
    if (scanner.peek() === ".") {
      scanner.index += 1;
      continue;
    }
    break;
  }
  if (words === 0) return "invalid local part";
  if (scanner.peek() !== "@") {
    const local = scanner.text.slice(localStart, scanner.index).trim();
    if (scanner.peek() === "" || scanner.peek() === ">") {
      return `invalid or lonely local part '${local}' (expecting '@')`;
    }
    return "invalid local part";
  }
  scanner.index += 1;
  if (!scanner.skipCfws()) return "unterminated comment";
  if (scanner.peek() === "[") {
    const close = scanner.text.indexOf("]", scanner.index);
    if (close < 0) return "invalid or missing domain";
    scanner.index = close + 1;
    return null;
  }
  for (;;) {
    if (scanner.atom(isDomainText) === "") return "invalid or missing domain";
    if (!scanner.skipCfws()) return "unterminated comment";
    if (scanner.peek() !== ".") return null;
    scanner.index += 1;
    if (!scanner.skipCfws()) return "unterminated comment";
  }
}

/**
 * One RFC 5322 address: an addr-spec, or a name-addr ("Name <a@b>").
 * null when valid, else the reason.
 */
export function checkAddress(text: string): string | null {
  const scanner = new AddressScanner(text);
  if (!scanner.skipCfws()) return "unterminated comment";
  if (scanner.peek() === "") return "empty address";
  const angle = findAngle(text);
  if (angle >= 0) {
    // Display name: words and quoted strings up to '<'.
    scanner.index = angle + 1;
    const problem = addrSpec(scanner);
    if (problem !== null) return problem;
    if (scanner.peek() !== ">") return "missing '>' at the end of the address";
    scanner.index += 1;
  } else {
    const problem = addrSpec(scanner);
    if (problem !== null) return problem;
  }
  if (!scanner.skipCfws()) return "unterminated comment";
  const rest = scanner.peek();
  if (rest === ",") return "not a single address (found ',')";
  if (rest !== "") return `unexpected '${rest}' after the address`;
  return null;
}

/** Index of the '<' that opens an angle address outside quotes and comments, or -1. */
function findAngle(text: string): number {
  let quoted = false;
  let comment = 0;
  for (let index = 0; index < text.length; index += 1) {
    const c = text[index];
    if (c === "\\") {
      index += 1;
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
      continue;
    }
    if (c === "(") comment += 1;
    else if (c === ")" && comment > 0) comment -= 1;
    else if (comment === 0 && c === '"') quoted = true;
    else if (comment === 0 && c === "<") return index;
  }
  return -1;
}

/** RFC 5322 field-name: printable US-ASCII except ':'. The empty name is not checked (Pigeonhole). */
export function isValidHeaderName(name: string): boolean {
  return /^[\x21-\x39\x3b-\x7e]+$/.test(name);
}

/** Header fields the address test accepts (Pigeonhole's list of address-carrying fields). */
export const ADDRESS_HEADERS: ReadonlySet<string> = new Set([
  "from",
  "sender",
  "to",
  "cc",
  "bcc",
  "reply-to",
  "resent-from",
  "resent-sender",
  "resent-to",
  "resent-cc",
  "resent-bcc",
  "resent-reply-to",
  "return-receipt-to",
  "errors-to",
  "delivered-to",
  "x-original-to",
  "mail-followup-to",
  "mail-reply-to",
  "apparently-to",
]);

const URI_SCHEME = /^([A-Za-z][A-Za-z0-9+\-.]*):/;
const TO_CHAR = /^[A-Za-z0-9\-._~!$'()*+;:@]$/;
const HEADER_NAME_CHAR = /^[A-Za-z0-9\-._~!$'()*+,;:@/?]$/;
const HEADER_VALUE_CHAR = /^[A-Za-z0-9\-._~!$'()*+,;:@/?=]$/;

export interface NotifyUriCheck {
  error: string | null;
  warnings: string[];
}

/** The enotify method URI; only mailto is a method Pigeonhole offers. */
export function checkNotifyUri(uri: string): NotifyUriCheck {
  const scheme = URI_SCHEME.exec(uri);
  if (scheme === null) return { error: `invalid scheme part for method URI '${uri}'`, warnings: [] };
  if (scheme[1]!.toLowerCase() !== "mailto") {
    return { error: `invalid method '${scheme[1]}'`, warnings: [] };
  }
  return checkMailtoUri(uri.slice(scheme[0].length));
}

function percentDecode(text: string): string | null {
  const bytes: number[] = [];
  for (let index = 0; index < text.length; index += 1) {
    const c = text[index]!;
    if (c === "%") {
      const hex = text.slice(index + 1, index + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      bytes.push(Number.parseInt(hex, 16));
      index += 2;
    } else {
      for (const byte of new TextEncoder().encode(c)) bytes.push(byte);
    }
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

const RESERVED_MAILTO_HEADERS = new Set([
  "from",
  "sender",
  "message-id",
  "in-reply-to",
  "references",
  "date",
  "received",
  "auto-submitted",
  "return-path",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
  "resent-from",
  "resent-sender",
  "resent-to",
  "resent-cc",
  "resent-bcc",
  "resent-date",
  "resent-message-id",
]);

function checkMailtoUri(rest: string): NotifyUriCheck {
  const warnings: string[] = [];
  const question = rest.indexOf("?");
  const toPart = question < 0 ? rest : rest.slice(0, question);
  let recipients = 0;
  for (const c of toPart) {
    if (c !== "%" && !TO_CHAR.test(c)) {
      return { error: `mailto URI: invalid character '${c}' in 'to' part`, warnings };
    }
  }
  const decodedTo = percentDecode(toPart);
  if (decodedTo === null) return { error: "mailto URI: invalid % encoding", warnings };
  const checkRecipients = (list: string): string | null => {
    for (const recipient of list.split(",")) {
      if (recipient === "" && list === "") continue;
      const problem = checkAddress(recipient);
      if (problem !== null) return `mailto URI: invalid recipient '${recipient}': ${problem}`;
      recipients += 1;
    }
    return null;
  };
  if (decodedTo !== "") {
    const problem = checkRecipients(decodedTo);
    if (problem !== null) return { error: problem, warnings };
  }
  if (question >= 0) {
    const seen = new Set<string>();
    for (const field of rest.slice(question + 1).split("&")) {
      if (field === "" && rest.length > question + 1) {
        return { error: "mailto URI: invalid character '&' in header field name part", warnings };
      }
      const equals = field.indexOf("=");
      const rawName = equals < 0 ? field : field.slice(0, equals);
      const rawValue = equals < 0 ? "" : field.slice(equals + 1);
      for (const c of rawName) {
        if (c !== "%" && !HEADER_NAME_CHAR.test(c)) {
          return { error: `mailto URI: invalid character '${c}' in header field name part`, warnings };
        }
      }
      for (const c of rawValue) {
        if (c !== "%" && !HEADER_VALUE_CHAR.test(c)) {
          return { error: `mailto URI: invalid character '${c}' in header field value part`, warnings };
        }
      }
      const name = percentDecode(rawName);
      const value = percentDecode(rawValue);
      if (name === null || value === null) return { error: "mailto URI: invalid % encoding", warnings };
      if (name === "") continue;
      if (!isValidHeaderName(name)) return { error: "mailto URI: invalid header field name", warnings };
      const lower = name.toLowerCase();
      if (lower === "to" || lower === "cc" || lower === "bcc") {
        const problem = checkRecipients(value);
        if (problem !== null) return { error: problem, warnings };
        continue;
      }
      if (RESERVED_MAILTO_HEADERS.has(lower)) {
        warnings.push(`mailto URI: ignored reserved header field '${lower}'`);
        continue;
      }
      if ((lower === "subject" || lower === "body") && seen.has(lower)) {
        warnings.push(`mailto URI: ignored duplicate ${lower} field`);
      }
      seen.add(lower);
    }
  }
  if (recipients === 0) warnings.push("mailto URI: notification URI specifies no recipients");
  return { error: null, warnings };
}
