import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closestKey, configKeyPaths, formatConfigIssue, loadConfig, parseConfigText } from "./load.js";

const repo = new URL("../../", import.meta.url);
const fixture = (name: string) => new URL(name, repo).pathname;

describe("broken-config.toml", () => {
  it("reports every mistake with its exact path, message and fix", async () => {
    const result = await loadConfig(fixture("test/fixtures/broken-config.toml"));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map(({ path, message }) => ({ path, message }))).toEqual([
      { path: "log.level", message: '"verbose" is not one of trace, debug, info, warn, error, fatal' },
      { path: "ldap.timeout", message: "90s is above the maximum 60s" },
      { path: "ldap.connect_timeout", message: '"3 seconds" is not a duration' },
      { path: "ldap.bind_password", message: "secrets are not accepted inline" },
      { path: "policyd.listen[0].tcp", message: "port 70000 is above the maximum 65535" },
      { path: "policyd.listen[1].allow[1]", message: '"10.0.0.0/33" is not a CIDR network' },
      { path: "policyd.listen[2].mode", message: "0666 lets every local user connect" },
      { path: "policyd.idle_timeout", message: "60s is below the minimum 301s" },
      { path: "policyd.max_conections", message: "unknown key" },
    ]);
    const fixes = Object.fromEntries(result.errors.map((issue) => [issue.path, issue.fix]));
    expect(fixes["policyd.max_conections"]).toBe("did you mean max_connections?");
    expect(fixes["ldap.bind_password"]).toContain("set bind_password_file to its path");
    expect(fixes["ldap.timeout"]).toBe("use a value between 100ms and 60s");
  });

  it("never echoes the inline secret", async () => {
    const result = await loadConfig(fixture("test/fixtures/broken-config.toml"));
    expect(JSON.stringify(result)).not.toContain("hunter2");
  });
});

describe("broken-config-syntax.toml", () => {
  it("reports the TOML syntax error with line and column", async () => {
    const file = fixture("test/fixtures/broken-config-syntax.toml");
    const result = await loadConfig(file);
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          path: "",
          message: "TOML syntax error: illegal character in numeric literal",
          fix: 'correct the TOML syntax there; durations and sizes are quoted strings, e.g. timeout = "5s"',
          line: 4,
          column: 12,
        },
      ],
    });
    if (!result.ok)
      expect(formatConfigIssue(result.errors[0]!, "x.toml")).toMatch(/^x\.toml:4:12: TOML syntax error/);
  });
});

