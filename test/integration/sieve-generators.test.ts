// The generated scripts go through Dovecot's own compiler: `sieve
// render-global` from a [sieve.spam] policy, and a user script built by
// `sieve vacation`, `sieve forward` and `sieve filter` one step at a time
// (each step reading the markers the previous one wrote), are compiled by
// Pigeonhole's sievec. Hand edits and unmanaged text make the commands
// refuse instead of overwriting.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { removeTempDir } from "../harness/process.js";
import { type PigeonholeEnvironment, pigeonholeEnvironment, sievec } from "./sieve-peers.js";

let dir: string;
let environment: PigeonholeEnvironment;
let configPath: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "emailng-sieve-gen-"));
  chmodSync(dir, 0o755);
  environment = pigeonholeEnvironment();
  configPath = join(dir, "emailng.toml");
  writeFileSync(
    configPath,
    `[sieve]
extensions = ["+editheader"]

[sieve.spam]
folder = "Spam Folder"
subject_tags = ["[SPAM]", "[.SPAM.]", "[..SPAM..]", "*** SPAM ***"]
flag_header = "X-Spam-Flag"
flag_value = "YES"
mark_seen = true
info_header = "X-Spam-Filed"
info_value = "by the department's global rule"
`,
  );
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  if (environment !== undefined) removeTempDir(environment.dir);
});

async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const program = buildCli({ io: { out: (text) => (out += text), err: (text) => (err += text) } });
  try {
    await program.parseAsync([...args.slice(0, 2), "-c", configPath, ...args.slice(2)], { from: "user" });
    return { status: 0, out, err };
  } catch (error) {
    return { status: (error as { exitCode?: number }).exitCode ?? -1, out, err };
  }
}

async function compiles(path: string): Promise<void> {
  const result = await sievec(environment, path, `${path}.svbin`);
  expect(result.code, `${readFileSync(path, "utf8")}\n${result.stderr}`).toBe(0);
}

describe("render-global", () => {
  it("renders the policy into a script sievec compiles", async () => {
    const output = join(dir, "spam.sieve");
    const result = await cli(["sieve", "render-global", "--output", output]);
    expect(result.status, result.err).toBe(0);
    const script = readFileSync(output, "utf8");
    expect(script).toContain('fileinto :create :flags "\\\\Seen" "Spam Folder";');
    expect(script).toContain('header :matches "subject" "\\\\*\\\\*\\\\* SPAM \\\\*\\\\*\\\\**"');
    expect(script).toContain('addheader "X-Spam-Filed" "by the department\'s global rule";');
    await compiles(output);
  });

  it("refuses a policy the server's extensions cannot run", async () => {
    writeFileSync(
      configPath,
      readFileSync(configPath, "utf8").replace('extensions = ["+editheader"]', "extensions = []"),
    );
    try {
      const result = await cli(["sieve", "render-global"]);
      expect(result.status).toBe(3);
      expect(result.err).toContain("require: unknown capability 'editheader'");
      expect(result.err).toContain("nothing written");
      expect(result.out).toBe("");
    } finally {
      writeFileSync(
        configPath,
        readFileSync(configPath, "utf8").replace("extensions = []", 'extensions = ["+editheader"]'),
      );
    }
  });
});

