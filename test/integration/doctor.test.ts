/**
 * `emailng doctor` against real peers: verifyd started in-process on a
 * temporary UNIX socket over a snapshot of the sample users, and a private
 * Postfix 3.7 whose main.cf asks that socket (read by doctor through the
 * real postconf -c). A healthy host exits 0; a policyd socket that does not
 * exist and a snapshot older than max_age each give a finding with its fix
 * and exit 1.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CommanderError } from "commander";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../cli/build-cli.js";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import type { Finding } from "../../doctor/findings.js";
import { startVerifyd, type Verifyd } from "../../verifyd/program.js";
import { testUser } from "../harness/directory-builders.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir } from "../harness/process.js";

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [testUser("gpapadop"), testUser("jsmith")],
  groups: [],
};

const dir = makeTempDir("doctor");
const snapshotPath = join(dir, "snapshot.sqlite");
const socketPath = join(dir, "verifyd.sock");
const baseConfig = `
[log]
level = "error"
[snapshot]
path = "${snapshotPath}"
max_age = "1h"
[directory]
primary_domain = "cs.example.org"
[verifyd]
snapshot_check_interval = "5m"
[[verifyd.listen]]
unix = "${socketPath}"
`;

let verifyd: Verifyd | undefined;
let postfix: Postfix | undefined;

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function doctor(configPath: string): Promise<{ code: number; ok: boolean; findings: Finding[] }> {
  let out = "";
  const cli = buildCli({ io: { out: (text) => (out += text), err: () => {} } });
  let code = 0;
  try {
    await cli.parseAsync(
      ["doctor", "--config", configPath, "--json", "--postfix-config", postfix?.configDir ?? ""],
      { from: "user" },
    );
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    code = error.exitCode;
  }
  const report = JSON.parse(out) as { ok: boolean; findings: Finding[] };
  return { code, ...report };
}

const byCheck = (findings: Finding[], check: string) => findings.filter((finding) => finding.check === check);

beforeAll(async () => {
  writeSnapshot(snapshotPath, directory, { version: 1, view: "relay", sources: [] });
  const loaded = parseConfigText(baseConfig);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  verifyd = await startVerifyd(loaded.config, pino({ level: "silent" }), { processMetrics: false });
  const table = (name: string) => `socketmap:unix:${socketPath}:${name}`;
  postfix = await startPostfix({
    mainCf: {
      relay_domains: table("domain"),
      relay_recipient_maps: table("recipient"),
      virtual_alias_maps: table("alias"),
      virtual_alias_domains: "",
      smtpd_sender_login_maps: table("login"),
    },
  });
});

afterAll(async () => {
  await postfix?.destroy();
  await verifyd?.close();
  removeTempDir(dir);
});

describe("emailng doctor", () => {
  it("exits 0 on a relay whose verifyd answers and whose Postfix uses it", async () => {
    const report = await doctor(writeConfig("healthy.toml", baseConfig));
    const problems = report.findings.filter(
      (finding) => finding.status === "warn" || finding.status === "fail",
    );
    expect(problems).toEqual([]);
    expect(report.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(byCheck(report.findings, "verifyd socket")).toEqual([
      {
        check: "verifyd socket",
        status: "ok",
        message: `${socketPath} (verifyd.listen[0]) answers: domain cs.example.org → OK cs.example.org`,
      },
    ]);
    expect(byCheck(report.findings, "snapshot")[0]?.message).toMatch(
      /^snapshot v1 \(relay view\) is \d+s old/,
    );
    expect(byCheck(report.findings, "postfix").map((finding) => finding.message)).toEqual([
      "Postfix checks recipients with verifyd (relay_recipient_maps)",
    ]);
  });

  it("reports a policyd socket that does not exist, and that Postfix does not call policyd", async () => {
    const missing = join(dir, "policyd.sock");
    const report = await doctor(
      writeConfig(
        "missing-socket.toml",
        `${baseConfig}[policyd]\nadmin_socket = ""\n[[policyd.listen]]\nunix = "${missing}"\n`,
      ),
    );
    expect(report.code).toBe(1);
    expect(report.ok).toBe(false);
    const [socket] = byCheck(report.findings, "policyd socket");
    expect(socket).toMatchObject({
      status: "fail",
      message: `${missing} (policyd.listen[0]) does not exist: policyd is not listening there`,
    });
    expect(socket?.status === "fail" && socket.fix).toContain("systemctl start emailng-policyd.service");
    const postfixProblems = byCheck(report.findings, "postfix").filter(
      (finding) => finding.status === "warn",
    );
    expect(postfixProblems.map((finding) => finding.message)).toEqual([
      `smtpd_recipient_restrictions does not call policyd (${missing})`,
    ]);
    expect(postfixProblems[0]?.status === "warn" && postfixProblems[0].fix).toContain(
      `check_policy_service { unix:${missing}`,
    );
  });

  it("reports a stale snapshot, and verifyd answering TEMP because of it", async () => {
    writeSnapshot(snapshotPath, directory, {
      version: 2,
      view: "relay",
      sources: [],
      now: new Date(Date.now() - 3 * 3_600_000),
    });
    await verifyd?.reload();
    const report = await doctor(writeConfig("stale.toml", baseConfig));
    expect(report.code).toBe(1);
    const [snapshot] = byCheck(report.findings, "snapshot");
    expect(snapshot?.status).toBe("fail");
    expect(snapshot?.message).toMatch(/^snapshot v2 is 3h 0m old, above snapshot.max_age \(1h 0m\)/);
    expect(snapshot?.status === "fail" && snapshot.fix).toContain("emailng sync run");
    const [socket] = byCheck(report.findings, "verifyd socket");
    expect(socket?.status).toBe("fail");
    expect(socket?.message).toContain("answers TEMP directory snapshot v2 is older than its maximum age");
  });
});
