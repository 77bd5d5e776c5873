import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkScript } from "./check.js";
import { DiagnosticSink } from "./diagnostics.js";
import { extensionSet } from "./extensions.js";
import { renderGlobalScript } from "./global-script.js";
import { parseScript } from "./parser.js";
import { matchesLiteral, sieveString } from "./sieve-writer.js";
import { type FilterRule, parseUserScript, renderUserScript, type UserScript } from "./user-script.js";

const DEFAULT = extensionSet(undefined).allowed;

/** The value of the first string argument of the first command, as the parser sees it. */
function parsedString(source: string): string {
  const parsed = parseScript(new TextEncoder().encode(`x ${source};`), new DiagnosticSink());
  const argument = parsed.commands[0]?.arguments[0];
  return argument?.kind === "string" ? argument.value : "(no string)";
}

describe("sieve-writer", () => {
  it("any text survives sieveString", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const normalised = text.replace(/\r\n?/g, "\n");
        const back = parsedString(sieveString(text)).replace(/\r\n/g, "\n");
        const expected = /\n/.test(normalised)
          ? normalised.endsWith("\n")
            ? normalised
            : `${normalised}\n`
          : normalised;
        expect(back).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("escapes the :matches wildcards", () => {
    expect(matchesLiteral("[SPAM]*?\\")).toBe("[SPAM]\\*\\?\\\\");
  });
});

const address = fc.constantFrom("alice@example.org", "Bob <bob@example.org>", "x.y+z@sub.example.org");
const oneLine = fc.string({ minLength: 1, maxLength: 40 }).filter((text) => !/[\x00-\x1f\x7f]/.test(text));
const filterRule: fc.Arbitrary<FilterRule> = fc.record({
  name: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,10}$/),
  condition: fc.oneof(
    fc.record({
      kind: fc.constant("header" as const),
      header: fc.constantFrom("subject", "list-id", "X-Spam-Flag"),
      match: fc.constantFrom("is" as const, "contains" as const, "matches" as const),
      value: fc.string({ maxLength: 30 }),
    }),
    fc.record({
      kind: fc.constant("address" as const),
      header: fc.constantFrom("from" as const, "to" as const, "cc" as const),
      part: fc.constantFrom("all" as const, "domain" as const, "localpart" as const),
      match: fc.constantFrom("is" as const, "contains" as const),
      value: fc.string({ maxLength: 30 }),
    }),
    fc.record({ kind: fc.constant("size" as const), over: fc.boolean(), bytes: fc.nat() }),
  ),
  folder: oneLine,
  mark_read: fc.boolean(),
  stop: fc.boolean(),
});
const userScript: fc.Arbitrary<UserScript> = fc.record({
  vacation: fc.option(
    fc.record({
      days: fc.integer({ min: 1, max: 365 }),
      subject: fc.string({ maxLength: 40 }).filter((text) => !/[\r\n]/.test(text)),
      from: fc.oneof(fc.constant(""), address),
      addresses: fc.array(address, { maxLength: 3 }),
      message: fc.string({ minLength: 1, maxLength: 200 }),
      start: fc.constantFrom("", "2024-07-01"),
      end: fc.constantFrom("", "2024-07-31"),
    }),
    { nil: null },
  ),
  forward: fc.option(
    fc.record({ to: fc.array(address, { minLength: 1, maxLength: 3 }), keep_copy: fc.boolean() }),
    {
      nil: null,
    },
  ),
  filters: fc.array(filterRule, { maxLength: 4 }),
});

describe("user script", () => {
  it("round-trips: render, parse the markers back, render again — and the script is valid", () => {
    fc.assert(
      fc.property(userScript, (script) => {
        const text = renderUserScript(script);
        const parsed = parseUserScript(text);
        expect(parsed.problems).toEqual([]);
        expect(renderUserScript(parsed.script)).toBe(text);
        const check = checkScript(text, { allowed: DEFAULT });
        expect(check.diagnostics.filter((diagnostic) => diagnostic.severity === "error")).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("an edit of one part keeps the others", () => {
    const first = renderUserScript({
      vacation: null,
      forward: { to: ["bob@example.org"], keep_copy: true },
      filters: [
        {
          name: "lists",
          condition: { kind: "header", header: "list-id", match: "contains", value: "dev" },
          folder: "Lists",
          mark_read: false,
          stop: true,
        },
      ],
    });
    const parsed = parseUserScript(first).script;
    parsed.forward = null;
    const second = renderUserScript(parsed);
    expect(second).not.toContain("redirect");
    expect(second).toContain(
      'if header :contains "list-id" "dev" {\n  fileinto :create "Lists";\n  stop;\n}\n',
    );
    expect(parseUserScript(second).script.filters).toEqual(parsed.filters);
  });

  it("forwarding without a copy stops, so no filter files a copy", () => {
    const text = renderUserScript({
      vacation: null,
      forward: { to: ["bob@example.org"], keep_copy: false },
      filters: [],
    });
    expect(text).toContain('redirect "bob@example.org";\nstop;\n');
    expect(text).not.toContain(":copy");
  });

  it("reports hand edits, unmanaged text, broken markers", () => {
    const text = renderUserScript({
      vacation: null,
      forward: { to: ["bob@example.org"], keep_copy: true },
      filters: [],
    });
    expect(parseUserScript(text.replace('bob@example.org";', 'eve@example.org";')).problems).toEqual([
      { line: 5, message: "the forward part was edited by hand; its settings no longer match its rules" },
    ]);
    expect(parseUserScript(`${text}discard;\n`).problems).toEqual([
      { line: 7, message: "text outside the emailng markers would be lost" },
    ]);
    expect(parseUserScript(text.replace("# emailng:end forward\n", "")).problems[0]?.message).toContain(
      "no matching",
    );
    expect(
      parseUserScript(text.replace('"keep_copy":true', '"keep_copy":"yes"')).problems[0]?.message,
    ).toContain("settings are invalid");
  });
});

describe("global spam script", () => {
  const policy = {
    folder: "Junk",
    subject_tags: ["[SPAM]", "[.SPAM.]", "[..SPAM..]"],
    flag_header: "X-Spam-Flag",
    flag_value: "YES",
    create_folder: true,
    mark_seen: false,
    info_header: "",
    info_value: "filed",
  };

  it("files tagged subjects and the flag header into the folder, and validates", () => {
    const rendered = renderGlobalScript(policy, DEFAULT);
    expect(rendered.valid).toBe(true);
    expect(rendered.script).toContain('header :is "X-Spam-Flag" "YES"');
    expect(rendered.script).toContain('header :matches "subject" "[..SPAM..]*"');
    expect(rendered.script).toContain('fileinto :create "Junk";\n  stop;');
  });

  it("needs editheader for an informational header, and says so", () => {
    const withHeader = { ...policy, info_header: "X-Spam-Filed", mark_seen: true };
    expect(renderGlobalScript(withHeader, DEFAULT).valid).toBe(false);
    const allowed = extensionSet(["+editheader"]).allowed;
    const rendered = renderGlobalScript(withHeader, allowed);
    expect(rendered.valid).toBe(true);
    expect(rendered.script).toContain('addheader "X-Spam-Filed" "filed";');
    expect(rendered.script).toContain(':flags "\\\\Seen"');
  });

  it("escapes wildcards and quotes in tags", () => {
    const rendered = renderGlobalScript({ ...policy, subject_tags: ['*** "SPAM" ***'] }, DEFAULT);
    expect(rendered.valid).toBe(true);
    expect(rendered.script).toContain('"\\\\*\\\\*\\\\* \\"SPAM\\" \\\\*\\\\*\\\\**"');
  });
});
