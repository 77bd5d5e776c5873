/**
 * SASLprep (RFC 4013, the stringprep profile of RFC 3454) for user names and
 * passwords sent with AUTHENTICATE PLAIN, so that a password typed with a
 * non-breaking space or in a decomposed form reaches the server the way it
 * was stored. Query semantics: unassigned code points are allowed. The
 * bidirectional rule uses Unicode script properties (Hebrew, Arabic, Syriac,
 * Thaana, NKo letters as right-to-left) instead of RFC 3454's full table,
 * which is the same for every script a password is realistically typed in.
 */

type Range = readonly [number, number];

/** RFC 3454 B.1: commonly mapped to nothing. */
const MAPPED_TO_NOTHING: readonly Range[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/** RFC 3454 C.1.2: non-ASCII space characters (mapped to SPACE by SASLprep). */
const NON_ASCII_SPACE: readonly Range[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 C.2.1 to C.9, the characters SASLprep prohibits. */
const PROHIBITED: readonly Range[] = [
  [0x0000, 0x001f],
  [0x007f, 0x009f],
  [0x0340, 0x0341],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb],
  [0xd800, 0xdfff],
  [0xe000, 0xf8ff],
  [0xfdd0, 0xfdef],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffd],
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
  [0xf0000, 0xffffd],
  [0x100000, 0x10fffd],
];

function inRanges(code: number, ranges: readonly Range[]): boolean {
  return ranges.some(([low, high]) => code >= low && code <= high);
}

const RIGHT_TO_LEFT = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;
const LETTER = /\p{L}/u;

export class SaslPrepError extends Error {}

/** The prepared string, or a SaslPrepError naming the offending character. */
export function saslPrep(input: string): string {
  let mapped = "";
  for (const char of input) {
    const code = char.codePointAt(0)!;
    if (inRanges(code, MAPPED_TO_NOTHING)) continue;
    mapped += inRanges(code, NON_ASCII_SPACE) ? " " : char;
  }
  const normalized = mapped.normalize("NFKC");
  const chars = Array.from(normalized);
  for (const char of chars) {
    const code = char.codePointAt(0)!;
    // Non-characters U+xFFFE and U+xFFFF in every plane.
    if (inRanges(code, PROHIBITED) || (code & 0xfffe) === 0xfffe) {
      throw new SaslPrepError(`prohibited character U+${code.toString(16).toUpperCase().padStart(4, "0")}`);
    }
  }
  const rtl = chars.map((char) => RIGHT_TO_LEFT.test(char) && LETTER.test(char));
  if (rtl.some(Boolean)) {
    const leftToRight = chars.some((char, index) => !rtl[index] && LETTER.test(char));
    if (leftToRight || !rtl[0] || !rtl[chars.length - 1]) {
      throw new SaslPrepError("mixes right-to-left and left-to-right text (RFC 3454 section 6)");
    }
  }
  return normalized;
}

/** The AUTHENTICATE PLAIN initial response: base64(authzid NUL authcid NUL password), SASLprep'd. */
export function plainInitialResponse(authcid: string, password: string, authzid = ""): string {
  const parts = [authzid === "" ? "" : saslPrep(authzid), saslPrep(authcid), saslPrep(password)];
  if (parts[1] === "") throw new SaslPrepError("the user name is empty");
  return Buffer.from(parts.join("\0"), "utf8").toString("base64");
}
