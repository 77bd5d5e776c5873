// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Sieve scripts write variables and encoded characters as ${…}
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkScript } from "./check.js";
import { extensionSet } from "./extensions.js";

const ALL = extensionSet([
  "+editheader",
  "+vacation-seconds",
  "+spamtest",
  "+spamtestplus",
  "+virustest",
]).allowed;

function first(script: string | Uint8Array, severity: "error" | "warning" = "error") {
  const result = checkScript(script, { allowed: ALL });
  return result.diagnostics.find((diagnostic) => diagnostic.severity === severity);
}

describe("checkScript: accepted scripts", () => {
  it.each([
    { name: "empty script", script: "" },
    { name: "keep", script: "keep;" },
    { name: "if/elsif/else", script: "if true { keep; } elsif false { discard; } else { stop; }" },
    { name: "multi-line string with dot-stuffing", script: 'require "reject";\nreject text:\nhi\n..x\n.\n;' },
    { name: "case-insensitive identifiers and tags", script: 'IF HEADER :CONTAINS "Subject" "x" { KEEP; }' },
    { name: "quantifiers", script: "if size :over 1K { discard; } if size :under 2g { keep; }" },
    {
      name: "realistic filter",
      script:
        'require ["fileinto", "variables"];\nif header :matches "list-id" "*<*>*" { set :lower "l" "${2}"; fileinto "Lists/${l}"; }',
    },
    { name: "ihave guards an unknown command", script: 'require "ihave"; if ihave "x-y" { frob; }' },
    { name: "ihave enables an extension", script: 'require "ihave"; if ihave "fileinto" { } fileinto "A";' },
    {
      name: "foreverypart with named break",
      script: 'require "foreverypart"; foreverypart :name "a" { foreverypart { break :name "a"; } }',
    },
    { name: "31 nested blocks", script: `${"if true {".repeat(31)}keep;${"}".repeat(31)}` },
    { name: "30 nested nots", script: `if ${"not ".repeat(30)}true { keep; }` },
  ])("$name", ({ script }) => {
    const result = checkScript(script, { allowed: ALL });
    expect(result.diagnostics.filter((diagnostic) => diagnostic.severity === "error")).toEqual([]);
    expect(result.valid).toBe(true);
  });
});

