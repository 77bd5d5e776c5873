// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Sieve scripts write variables as ${…}
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkScript } from "./check.js";
import { type InterpretResult, interpret, requiredExtensions } from "./interpreter.js";
import { compare, matchOne } from "./matching.js";
import { decodeEncodedWords, parseAddressList, parseMessage } from "./message.js";
import { formatResult } from "./test-command.js";

const MESSAGE = [
  "From: Alice <alice@example.org>",
  "To: bob+lists@example.org, carol@example.com",
  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and the weekly report",
  "X-Score: 7",
  "Received: a",
  "Received: b",
  "",
  "Hello world, total 42.",
  "",
].join("\r\n");

function run(
  script: string,
  message = MESSAGE,
  envelope = { from: "alice@example.org", to: "bob+lists@example.org" },
): InterpretResult {
  const checked = checkScript(script);
  expect(checked.diagnostics.filter((diagnostic) => diagnostic.severity === "error")).toEqual([]);
  return interpret(checked.commands, parseMessage(new TextEncoder().encode(message)), {
    envelope,
    required: requiredExtensions(checked.commands),
  });
}

function folders(result: InterpretResult): string[] {
  if (result.status === "error") return [`error: ${result.message}`];
  return result.actions.flatMap((action) => (action.kind === "store" ? [action.folder] : [action.kind]));
}

describe("interpret", () => {
  it.each([
    { name: "implicit keep only", script: "if false { discard; }", want: [] },
    {
      name: "header decoded, non-ASCII letters compared exactly",
      script: 'require "fileinto"; if header :contains "subject" "grÜße" { fileinto "A"; }',
      want: [],
    },
    {
      name: "ASCII-only case folding",
      script: 'require "fileinto"; if header :contains "subject" "Grüße AND" { fileinto "A"; }',
      want: ["A"],
    },
    {
      name: "matches captures",
      script:
        'require ["fileinto", "variables"]; if header :matches "subject" "* and *" { fileinto "${2}"; }',
      want: ["the weekly report"],
    },
    {
      name: "address parts",
      script:
        'require ["fileinto", "subaddress"]; if address :detail "to" "lists" { fileinto "D"; } if address :domain :is "to" "example.com" { fileinto "C"; }',
      want: ["D", "C"],
    },
    {
      name: "count of header values",
      script:
        'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { fileinto "Two"; }',
      want: ["Two"],
    },
    {
      name: "numeric value",
      script:
        'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; if header :value "gt" :comparator "i;ascii-numeric" "x-score" "10" { fileinto "High"; } else { fileinto "Low"; }',
      want: ["Low"],
    },
    {
      name: "body",
      script: 'require ["fileinto", "body"]; if body :contains "total 42" { fileinto "B"; }',
      want: ["B"],
    },
    {
      name: "envelope",
      script:
        'require ["fileinto", "envelope"]; if envelope :localpart :is "to" "bob+lists" { fileinto "E"; }',
      want: ["E"],
    },
    { name: "stop", script: 'require "fileinto"; fileinto "A"; stop; fileinto "B";', want: ["A"] },
    {
      name: "reject conflicts with fileinto",
      script: 'require ["fileinto", "reject"]; fileinto "A"; reject "no";',
      want: ["error: reject conflicts with the earlier store action"],
    },
    {
      name: "fifth redirect",
      script:
        'redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org"; redirect "d@x.org"; redirect "e@x.org";',
      want: ["error: more than 4 redirect actions (the server's limit)"],
    },
  ])("$name", ({ script, want }) => {
    expect(folders(run(script))).toEqual(want);
  });

  it("keeps flags with the implicit keep and prints the result", () => {
    const result = run('require "imap4flags"; addflag ["$Later", "\\\\Seen"];');
    expect(result).toEqual({ status: "ok", actions: [], implicitKeep: { flags: ["\\seen", "$Later"] } });
    expect(formatResult(result)).toBe(
      'actions:\n  (none)\nimplicit keep: store in "INBOX" with flags \\seen $Later\n',
    );
  });

  it("describes a vacation reply", () => {
    const result = run('require "vacation"; vacation :days 2 :subject "Away" "Back on\nMonday.";');
    expect(formatResult(result)).toContain(
      'send vacation reply (at most once every 2 day(s), subject "Away"):\n      | Back on\n      | Monday.',
    );
  });

  it("caps variable values at 4000 bytes", () => {
    const doubling = Array.from({ length: 20 }, () => 'set "v" "${v}${v}";').join(" ");
    const result = run(
      `require ["variables", "fileinto"]; set "v" "ab"; ${doubling} set :length "n" "\${v}"; fileinto "\${n}";`,
    );
    expect(folders(result)).toEqual(["4000"]);
  });
});

describe("matching", () => {
  it.each([
    { value: "10", key: "9", want: 1 },
    { value: "09", key: "9", want: 0 },
    { value: "abc", key: "99999", want: 1 },
    { value: "abc", key: "xyz", want: 0 },
  ])("i;ascii-numeric compares $value with $key", ({ value, key, want }) => {
    expect(compare(value, key, "i;ascii-numeric")).toBe(want);
  });

  it("shortest match for each * and captures from the original text", () => {
    expect(matchOne("aXbYbZ", "a*b*", { kind: "matches" }, "i;ascii-casemap").captures).toEqual([
      "aXbYbZ",
      "X",
      "YbZ",
    ]);
    expect(matchOne("ABC", "a?c", { kind: "matches" }, "i;ascii-casemap").captures).toEqual(["ABC", "B"]);
    expect(matchOne("a*b", "a\\*b", { kind: "matches" }, "i;octet").matched).toBe(true);
  });

  it("never throws on arbitrary patterns and values", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (value, key) => {
        for (const kind of ["is", "contains", "matches", "regex"] as const) {
          matchOne(value, key, { kind }, "i;ascii-casemap");
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("message parsing", () => {
  it("parses address lists with names, comments, groups and quotes", () => {
    expect(parseAddressList('"Smith, John" <john@x.org>, (c) jane@y.org, team: a@z.org, b@z.org;')).toEqual([
      { local: "john", domain: "x.org" },
      { local: "jane", domain: "y.org" },
      { local: "a", domain: "z.org" },
      { local: "b", domain: "z.org" },
    ]);
  });

  it("decodes encoded words, joining adjacent ones", () => {
    expect(decodeEncodedWords("=?UTF-8?B?R3LDvA==?= =?UTF-8?Q?=C3=9Fe?= x")).toBe("Grüße x");
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        parseMessage(bytes);
      }),
      { numRuns: 300 },
    );
  });
});
