import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";

// Runs the compiled entry point the way npm's bin link does, to prove the
// shebang file, the ESM imports with .js suffixes and the package.json lookup
// from dist/ work. Node 20 cannot run our TypeScript directly, so build once.
const repo = new URL("../", import.meta.url).pathname;
const entry = `${repo}dist/cli/main.js`;

/** A script of the Sieve corpus, whatever it holds: the test is about what gets loaded. */
function firstCorpusScript(): string {
  return readdirSync(`${repo}test/fixtures/sieve/corpus`)
    .filter((name) => name.endsWith(".sieve"))
    .sort()[0]!;
}

function emailng(...args: string[]) {
  const result = spawnSync(process.execPath, [entry, ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe("dist/cli/main.js", () => {
  beforeAll(() => {
    const build = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: repo, encoding: "utf8" });
    // Other programs' work in progress may fail type checking while still
    // emitting JavaScript; what matters here is that the CLI was emitted.
    if (!existsSync(entry))
      throw new Error(`build did not produce ${entry}:\n${build.stdout}${build.stderr}`);
  });

  it("starts with a shebang", () => {
    expect(readFileSync(entry, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
  });

  it("prints the version from package.json", () => {
    const { version } = JSON.parse(readFileSync(`${repo}package.json`, "utf8")) as { version: string };
    expect(emailng("version")).toEqual({ code: 0, out: `${version}\n`, err: "" });
  });

  it("config check exits 0 on the example and 2 on the broken fixture", () => {
    expect(emailng("config", "check", "--config", "deploy/emailng.example.toml")).toEqual({
      code: 0,
      out: "ok: deploy/emailng.example.toml\n",
      err: "",
    });
    const broken = emailng("config", "check", "--config", "test/fixtures/broken-config.toml");
    expect(broken.code).toBe(2);
    expect(broken.err).toContain("ldap.timeout: 90s is above the maximum 60s");
  });

  it("sieve check loads the Sieve tools and no other program or daemon library", () => {
    // A loader hook in the child prints every module it loads.
    const hooks =
      'export async function load(url, context, next) { if (url.startsWith("file:")) console.error("LOADED " + url); return next(url, context); }';
    const trace = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const result = spawnSync(
      process.execPath,
      [
        "--import",
        `data:text/javascript,${encodeURIComponent(trace)}`,
        entry,
        "sieve",
        "check",
        "--config",
        "deploy/emailng.example.toml",
        "test/fixtures/sieve/corpus/" + firstCorpusScript(),
      ],
      { cwd: repo, encoding: "utf8", timeout: 30_000 },
    );
    const loaded = result.stderr.split("\n").filter((line) => line.startsWith("LOADED "));
    expect(loaded.some((line) => line.includes("/dist/sieve-tools/check.js"))).toBe(true);
    const others = loaded.filter((line) =>
      /\/dist\/(verifyd|policyd|quotad|sync-agent|doctor)\/|node_modules\/(ioredis|prom-client|ldapts|pino)\//.test(
        line,
      ),
    );
    expect(others).toEqual([]);
  });

  it("exits 1 on a usage error", () => {
    expect(emailng("config", "check", "--no-such-option").code).toBe(1);
  });
});