describe("checkScript: errors with positions", () => {
  it.each([
    { name: "unknown command", script: "keep;\n  frob;", line: 2, column: 3, text: "unknown command 'frob'" },
    { name: "missing require", script: 'fileinto "x";', line: 1, column: 1, text: 'require "fileinto"' },
    {
      name: "extension the server lacks",
      script: 'require "ereject";',
      line: 1,
      column: 9,
      text: "does not offer",
    },
    {
      name: "late require",
      script: 'keep;\nrequire "fileinto";',
      line: 2,
      column: 1,
      text: "only allowed at the top",
    },
    { name: "missing semicolon", script: "keep\ndiscard;", line: 2, column: 1, text: "a ';' missing" },
    {
      name: "unterminated string",
      script: 'keep;\nif header :is "a" "b { keep; }',
      line: 2,
      column: 19,
      text: "quoted string",
    },
    {
      name: "unterminated multi-line",
      script: 'if header :is "a" text:\nx\n',
      line: 1,
      column: 19,
      text: "multi-line",
    },
    { name: "unterminated comment", script: "keep; /* x", line: 1, column: 7, text: "bracket comment" },
    { name: "else without if", script: "keep;\nelse { }", line: 2, column: 1, text: "must follow an if" },
    {
      name: "wrong argument type",
      script: 'if size :over "1" { }',
      line: 1,
      column: 15,
      text: "expects a number",
    },
    {
      name: "duplicate match type",
      script: 'if header :is :contains "a" "b" { }',
      line: 1,
      column: 15,
      text: "conflicts",
    },
    {
      name: "unknown tag",
      script: 'if header :foo "a" "b" { }',
      line: 1,
      column: 11,
      text: "unknown tag :foo",
    },
    {
      name: "tag after positional",
      script: 'if header "a" :is "b" { }',
      line: 1,
      column: 15,
      text: "tags come first",
    },
    { name: "block on keep", script: "keep { }", line: 1, column: 1, text: "does not take a block" },
    { name: "if without block", script: "if true;", line: 1, column: 1, text: "needs a block" },
    {
      name: "bad redirect address",
      script: 'redirect "bob";',
      line: 1,
      column: 10,
      text: "not a valid address",
    },
    {
      name: "bad regex",
      script: 'require "regex";\nif header :regex "s" "(a" { }',
      line: 2,
      column: 22,
      text: "unmatched (",
    },
    {
      name: "bad relational operator",
      script: 'require "relational"; if header :value "GT" "a" "1" { }',
      line: 1,
      column: 40,
      text: '"gt"',
    },
    {
      name: "number too large",
      script: "if size :over 99999999999999999999 { }",
      line: 1,
      column: 15,
      text: "too large",
    },
    {
      name: "32 nested blocks",
      script: `${"if true {".repeat(32)}${"}".repeat(32)}`,
      line: 1,
      column: 288,
      text: "nested too deeply",
    },
    {
      name: "31 nested nots",
      script: `if ${"not ".repeat(31)}true { }`,
      line: 1,
      column: 128,
      text: "nested too deeply",
    },
    {
      name: "break outside foreverypart",
      script: 'require "foreverypart";\nbreak;',
      line: 2,
      column: 1,
      text: "not inside a foreverypart",
    },
    {
      name: "assigning a match variable",
      script: 'require "variables"; set "1" "x";',
      line: 1,
      column: 26,
      text: "match variable",
    },
    {
      name: "vertical tab",
      script: "keep;\u000bstop;",
      line: 1,
      column: 6,
      text: "unexpected character 0x0b",
    },
    {
      name: "encoded unicode out of range",
      script: 'require "encoded-character"; if header :is "a" "${unicode:110000}" { }',
      line: 1,
      column: 48,
      text: "invalid Unicode character",
    },
  ])("$name", ({ script, line, column, text }) => {
    const error = first(script);
    expect(error).toBeDefined();
    expect(error!.message).toContain(text);
    expect({ line: error!.line, column: error!.column }).toEqual({ line, column });
  });

  it("counts columns in characters, not bytes", () => {
    const error = first('require "fileinto"; # grüße\n  fileinto "Grüße" "x";');
    expect(error).toMatchObject({ line: 2, column: 3 });
  });

  it("reports invalid UTF-8 with its position", () => {
    const bytes = Buffer.concat([Buffer.from("keep;\n# caf"), Buffer.from([0xff]), Buffer.from("\n")]);
    expect(first(bytes)).toMatchObject({
      line: 2,
      column: 6,
      message: expect.stringContaining("invalid UTF-8"),
    });
  });

  it("refuses a script over the size limit before parsing it", () => {
    const result = checkScript("keep;\n".repeat(20), { allowed: ALL, maxScriptBytes: 100 });
    expect(result.valid).toBe(false);
    expect(result.diagnostics[0]!.message).toContain("too large");
  });
});

describe("checkScript: warnings only", () => {
  it.each([
    {
      name: "invalid header name",
      script: 'if header :is "a b" "x" { }',
      text: "not a valid header field name",
    },
    {
      name: "unknown date part",
      script: 'require "date"; if currentdate "fortnight" "1" { }',
      text: "date part",
    },
    {
      name: "vacation :days 0",
      script: 'require "vacation"; vacation :days 0 "x";',
      text: "below the minimum",
    },
    { name: "hash comment at the end", script: "keep; # end", text: "no line end" },
    {
      name: "unknown variable namespace",
      script: 'require "variables"; set "a" "${foo.bar}";',
      text: "unknown namespace",
    },
  ])("$name", ({ script, text }) => {
    const result = checkScript(script, { allowed: ALL });
    expect(result.valid).toBe(true);
    expect(result.diagnostics.map((diagnostic) => diagnostic.message).join("\n")).toContain(text);
  });
});