describe("the example configuration", () => {
  const examplePath = fixture("deploy/emailng.example.toml");

  it("validates", async () => {
    const result = await loadConfig(examplePath);
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  // Keys shown in the example, commented out or not: "[[policyd.listen]]" /
  // "# [[policyd.listen]]" open a table, "key = …" / "# key = …" name a key.
  async function documentedKeys(): Promise<Set<string>> {
    const keys = new Set<string>();
    let table = "";
    for (const line of (await readFile(examplePath, "utf8")).split("\n")) {
      const header = /^(?:# )?\[\[?([a-z_.]+)\]\]?\s*$/.exec(line);
      if (header) table = header[1]!;
      const key = /^(?:# )?([a-z][a-z0-9_]*) = /.exec(line);
      if (key) keys.add(`${table}.${key[1]}`);
    }
    return keys;
  }

  it("documents every key of the schema", async () => {
    const documented = await documentedKeys();
    const missing = configKeyPaths().filter((path) => !documented.has(path));
    expect(missing).toEqual([]);
  });

  it("documents no key the schema lacks", async () => {
    const known = new Set(configKeyPaths());
    expect([...(await documentedKeys())].filter((path) => !known.has(path))).toEqual([]);
  });

  it("documents the default and the meaning above each key", async () => {
    const lines = (await readFile(examplePath, "utf8")).split("\n");
    const topLevelKeys = lines
      .map((line, index) => ({ line, index }))
      .filter(({ line }) => /^[a-z][a-z0-9_]* = /.test(line));
    for (const { line, index } of topLevelKeys) {
      if (/^(unix|mode|group|tcp|allow|systemd) = /.test(line)) continue; // documented once, in the daemon block
      expect(lines[index - 1], `comment above: ${line}`).toMatch(/^# /);
    }
  });
});

describe("parseConfigText", () => {
  it("lets a back-end's quotad listen only for quota_clone, but not on nothing at all", () => {
    const feedOnly = parseConfigText(
      '[quotad]\nlisten = []\n[[quotad.feed.listen]]\nunix = "/run/emailng/quotad-dict.sock"',
    );
    expect(feedOnly.ok).toBe(true);
    if (feedOnly.ok) expect(feedOnly.config.quotad.listen).toEqual([]);
    const nothing = parseConfigText("[quotad]\nlisten = []");
    expect(nothing.ok).toBe(false);
    if (!nothing.ok) expect(nothing.errors.map((issue) => issue.path)).toEqual(["quotad.listen"]);
    const verifydNothing = parseConfigText("[verifyd]\nlisten = []");
    expect(verifydNothing.ok).toBe(false);
  });

  it("fills defaults and freezes the result deeply", () => {
    const result = parseConfigText("");
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.ldap.timeout).toBe(5000);
    expect(result.config.verifyd.idle_timeout).toBe(30_000);
    expect(result.config.policyd.idle_timeout).toBe(330_000);
    expect(result.config.policyd.listen).toEqual([
      { kind: "unix", path: "/run/emailng/policyd.sock", mode: 0o660 },
    ]);
    expect(Object.isFrozen(result.config.policyd.listen[0])).toBe(true);
    expect(() => {
      (result.config.ldap as { timeout: number }).timeout = 1;
    }).toThrow(TypeError);
  });

  it.each([
    {
      name: "listener with two kinds",
      text: '[[verifyd.listen]]\nunix = "/run/a.sock"\ntcp = "127.0.0.1:1"',
      want: [
        {
          path: "verifyd.listen[0]",
          message: "a listener takes only one of unix, tcp or systemd, not unix and tcp",
        },
      ],
    },
    {
      name: "mode on a tcp listener",
      text: '[[verifyd.listen]]\ntcp = "127.0.0.1:1"\nmode = "0600"',
      want: [{ path: "verifyd.listen[0].mode", message: "mode only applies to unix listeners" }],
    },
    {
      name: "typo inside a listener",
      text: '[[quotad.listen]]\nunix = "/run/a.sock"\ngroupe = "postfix"',
      want: [{ path: "quotad.listen[0].groupe", message: "unknown key", fix: "did you mean group?" }],
    },
    {
      name: "no listeners",
      text: "[verifyd]\nlisten = []",
      want: [{ path: "verifyd.listen", message: "needs at least one listener" }],
    },
    {
      name: "bind_dn without password file",
      text: '[ldap]\nbind_dn = "cn=x"',
      want: [{ path: "ldap.bind_password_file", message: "is required when bind_dn is set" }],
    },
    {
      name: "starttls over ldaps",
      text: '[ldap]\nurls = ["ldaps://a"]\nbase_dn = "dc=x"\nstarttls = true',
      want: [{ path: "ldap.starttls", message: "cannot be used with ldaps:// URLs" }],
    },
    {
      name: "wrong type",
      text: '[ldap]\nstarttls = "yes"',
      want: [{ path: "ldap.starttls", message: 'expected true or false, got "yes"' }],
    },
    {
      name: "unknown section",
      text: "[polcyd]\nmax_connections = 1",
      want: [{ path: "polcyd", message: "unknown key", fix: "did you mean policyd?" }],
    },
    {
      name: "unknown key without a close match",
      text: "[snapshot]\ncolour = 1",
      want: [
        { path: "snapshot.colour", message: "unknown key", fix: "remove it; allowed here: path, max_age" },
      ],
    },
  ])("$name", ({ text, want }) => {
    const result = parseConfigText(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toMatchObject(want);
  });
});

describe("loadConfig on the file system", () => {
  let directory = "";
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "emailng-config-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("reports a missing file", async () => {
    const path = join(directory, "absent.toml");
    expect(await loadConfig(path)).toEqual({
      ok: false,
      errors: [
        {
          path: "",
          message: `cannot read ${path} (ENOENT)`,
          fix: "check the path given with --config and its permissions",
        },
      ],
    });
  });

  it("reports a directory given as file", async () => {
    const result = await loadConfig(directory);
    expect(result.ok ? "" : result.errors[0]?.message).toBe(`${directory} is not a regular file`);
  });

  it("loads a valid file", async () => {
    const path = join(directory, "ok.toml");
    await writeFile(path, '[log]\nlevel = "debug"\n');
    await chmod(path, 0o640);
    const result = await loadConfig(path);
    expect(result.ok && result.config.log.level).toBe("debug");
  });
});

describe("closestKey", () => {
  it.each([
    { key: "timout", want: "timeout" },
    { key: "max_conections", want: "max_connections" },
    { key: "idle-timeout", want: "idle_timeout" },
    { key: "Request_Timeout", want: "request_timeout" },
    { key: "zzz", want: undefined },
  ])("$key → $want", ({ key, want }) => {
    expect(closestKey(key, ["timeout", "max_connections", "idle_timeout", "request_timeout"])).toBe(want);
  });
});
