import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadVectorFile } from "../../test/harness/vectors.js";
import {
  type DecodeResult,
  describeResponse,
  encodeCommand,
  encodeContinuation,
  MANAGESIEVE_LIMITS,
  ManageSieveDecoder,
  parseCapabilities,
  type ResponseLine,
} from "./managesieve.js";
import { plainInitialResponse, SaslPrepError, saslPrep } from "./managesieve-saslprep.js";

const VECTORS = new URL("../../test/fixtures/sieve/vectors/", import.meta.url).pathname;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);

function decodeAll(input: Uint8Array, chunkSize = input.length): DecodeResult[] {
  const decoder = new ManageSieveDecoder();
  const results: DecodeResult[] = [];
  for (let offset = 0; offset < input.length; offset += Math.max(1, chunkSize)) {
    results.push(...decoder.push(input.subarray(offset, offset + Math.max(1, chunkSize))));
  }
  return results;
}

function finals(results: DecodeResult[]): string[] {
  return results.flatMap((result) => (result.kind === "done" ? [describeResponse(result)] : []));
}

describe("decoding Dovecot's managesieved (captured vectors)", () => {
  const session = loadVectorFile("managesieve-01-normal-session.txt", VECTORS).connections[0]!;

  it.each([1, 7, 1_000_000])("normal session in chunks of %i bytes", (chunk) => {
    const results = decodeAll(session.serverBytes, chunk);
    expect(results.some((result) => result.kind === "error")).toBe(false);
    expect(finals(results)).toEqual([
      'OK "Dovecot (Debian) ready."',
      'OK "Capability completed."',
      'OK "Logged in."',
      'OK "Capability completed."',
      'OK "Putscript would succeed."',
      'NO (QUOTA/MAXSIZE) "Script is too large (max 1024 bytes)."',
      'OK "PUTSCRIPT completed."',
      'OK "Script checked successfully."',
      'OK "Listscripts completed."',
      'OK "Script is already active."',
      'OK "Listscripts completed."',
      'OK "Getscript completed."',
      'OK "PUTSCRIPT completed."',
      'OK "Renamescript completed."',
      'OK "Listscripts completed."',
      'OK "Deletescript completed."',
      'OK (TAG "tag-1") "Done"',
      'OK "Logout completed."',
    ]);
  });

  it("reads the greeting's capabilities", () => {
    const results = decodeAll(session.serverBytes) as ResponseLine[];
    const greeting = results.slice(
      0,
      results.findIndex((result) => result.kind === "done"),
    );
    const capabilities = parseCapabilities(greeting);
    expect(capabilities.get("IMPLEMENTATION")).toBe("Dovecot (Debian) Pigeonhole");
    expect(capabilities.get("SIEVE")?.split(" ")).toContain("vacation");
    expect(capabilities.get("STARTTLS")).toBe("");
    expect(capabilities.get("SASL")).toBe("PLAIN LOGIN");
  });

  it("returns GETSCRIPT's literal byte for byte, and LISTSCRIPTS' ACTIVE mark", () => {
    const results = decodeAll(session.serverBytes);
    const literal = results.find(
      (result) => result.kind === "data" && result.items[0]?.kind === "string" && result.items[0].literal,
    );
    expect(literal?.kind === "data" && text((literal.items[0] as { bytes: Uint8Array }).bytes)).toBe(
      'require ["fileinto"];\r\nif header :contains "subject" "test" {\r\n  fileinto "Test";\r\n}\r\n',
    );
    const active = results.find((result) => result.kind === "data" && result.items[1]?.text === "ACTIVE");
    expect(active).toMatchObject({
      items: [
        { kind: "string", text: "myscript" },
        { kind: "atom", text: "ACTIVE" },
      ],
    });
  });

  it("reads error replies: literal texts, NONEXISTENT, ACTIVE", () => {
    const errors = loadVectorFile("managesieve-02-errors.txt", VECTORS).connections[1]!;
    const results = decodeAll(errors.serverBytes, 5);
    const lines = finals(results);
    expect(lines).toContain('NO (NONEXISTENT) "Sieve script `nosuch\' not found"');
    expect(lines).toContain('NO (ACTIVE) "Cannot delete the active Sieve script."');
    const compile = results.find(
      (result) => result.kind === "done" && result.text?.includes("validation failed"),
    );
    expect(compile).toMatchObject({ status: "NO", code: null });
    expect(compile?.kind === "done" && compile.text).toContain("line 2: error: the header test requires 2");
  });

  it("reads BYE", () => {
    const bye = loadVectorFile("managesieve-04-invalid-commands-before-login.txt", VECTORS).connections[0]!;
    expect(finals(decodeAll(bye.serverBytes)).at(-1)).toBe('BYE "Too many invalid MANAGESIEVE commands."');
  });
});

