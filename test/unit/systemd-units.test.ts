// deploy/systemd: every unit passes `systemd-analyze verify`, every timer
// starts an existing service, and every ExecStart names an emailng command
// that exists (checked with the CLI's own --help, in-process).
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { makeTempDir, removeTempDir, requireBinary, runCommand } from "../harness/process.js";

const UNITS = resolve(fileURLToPath(new URL("../../deploy/systemd/", import.meta.url)));
const unitNames = readdirSync(UNITS).filter((name) => /\.(service|timer|socket)$/.test(name));
const work = makeTempDir("emailng-units-");
afterAll(() => removeTempDir(work));

function execStart(unit: string): string[] {
  const line = /^ExecStart=(.+)$/m.exec(readFileSync(join(UNITS, unit), "utf8"));
  if (!line?.[1]) throw new Error(`${unit} has no ExecStart`);
  return line[1].split(/\s+/);
}

describe("deploy/systemd", () => {
  it("has a service for each timer", () => {
    const timers = unitNames.filter((name) => name.endsWith(".timer"));
    expect(timers.length).toBeGreaterThanOrEqual(4);
    for (const timer of timers) expect(unitNames).toContain(timer.replace(/\.timer$/, ".service"));
  });

  it("passes systemd-analyze verify", async () => {
    const analyze = requireBinary("/usr/bin/systemd-analyze", "systemd");
    // verify insists that ExecStart exists: point it at a real executable.
    const fakeBinary = join(work, "emailng");
    copyFileSync("/bin/true", fakeBinary);
    for (const name of unitNames) {
      const text = readFileSync(join(UNITS, name), "utf8").replaceAll("/usr/local/bin/emailng", fakeBinary);
      writeFileSync(join(work, name), text);
    }
    const result = await runCommand(
      analyze,
      ["verify", "--man=no", ...unitNames.map((name) => join(work, name))],
      {
        timeoutMs: 30_000,
      },
    );
    // Lines about the host's own units (not ours) are not our concern.
    const ours = `${result.stdout}${result.stderr}`
      .split("\n")
      .filter((line) => unitNames.some((name) => line.includes(name)));
    expect(ours).toEqual([]);
    expect(result.code).toBe(0);
  });

  it.each(unitNames.filter((name) => name.endsWith(".service")))(
    "%s runs an existing emailng command",
    async (name) => {
      const [binary, ...args] = execStart(name);
      expect(binary).toBe("/usr/local/bin/emailng");
      const command = args.filter((arg) => !arg.startsWith("-") && !arg.startsWith("/"));
      let out = "";
      const cli = buildCli({ io: { out: (text) => (out += text), err: () => {} } });
      let code = -1;
      try {
        await cli.parseAsync([...command, "--help"], { from: "user" });
      } catch (error) {
        if (!(error instanceof CommanderError)) throw error;
        code = error.exitCode;
      }
      expect(code).toBe(0);
      expect(out).toContain(`Usage: emailng ${command.join(" ")}`);
      for (const option of args.filter((arg) => arg.startsWith("--"))) expect(out).toContain(option);
    },
  );
});
