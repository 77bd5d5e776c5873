import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildCli } from "../cli/build-cli.js";

const dir = mkdtempSync(join(tmpdir(), "emailng-sieve-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fixtures = new URL("../test/fixtures/sieve/", import.meta.url).pathname;
const configPath = join(dir, "emailng.toml");
writeFileSync(
  configPath,
  `[sieve]\ninclude_dir = "${fixtures}include/personal"\nglobal_dir = "${fixtures}include/global"\n`,
);

async function run(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const cli = buildCli({ io: { out: (text) => (out += text), err: (text) => (err += text) } });
  try {
    await cli.parseAsync(args, { from: "user" });
    return { status: 0, out, err };
  } catch (error) {
    return { status: (error as { exitCode?: number }).exitCode ?? -1, out, err };
  }
}

function script(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("emailng sieve check", () => {
  it("accepts a valid script and exits 0", async () => {
    const file = script("ok.sieve", 'require "fileinto";\nfileinto "A";\n');
    const result = await run(["sieve", "check", "-c", configPath, file]);
    expect(result.status).toBe(0);
    expect(result.out).toContain(`${file}: valid (0 error(s), 0 warning(s))`);
  });

  it("prints file:line:column diagnostics and exits 3 for an invalid script", async () => {
    const good = script("good.sieve", "keep;\n");
    const bad = script("bad.sieve", 'keep;\n  fileinto "A";\n');
    const result = await run(["sieve", "check", "-c", configPath, good, bad]);
    expect(result.status).toBe(3);
    expect(result.out).toContain(`${bad}:2:3: error: unknown command 'fileinto': add require "fileinto"`);
    expect(result.out).toContain(`${good}: valid`);
  });

  it("--extensions changes what require accepts", async () => {
    const file = script("edit.sieve", 'require "editheader";\naddheader "X-A" "b";\n');
    expect((await run(["sieve", "check", "-c", configPath, file])).status).toBe(3);
    expect(
      (await run(["sieve", "check", "-c", configPath, "--extensions", "+editheader", file])).status,
    ).toBe(0);
  });

  it("checks includes against the configured directories", async () => {
    const file = script("inc.sieve", 'require "include";\ninclude "common";\ninclude "nosuch";\n');
    const result = await run(["sieve", "check", "-c", configPath, "--json", file]);
    expect(result.status).toBe(3);
    const reports = JSON.parse(result.out) as Array<{
      diagnostics: Array<{ line: number; message: string }>;
    }>;
    expect(reports[0]!.diagnostics).toEqual([
      expect.objectContaining({ line: 3, message: "the included personal script 'nosuch' does not exist" }),
    ]);
  });

  it("reports an unreadable file as an error", async () => {
    const result = await run(["sieve", "check", "-c", configPath, join(dir, "missing.sieve")]);
    expect(result.status).toBe(3);
    expect(result.out).toContain("cannot read the file");
  });

  it("needs at least one file", async () => {
    const result = await run(["sieve", "check", "-c", configPath]);
    expect(result.status).toBe(1);
    expect(result.err).toContain("at least one script file");
  });

  it("sieve test runs a script against a message", async () => {
    const file = script(
      "t.sieve",
      'require ["fileinto", "imap4flags"];\nif header :contains "subject" "report" { fileinto :flags "\\\\Seen" "Reports"; }\n',
    );
    const message = script(
      "m.eml",
      "From: a@example.org\r\nTo: b@example.org\r\nSubject: weekly report\r\n\r\nhi\r\n",
    );
    const result = await run(["sieve", "test", "-c", configPath, file, message, "--to", "b@example.org"]);
    expect(result.err).toBe("");
    expect(result.status).toBe(0);
    expect(result.out).toBe('actions:\n  - store in "Reports" with flags \\seen\nimplicit keep: no\n');
  });

  it("sieve test refuses an extension the interpreter lacks", async () => {
    const file = script("d.sieve", 'require "date";\nif currentdate :is "year" "2024" { discard; }\n');
    const message = script("m2.eml", "Subject: x\r\n\r\nhi\r\n");
    const result = await run(["sieve", "test", "-c", configPath, file, message]);
    expect(result.status).toBe(3);
    expect(result.err).toContain("does not support date");
  });
});
