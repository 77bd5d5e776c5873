// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Sieve scripts write variables and encoded characters as ${…}
import { describe, expect, it } from "vitest";
import { checkPosixExtendedRegex } from "./posix-regex.js";
import { decodeEncodedCharacters, findVariableReferences } from "./strings.js";
import { checkAddress, checkNotifyUri } from "./values.js";

describe("checkAddress", () => {
  it.each([
    { input: "a@b.c", want: null },
    { input: "A Name <a@b.c>", want: null },
    { input: "<a@b.c>", want: null },
    { input: '"a b"@c.d', want: null },
    { input: "a(comment)@b.c", want: null },
    { input: "a @ b.c", want: null },
    { input: "a@[192.0.2.1]", want: null },
    { input: "a@b", want: null },
    { input: "", want: "empty address" },
    { input: "bob", want: "invalid or lonely local part 'bob' (expecting '@')" },
    { input: "<>", want: "invalid local part" },
    { input: "a@b..c", want: "invalid or missing domain" },
    { input: "a@b.c.", want: "invalid or missing domain" },
    { input: "a@b.c, d@e.f", want: "not a single address (found ',')" },
    { input: "é@x.fr", want: "invalid local part" },
  ])("$input", ({ input, want }) => {
    expect(checkAddress(input)).toBe(want);
  });
});

describe("checkPosixExtendedRegex (glibc's verdicts)", () => {
  it.each([
    { pattern: "^\\[(ticket|bug) #[0-9]+\\]", want: null },
    { pattern: "a**", want: null },
    { pattern: "a)", want: null },
    { pattern: "a{,3}", want: null },
    { pattern: "[]a]", want: null },
    { pattern: "[[:alpha:]]", want: null },
    { pattern: "(a)\\1", want: null },
    { pattern: "(", want: "unmatched ( or \\(" },
    { pattern: "*a", want: "invalid preceding regular expression" },
    { pattern: "a|*b", want: "invalid preceding regular expression" },
    { pattern: "(?i)a", want: "invalid preceding regular expression" },
    { pattern: "a{2,1}", want: "invalid content of \\{\\}" },
    { pattern: "a{1", want: "unmatched \\{" },
    { pattern: "a{99999}", want: "regular expression too big" },
    { pattern: "[a", want: "unmatched [, [^, [:, [., or [=" },
    { pattern: "[[:foo:]]", want: "invalid character class name" },
    { pattern: "[z-a]", want: "invalid range end" },
    { pattern: "\\1", want: "invalid back reference" },
    { pattern: "a\\", want: "trailing backslash" },
  ])("$pattern", ({ pattern, want }) => {
    expect(checkPosixExtendedRegex(pattern)).toBe(want);
  });
});

describe("notify URIs", () => {
  it.each([
    { uri: "mailto:a@b.c", error: null },
    { uri: "MAILTO:a@b.c?subject=x", error: null },
    { uri: "mailto:a@b.c%2Cd@e.f", error: null },
    { uri: "xmpp:a@b.c", error: "invalid method 'xmpp'" },
    { uri: "nourl", error: "invalid scheme part for method URI 'nourl'" },
    { uri: "mailto:a@b.c,d@e.f", error: "mailto URI: invalid character ',' in 'to' part" },
    { uri: "mailto:a@b.c%zz", error: "mailto URI: invalid % encoding" },
    { uri: "mailto:a@b.c?body=a b", error: "mailto URI: invalid character ' ' in header field value part" },
  ])("$uri", ({ uri, error }) => {
    expect(checkNotifyUri(uri).error).toBe(error);
  });
});

describe("strings", () => {
  it("decodes encoded characters and leaves malformed ones", () => {
    const problems: string[] = [];
    const report = (problem: { message: string }) => problems.push(problem.message);
    expect(decodeEncodedCharacters("${hex:41 42}${unicode:263a}${hex:zz}", report)).toBe("AB☺${hex:zz}");
    expect(decodeEncodedCharacters("${unicode:D800}", report)).toBe("${unicode:D800}");
    expect(problems).toHaveLength(1);
  });

  it("finds variable references and ignores non-references", () => {
    const found = findVariableReferences("${a} ${1} ${ns.x} ${not valid} ${-} ${b");
    expect(found.map((reference) => [reference.namespace, reference.name])).toEqual([
      [[], "a"],
      [[], "1"],
      [["ns"], "x"],
    ]);
  });
});