describe("vacation, forward and filter build one user script", () => {
  const script = () => join(dir, "user.sieve");

  it("each step keeps the others and the result compiles", async () => {
    const message = join(dir, "away.txt");
    writeFileSync(message, "I am away until August.\n.\nUrgent matters: call the office.\n");
    expect(
      (
        await cli([
          "sieve",
          "vacation",
          "--script",
          script(),
          "--days",
          "3",
          "--subject",
          "Away",
          "--from",
          "alice@example.org",
          "--address",
          "alice@example.org",
          "--address",
          "a.smith@example.org",
          "--message-file",
          message,
          "--start",
          "2024-07-01",
          "--end",
          "2024-07-31",
        ])
      ).status,
    ).toBe(0);
    expect(
      (await cli(["sieve", "forward", "--script", script(), "--to", "bob@example.org", "--keep-copy"]))
        .status,
    ).toBe(0);
    expect(
      (
        await cli([
          "sieve",
          "filter",
          "--script",
          script(),
          "--add",
          "lists",
          "--header",
          "list-id",
          "--contains",
          "dev.example.org",
          "--folder",
          "Lists/dev",
        ])
      ).status,
    ).toBe(0);
    expect(
      (
        await cli([
          "sieve",
          "filter",
          "--script",
          script(),
          "--add",
          "boss",
          "--address-of",
          "from",
          "--is",
          "boss@example.org",
          "--folder",
          "Boss",
          "--stop",
        ])
      ).status,
    ).toBe(0);
    expect(
      (
        await cli([
          "sieve",
          "filter",
          "--script",
          script(),
          "--add",
          "big",
          "--size-over",
          "10M",
          "--folder",
          "Big",
          "--mark-read",
        ])
      ).status,
    ).toBe(0);
    await compiles(script());

    const text = readFileSync(script(), "utf8");
    expect(text).toContain('vacation :days 3 :subject "Away" :from "alice@example.org"');
    expect(text).toContain("..\nUrgent matters");
    expect(text).toContain('redirect :copy "bob@example.org";');
    expect(text).toContain('if size :over 10485760 {\n  fileinto :create :flags "\\\\Seen" "Big";\n}');

    const listed = await cli(["sieve", "filter", "--script", script(), "--list"]);
    expect(
      listed.out
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split(":")[0]),
    ).toEqual(["lists", "boss", "big"]);
  });

  it("changes and removals round-trip through the markers", async () => {
    expect((await cli(["sieve", "filter", "--script", script(), "--remove", "boss"])).status).toBe(0);
    expect((await cli(["sieve", "forward", "--script", script(), "--to", "carol@example.org"])).status).toBe(
      0,
    );
    expect((await cli(["sieve", "vacation", "--script", script(), "--off"])).status).toBe(0);
    const text = readFileSync(script(), "utf8");
    expect(text).not.toContain("emailng:begin vacation");
    expect(text).not.toContain("boss");
    expect(text).toContain('redirect "carol@example.org";\nstop;\n');
    expect(text).toContain("Lists/dev");
    await compiles(script());
  });

  it("refuses bad input and hand edits, and --force overrides the latter", async () => {
    const bad = await cli(["sieve", "forward", "--script", script(), "--to", "not-an-address"]);
    expect(bad.status).toBe(3);
    expect(bad.err).toContain("is not an address");

    const edited = readFileSync(script(), "utf8").replace(
      'fileinto :create "Lists/dev"',
      'fileinto :create "Lists/other"',
    );
    writeFileSync(script(), edited);
    const refused = await cli(["sieve", "filter", "--script", script(), "--remove", "big"]);
    expect(refused.status).toBe(3);
    expect(refused.err).toContain("edited by hand");
    expect(readFileSync(script(), "utf8")).toBe(edited);

    const forced = await cli(["sieve", "filter", "--script", script(), "--remove", "big", "--force"]);
    expect(forced.status).toBe(0);
    expect(readFileSync(script(), "utf8")).toContain('fileinto :create "Lists/dev"');
    await compiles(script());
  });

  it("--dry-run prints and leaves the file alone", async () => {
    const before = readFileSync(script(), "utf8");
    const result = await cli([
      "sieve",
      "filter",
      "--script",
      script(),
      "--add",
      "x",
      "--contains",
      "y",
      "--folder",
      "Z",
      "--dry-run",
    ]);
    expect(result.status).toBe(0);
    expect(result.out).toContain('fileinto :create "Z";');
    expect(readFileSync(script(), "utf8")).toBe(before);
  });
});
