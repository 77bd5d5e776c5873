import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { connectionLogger, createLogger, sanitizePeerString } from "./logger.js";

/** A destination collecting the JSON lines pino writes. */
function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe("createLogger", () => {
  it("writes JSON lines with program, level name and time", () => {
    const out = capture();
    const log = createLogger({ program: "policyd", level: "info", destination: out.stream });
    log.info({ action: "DUNNO" }, "decision");
    log.debug("not written at info");
    expect(out.lines()).toEqual([
      expect.objectContaining({ program: "policyd", level: "info", action: "DUNNO", msg: "decision" }),
    ]);
    expect(out.lines()[0]?.["time"]).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it.each([
    { name: "top-level password", fields: { password: "hunter2" }, path: ["password"] },
    {
      name: "bind_password in config",
      fields: { ldap: { bind_password: "hunter2" } },
      path: ["ldap", "bind_password"],
    },
    {
      name: "nested token",
      fields: { request: { auth: { token: "hunter2" } } },
      path: ["request", "auth", "token"],
    },
    {
      name: "authorization header",
      fields: { req: { headers: { authorization: "Basic aHVudGVyMg==" } } },
      path: ["req", "headers", "authorization"],
    },
    { name: "secret", fields: { secret: "hunter2" }, path: ["secret"] },
  ])("redacts $name", ({ fields, path }) => {
    const out = capture();
    createLogger({ program: "verifyd", level: "info", destination: out.stream }).info(fields, "line");
    const [line] = out.lines();
    let value: unknown = line;
    for (const key of path) value = (value as Record<string, unknown>)[key];
    expect(value).toBe("[redacted]");
    expect(JSON.stringify(line)).not.toContain("hunter2");
    expect(JSON.stringify(line)).not.toContain("aHVudGVyMg");
  });

  it("leaves ordinary fields alone", () => {
    const out = capture();
    createLogger({ program: "verifyd", level: "info", destination: out.stream }).info({
      user: "gandre01",
      passwordFile: "/etc/x",
    });
    expect(out.lines()[0]).toMatchObject({ user: "gandre01", passwordFile: "/etc/x" });
  });

  it("gives each connection a child carrying the peer", () => {
    const out = capture();
    const root = createLogger({ program: "quotad", level: "debug", destination: out.stream });
    const log = connectionLogger(root, { transport: "tcp", address: "192.0.2.7", port: 40022, id: 12 });
    log.debug({ password: "x" }, "request");
    expect(out.lines()[0]).toMatchObject({
      program: "quotad",
      level: "debug",
      connection: 12,
      transport: "tcp",
      peer: "192.0.2.7:40022",
      password: "[redacted]",
    });
  });
});

describe("sanitizePeerString", () => {
  it.each([
    { name: "plain text", input: "user@example.org", want: "user@example.org" },
    { name: "UTF-8 kept", input: "γιώργος@παράδειγμα.gr", want: "γιώργος@παράδειγμα.gr" },
    { name: "CR LF forging a line", input: "a\r\nlevel=fatal", want: "a\\x0d\\x0alevel=fatal" },
    { name: "NUL and DEL", input: "\0x\x7f", want: "\\x00x\\x7f" },
    { name: "terminal escape", input: "\x1b[31mred", want: "\\x1b[31mred" },
    { name: "C1 control", input: "a\u0085b", want: "a\\x85b" },
    { name: "bidi override", input: "abc\u202edef", want: "abc\\u{202e}def" },
    { name: "zero-width space", input: "a\u200bb", want: "a\\u{200b}b" },
    { name: "line separator", input: "a\u2028b", want: "a\\u{2028}b" },
    { name: "lone surrogate", input: "a\ud800b", want: "a\\u{d800}b" },
    { name: "backslash doubled", input: "a\\x41", want: "a\\\\x41" },
    { name: "emoji kept whole", input: "ok 👍", want: "ok 👍" },
  ])("$name", ({ input, want }) => {
    expect(sanitizePeerString(input)).toBe(want);
  });

  it.each([
    { name: "cut with a marker", input: "a".repeat(250), max: 200, want: `${"a".repeat(200)}…[50 more]` },
    { name: "exactly max is not cut", input: "a".repeat(10), max: 10, want: "a".repeat(10) },
    { name: "an escape is not split", input: "abcd\n", max: 6, want: "abcd…[1 more]" },
    { name: "a surrogate pair is not split", input: "ab👍", max: 3, want: "ab…[2 more]" },
  ])("$name", ({ input, max, want }) => {
    expect(sanitizePeerString(input, max)).toBe(want);
  });

  it("reads only what fits from a huge string", () => {
    const huge = "\n".repeat(10_000_000);
    const started = performance.now();
    const result = sanitizePeerString(huge, 200);
    expect(performance.now() - started).toBeLessThan(50);
    expect(result).toBe(`${"\\x0a".repeat(50)}…[9999950 more]`);
  });
});