describe("checkScript: includes", () => {
  const includes = {
    read: (location: "personal" | "global", name: string) => {
      const scripts: Record<string, string> = {
        "personal:ok": "keep;",
        "personal:bad": "if true",
        "personal:loop": 'require "include"; include "loop";',
        "global:spam": "discard;",
      };
      const text = scripts[`${location}:${name}`];
      return text === undefined ? null : new TextEncoder().encode(text);
    },
  };

  it.each([
    { script: 'require "include"; include "ok";', valid: true },
    { script: 'require "include"; include "missing";', valid: false },
    { script: 'require "include"; include :optional "missing";', valid: true },
    { script: 'require "include"; include :global "spam";', valid: true },
    { script: 'require "include"; include :global "ok";', valid: false },
    { script: 'require "include"; include "bad";', valid: false },
    { script: 'require "include"; include "loop";', valid: true },
    { script: 'require "include"; include "a/b";', valid: false },
  ])("$script → valid=$valid", ({ script, valid }) => {
    expect(checkScript(script, { allowed: ALL, includes }).valid).toBe(valid);
  });

  it("skips existence checks when no include directories are known", () => {
    expect(checkScript('require "include"; include "whatever";', { allowed: ALL }).valid).toBe(true);
  });
});

describe("checkScript: bounded on hostile input", () => {
  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const result = checkScript(bytes, { allowed: ALL });
        expect(result.diagnostics.length).toBeLessThanOrEqual(201);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on arbitrary token soup", () => {
    const token = fc.constantFrom(
      "if",
      "keep",
      "require",
      '"x"',
      "[",
      "]",
      "(",
      ")",
      "{",
      "}",
      ",",
      ";",
      ":is",
      "42K",
      "text:\n",
      ".\n",
      "header",
      "anyof",
      "not",
      "/*",
      "*/",
      "#",
      "\n",
      '"${',
      "}",
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 300 }), (tokens) => {
        checkScript(tokens.join(" "), { allowed: ALL });
      }),
      { numRuns: 300 },
    );
  });

  it("handles deep nesting and many errors without running away", () => {
    const deep = `${"if true {".repeat(5000)}${"}".repeat(5000)}`;
    expect(checkScript(deep).valid).toBe(false);
    const parens = `if ${"anyof(".repeat(5000)}true${")".repeat(5000)} { }`;
    expect(checkScript(parens).valid).toBe(false);
    const many = checkScript("frob1; ".repeat(5000).replace(/frob1/g, (_, offset: number) => `f${offset}`));
    expect(many.diagnostics.length).toBeLessThanOrEqual(201);
    expect(many.errors).toBe(5000);
  });

  it("validates a 10,000-line script quickly", () => {
    const lines = ['require ["fileinto", "variables"];'];
    for (let index = 0; lines.length < 10_000; index += 1) {
      lines.push(
        `if header :contains "subject" "topic ${index}" { set "n" "${index}"; fileinto "F/\${n}"; }`,
      );
    }
    const script = new TextEncoder().encode(lines.join("\n"));
    // CPU time of the best of a few runs: the machine running the tests is shared.
    let best = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 5; run += 1) {
      const before = process.cpuUsage();
      const result = checkScript(script);
      const used = process.cpuUsage(before);
      best = Math.min(best, (used.user + used.system) / 1000);
      expect(result.valid).toBe(true);
    }
    console.info(`10,000-line script (${script.length} bytes) checked in ${best.toFixed(1)} ms of CPU`);
    // The target is 100 ms on an idle machine; this bound leaves room for a busy one.
    expect(best).toBeLessThan(500);
  });
});
