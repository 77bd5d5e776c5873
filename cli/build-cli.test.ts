import { readFileSync } from "node:fs";
import { CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { buildCli } from "./build-cli.js";
import type { ProgramContext, ProgramDefinition } from "./programs.js";

const repo = new URL("../", import.meta.url);
const fixture = (name: string) => new URL(name, repo).pathname;
const packageVersion = (JSON.parse(readFileSync(fixture("package.json"), "utf8")) as { version: string })
  .version;

/** Runs the CLI in-process; returns the exit status and what it wrote. */
async function run(args: string[], programs: ProgramDefinition[] = []) {
  let out = "";
  let err = "";
  const cli = buildCli({
    io: {
      out: (text) => {
        out += text;
      },
      err: (text) => {
        err += text;
      },
    },
    programs,
  });
  let code = 0;
  try {
    await cli.parseAsync(args, { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode;
  }
  return { code, out, err };
}

describe("emailng", () => {
  it("--help lists the commands", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    expect(out).toContain("Usage: emailng");
    expect(out).toMatch(/config\s+work with the configuration file/);
    expect(out).toMatch(/version\s+print the emailng version/);
  });

  it("version prints the package version", async () => {
    expect(await run(["version"])).toEqual({ code: 0, out: `${packageVersion}\n`, err: "" });
    expect((await run(["--version"])).out).toBe(`${packageVersion}\n`);
  });

  it("an unknown command is a usage error", async () => {
    const { code, err } = await run(["frobnicate"]);
    expect(code).toBe(1);
    expect(err).toContain("unknown command 'frobnicate'");
  });
});

describe("emailng config check", () => {
  it("accepts the example configuration", async () => {
    const file = fixture("deploy/emailng.example.toml");
    expect(await run(["config", "check", "--config", file])).toEqual({
      code: 0,
      out: `ok: ${file}\n`,
      err: "",
    });
  });

  it("prints every problem of the broken fixture and exits 2", async () => {
    const file = fixture("test/fixtures/broken-config.toml");
    const { code, out, err } = await run(["config", "check", "--config", file]);
    expect(code).toBe(2);
    expect(out).toBe("");
    const lines = err.trimEnd().split("\n");
    expect(lines).toHaveLength(9);
    expect(lines).toContain(
      "ldap.timeout: 90s is above the maximum 60s (fix: use a value between 100ms and 60s)",
    );
    expect(lines).toContain("policyd.max_conections: unknown key (fix: did you mean max_connections?)");
  });

  it("reports a TOML syntax error with file, line and column", async () => {
    const file = fixture("test/fixtures/broken-config-syntax.toml");
    const { code, err } = await run(["config", "check", "-c", file]);
    expect(code).toBe(2);
    expect(err).toMatch(
      new RegExp(`^${file}:4:12: TOML syntax error: illegal character in numeric literal \\(fix: `),
    );
  });

  it("--json reports on standard output", async () => {
    const file = fixture("test/fixtures/broken-config.toml");
    const { code, out, err } = await run(["config", "check", "--config", file, "--json"]);
    expect(code).toBe(2);
    expect(err).toBe("");
    const report = JSON.parse(out) as { ok: boolean; file: string; errors: { path: string }[] };
    expect(report.ok).toBe(false);
    expect(report.file).toBe(file);
    expect(report.errors.map((issue) => issue.path)).toContain("policyd.listen[0].tcp");

    const ok = await run(["config", "check", "--config", fixture("deploy/emailng.example.toml"), "--json"]);
    expect([ok.code, JSON.parse(ok.out).ok]).toEqual([0, true]);
  });

  it("reports a missing file", async () => {
    const { code, err } = await run(["config", "check", "--config", "/nonexistent/emailng.toml"]);
    expect(code).toBe(2);
    expect(err).toBe(
      "/nonexistent/emailng.toml: cannot read /nonexistent/emailng.toml (ENOENT) (fix: check the path given with --config and its permissions)\n",
    );
  });
});

describe("program commands", () => {
  function recordingProgram(): { program: ProgramDefinition; runs: ProgramContext[] } {
    const runs: ProgramContext[] = [];
    return {
      runs,
      program: {
        name: "exampled",
        summary: "a program registered by the test",
        configure: (command) => command.option("--dry-run", "change nothing"),
        run: async (context) => {
          runs.push(context);
        },
      },
    };
  }

  it("get the validated, frozen configuration and their options", async () => {
    const { program, runs } = recordingProgram();
    const file = fixture("deploy/emailng.example.toml");
    const { code } = await run(["exampled", "--config", file, "--dry-run"], [program]);
    expect(code).toBe(0);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.configPath).toBe(file);
    expect(runs[0]?.options["dryRun"]).toBe(true);
    expect(runs[0]?.config.policyd.request_timeout).toBe(10_000);
    expect(Object.isFrozen(runs[0]?.config.policyd)).toBe(true);
  });

  it("do not start with an invalid configuration", async () => {
    const { program, runs } = recordingProgram();
    const { code, err } = await run(
      ["exampled", "--config", fixture("test/fixtures/broken-config.toml")],
      [program],
    );
    expect(code).toBe(2);
    expect(runs).toHaveLength(0);
    expect(err).toContain("ldap.bind_password: secrets are not accepted inline");
  });

  it("appear in --help", async () => {
    const { program } = recordingProgram();
    expect((await run(["--help"], [program])).out).toMatch(
      /exampled \[options\]\s+a program registered by the test/,
    );
  });

  it("with a two-word name become subcommands sharing one parent", async () => {
    const runs: string[] = [];
    const sub = (name: string): ProgramDefinition => ({
      name: `tool ${name}`,
      summary: `the ${name} step`,
      run: async () => {
        runs.push(name);
      },
    });
    const programs = [sub("run"), sub("serve")];
    const file = fixture("deploy/emailng.example.toml");
    expect((await run(["tool", "serve", "--config", file], programs)).code).toBe(0);
    expect((await run(["tool", "run", "--config", file], programs)).code).toBe(0);
    expect(runs).toEqual(["serve", "run"]);
    const help = await run(["tool", "--help"], programs);
    expect(help.out).toMatch(/run \[options\]\s+the run step/);
    expect(help.out).toMatch(/serve \[options\]\s+the serve step/);
  });
});