describe("encoding commands like the captured client", () => {
  const client = text(
    loadVectorFile("managesieve-01-normal-session.txt", VECTORS).connections[0]!.clientBytes,
  );
  const script = bytes(
    'require ["fileinto"];\r\nif header :contains "subject" "test" {\r\n  fileinto "Test";\r\n}\r\n',
  );

  it.each([
    {
      name: "PUTSCRIPT with a literal",
      encoded: encodeCommand("PUTSCRIPT", ["myscript", { literal: script }]),
    },
    { name: "CHECKSCRIPT", encoded: encodeCommand("CHECKSCRIPT", [{ literal: script }]) },
    { name: "HAVESPACE", encoded: encodeCommand("HAVESPACE", ["myscript", 5000]) },
    { name: "RENAMESCRIPT", encoded: encodeCommand("RENAMESCRIPT", ["second", "third"]) },
    { name: "NOOP", encoded: encodeCommand("NOOP", ["tag-1"]) },
    { name: "LOGOUT", encoded: encodeCommand("LOGOUT") },
    {
      name: "AUTHENTICATE PLAIN",
      encoded: encodeCommand("AUTHENTICATE", [
        "PLAIN",
        plainInitialResponse("alice@example.test", "alicepw"),
      ]),
    },
  ])("$name", ({ encoded }) => {
    expect(client).toContain(text(encoded));
  });

  it('quotes \\ and " and sends line breaks as a literal', () => {
    expect(text(encodeCommand("GETSCRIPT", ['a"b\\c']))).toBe('GETSCRIPT "a\\"b\\\\c"\r\n');
    expect(text(encodeCommand("PUTSCRIPT", ["x", "keep;\r\n"]))).toBe('PUTSCRIPT "x" {7+}\r\nkeep;\r\n\r\n');
    expect(text(encodeContinuation("AGFi"))).toBe('"AGFi"\r\n');
  });

  it("refuses what is not a command", () => {
    expect(() => encodeCommand("GET SCRIPT")).toThrow(RangeError);
    expect(() => encodeCommand("HAVESPACE", ["x", -1])).toThrow(RangeError);
  });
});

describe("malformed server output", () => {
  it.each([
    { name: "unterminated quoted string", input: 'OK "never\r\n' },
    { name: "invalid escape", input: 'OK "a\\nb"\r\n' },
    { name: "literal marker in the middle", input: "OK {5} x\r\n" },
    { name: "bad literal marker", input: "{abc}\r\n" },
    { name: "unterminated response code", input: 'NO (QUOTA "x"\r\n' },
    { name: "code without a name", input: 'NO () "x"\r\n' },
    { name: "two texts", input: 'OK "a" "b"\r\n' },
    { name: "control byte", input: "OK \u0001\r\n" },
    { name: "parenthesis in a data line", input: '"a" (b)\r\n' },
    { name: "huge literal", input: `{${MANAGESIEVE_LIMITS.maxLiteralBytes + 1}}\r\n` },
  ])("$name", ({ input }) => {
    const results = decodeAll(bytes(input));
    expect(results.at(-1)?.kind).toBe("error");
  });

  it("refuses a line longer than the limit without waiting for its end", () => {
    const decoder = new ManageSieveDecoder();
    const results = decoder.push(new Uint8Array(MANAGESIEVE_LIMITS.maxLineBytes + 10).fill(0x41));
    expect(results).toEqual([{ kind: "error", message: expect.stringContaining("line longer") }]);
    expect(decoder.broken).toBe(true);
    expect(decoder.push(bytes("OK\r\n"))).toEqual([]);
  });

  it("never throws and never holds more than a line plus a literal", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
        const decoder = new ManageSieveDecoder();
        for (const chunk of chunks) decoder.push(chunk);
        expect(decoder.pendingBytes).toBeLessThanOrEqual(
          MANAGESIEVE_LIMITS.maxLineBytes + MANAGESIEVE_LIMITS.maxLiteralBytes + 300,
        );
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips any string argument through a data line", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (value) => {
        const encoded = encodeContinuation(value);
        const results = new ManageSieveDecoder().push(encoded);
        expect(results).toEqual([
          { kind: "data", items: [expect.objectContaining({ kind: "string", text: value })] },
        ]);
      }),
      { numRuns: 500 },
    );
  });
});

describe("SASLprep (RFC 4013 section 3 examples)", () => {
  it.each([
    { input: "I\u00ADX", want: "IX" },
    { input: "user", want: "user" },
    { input: "USER", want: "USER" },
    { input: "\u00AA", want: "a" },
    { input: "\u2168", want: "IX" },
    { input: "pass\u00A0word", want: "pass word" },
    { input: "\u05D0\u05D1", want: "\u05D0\u05D1" },
  ])("$input → $want", ({ input, want }) => {
    expect(saslPrep(input)).toBe(want);
  });

  it.each([
    { input: "\u0007", why: "prohibited" },
    { input: "\u0627\u0031", why: "right-to-left" },
    { input: "a\u05D0", why: "right-to-left" },
    { input: "\uE000", why: "prohibited" },
  ])("refuses $input", ({ input, why }) => {
    expect(() => saslPrep(input)).toThrow(SaslPrepError);
    expect(() => saslPrep(input)).toThrow(why);
  });
});
