// emailng doctor's pure checks: snapshot age and view, socket unit parsing
// and endpoint resolution, judging each protocol's answer and each
// connection failure, reading postconf and doveconf output. (Kept under
// test/unit because vitest.config.ts does not include doctor/.)
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { SnapshotMeta } from "../../core/directory/snapshot-store.js";
import { judgeDovecot, quotaCloneReferences } from "../../doctor/dovecot-check.js";
import { type Endpoint, parseSocketUnit, servedEndpoints } from "../../doctor/endpoints.js";
import {
  doctorExitStatus,
  type Finding,
  fail,
  formatFindingsText,
  ok,
  skip,
  warn,
} from "../../doctor/findings.js";
import {
  judgePostfix,
  parsePostconf,
  policyTargets,
  socketmapReferences,
} from "../../doctor/postfix-check.js";
import {
  judgeConnectionFailure,
  judgeDict,
  judgePolicy,
  judgeSocketmap,
  probeDictRequest,
  probePolicyRequest,
} from "../../doctor/probes.js";
import { deployedTables } from "../../doctor/run.js";
import { judgeSnapshot } from "../../doctor/snapshot-check.js";

const HOUR = 3_600_000;
const NOW = Date.parse("2025-05-01T12:00:00Z");

function meta(createdAt: string, view: SnapshotMeta["view"] = "relay"): SnapshotMeta {
  return { format: 1, version: 7, contentHash: "x", createdAt, view, sources: [] };
}

const expectations = { path: "/var/lib/emailng/snapshot.sqlite", maxAgeMs: HOUR, nowMs: NOW };

function config(text: string) {
  const loaded = parseConfigText(text);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.config;
}

const statuses = (findings: readonly Finding[]) => findings.map((finding) => finding.status);

describe("judgeSnapshot", () => {
  it.each([
    { name: "missing", reading: { kind: "missing" as const }, internal: false, want: ["fail"] },
    {
      name: "unreadable",
      reading: { kind: "unreadable" as const, reason: "file is not a database" },
      internal: false,
      want: ["fail"],
    },
    {
      name: "fresh",
      reading: { kind: "read" as const, meta: meta("2025-05-01T11:30:00Z") },
      internal: false,
      want: ["ok"],
    },
    {
      name: "stale",
      reading: { kind: "read" as const, meta: meta("2025-05-01T10:30:00Z") },
      internal: false,
      want: ["fail"],
    },
    {
      name: "future",
      reading: { kind: "read" as const, meta: meta("2025-05-01T12:10:00Z") },
      internal: false,
      want: ["warn"],
    },
    {
      name: "no date",
      reading: { kind: "read" as const, meta: meta("yesterday") },
      internal: false,
      want: ["fail"],
    },
    {
      name: "relay view where the dict needs the internal one",
      reading: { kind: "read" as const, meta: meta("2025-05-01T11:30:00Z", "relay") },
      internal: true,
      want: ["ok", "fail"],
    },
    {
      name: "internal view for the dict",
      reading: { kind: "read" as const, meta: meta("2025-05-01T11:30:00Z", "internal") },
      internal: true,
      want: ["ok"],
    },
  ])("$name", ({ reading, internal, want }) => {
    const findings = judgeSnapshot(reading, { ...expectations, needsInternalView: internal });
    expect(statuses(findings)).toEqual(want);
    for (const finding of findings) if (finding.status === "fail") expect(finding.fix).not.toBe("");
  });

  it("names the age and max_age of a stale snapshot", () => {
    const [finding] = judgeSnapshot(
      { kind: "read", meta: meta("2025-05-01T09:00:00Z") },
      { ...expectations, needsInternalView: false },
    );
    expect(finding?.message).toContain("3h 0m old");
    expect(finding?.message).toContain("max_age (1h 0m)");
    expect(finding?.status === "fail" && finding.fix).toContain("emailng sync run");
  });
});

describe("socket units and endpoints", () => {
  it("reads FileDescriptorName and ListenStream, defaulting the name to the unit's", () => {
    expect(
      parseSocketUnit(
        "emailng-policyd.socket",
        "[Unit]\nDescription=x\n[Socket]\nListenStream=/var/spool/postfix/private/emailng-policyd\nFileDescriptorName=policyd\n",
      ),
    ).toEqual({ name: "policyd", listen: ["/var/spool/postfix/private/emailng-policyd"] });
    expect(parseSocketUnit("other.socket", "[Socket]\nListenStream=/run/other.sock\n")).toEqual({
      name: "other",
      listen: ["/run/other.sock"],
    });
    // ListenStream outside [Socket] is not a socket.
    expect(parseSocketUnit("x.socket", "[Install]\nListenStream=/run/x\n").listen).toEqual([]);
  });

  const text = `
[verifyd]
[[verifyd.listen]]
unix = "/run/emailng/verifyd.sock"
[[verifyd.listen]]
tcp = "127.0.0.1:10045"
[[verifyd.dovecot.listen]]
systemd = "verifyd-dict"
[policyd]
[[policyd.listen]]
systemd = "policyd"
[quotad]
[[quotad.feed.listen]]
unix = "/run/emailng/quotad-dict.sock"
`;

  it("lists the listeners of the tables written in the file, systemd ones resolved by their unit", () => {
    const sockets = new Map([["policyd", ["/var/spool/postfix/private/emailng-policyd"]]]);
    const endpoints = servedEndpoints(config(text), deployedTables(text), sockets);
    expect(endpoints.map((endpoint) => [endpoint.kind, endpoint.key, endpoint.address])).toEqual([
      ["verifyd", "verifyd.listen[0]", { kind: "unix", path: "/run/emailng/verifyd.sock" }],
      ["verifyd", "verifyd.listen[1]", { kind: "tcp", host: "127.0.0.1", port: 10045 }],
      ["verifyd-dict", "verifyd.dovecot.listen[0]", { kind: "unresolved", name: "verifyd-dict" }],
      ["policyd", "policyd.listen[0]", { kind: "unix", path: "/var/spool/postfix/private/emailng-policyd" }],
      ["quotad", "quotad.listen[0]", { kind: "unix", path: "/run/emailng/quotad.sock" }],
      ["quotad-feed", "quotad.feed.listen[0]", { kind: "unix", path: "/run/emailng/quotad-dict.sock" }],
    ]);
  });

  it("leaves out daemons whose table is not in the file", () => {
    const only = '[verifyd]\nsnapshot_check_interval = "2s"\n';
    const kinds = servedEndpoints(config(only), deployedTables(only), new Map()).map(
      (endpoint) => endpoint.kind,
    );
    expect(kinds).toEqual(["verifyd"]);
  });
});

describe("judging answers", () => {
  const where = "/run/emailng/verifyd.sock (verifyd.listen[0])";

  it.each([
    { name: "OK", reply: { status: "OK" as const, data: "cs.example.org" }, expectFound: true, want: "ok" },
    {
      name: "NOTFOUND for the primary domain",
      reply: { status: "NOTFOUND" as const },
      expectFound: true,
      want: "fail",
    },
    {
      name: "NOTFOUND for a probe key",
      reply: { status: "NOTFOUND" as const },
      expectFound: false,
      want: "ok",
    },
    {
      name: "TEMP",
      reply: { status: "TEMP" as const, reason: "directory snapshot v3 is older than its maximum age" },
      expectFound: true,
      want: "fail",
    },
    {
      name: "PERM",
      reply: { status: "PERM" as const, reason: "unknown map name" },
      expectFound: true,
      want: "fail",
    },
  ])("socketmap $name", ({ reply, expectFound, want }) => {
    const finding = judgeSocketmap(where, "cs.example.org", expectFound, { ok: true, reply });
    expect(finding.status).toBe(want);
    if (reply.status === "TEMP") expect(finding.message).toContain(reply.reason);
  });

  const policyReply = (action: string | undefined) => ({
    ok: true as const,
    reply: {
      attributes: new Map(action === undefined ? [] : [["action", action]]),
      action,
      validUtf8: true,
    },
  });

  it.each([
    { action: "DUNNO", want: "ok" },
    { action: "552 5.2.2 Mailbox is full", want: "ok" },
    { action: "DEFER_IF_PERMIT Mailbox quota cannot be checked now", want: "warn" },
    { action: "450 4.7.1 Rate limit exceeded (x), please try again later", want: "warn" },
    { action: "BOGUS", want: "fail" },
    { action: undefined, want: "fail" },
  ])("policy $action", ({ action, want }) => {
    expect(judgePolicy("quotad", "/x", policyReply(action)).status).toBe(want);
  });

  it.each([
    { code: "N" as const, want: "ok" },
    { code: "O" as const, want: "ok" },
    { code: "F" as const, want: "fail" },
  ])("dict $code", ({ code, want }) => {
    const finding = judgeDict("verifyd-dict", "/x", {
      ok: true,
      reply: { kind: "reply", code, value: code === "F" ? "snapshot is stale" : "", extra: [] },
    });
    expect(finding.status).toBe(want);
    if (code === "F") expect(finding.message).toContain("snapshot is stale");
  });

  it.each([
    { code: "ENOENT", fix: "systemctl start emailng-policyd.service" },
    { code: "ECONNREFUSED", fix: "systemctl restart emailng-policyd.service" },
    { code: "EACCES", fix: "as root" },
    { code: "timeout", fix: "journalctl -u emailng-policyd.service" },
    { code: "closed", fix: "emailng-policyd.service" },
  ])("connection failure $code", ({ code, fix }) => {
    const finding = judgeConnectionFailure("policyd", "/p (policyd.listen[0])", { code, message: "m" });
    expect(finding.status).toBe("fail");
    expect(finding.status === "fail" && finding.fix).toContain(fix);
  });

  it("asks in the peers' own wire format", () => {
    const policy = new TextDecoder().decode(probePolicyRequest("postmaster@cs.example.org", "i1"));
    expect(policy).toMatch(/^request=smtpd_access_policy\nprotocol_state=RCPT\n/);
    expect(policy).toContain("recipient=postmaster@cs.example.org\n");
    expect(policy).toContain("sasl_username=emailng-doctor\n");
    expect(policy.endsWith("\n\n")).toBe(true);
    expect(new TextDecoder().decode(probeDictRequest("auth", "shared/userdb/x", "x"))).toBe(
      "H3\t2\t0\t\tauth\nLshared/userdb/x\tx\n",
    );
  });
});

describe("postconf", () => {
  const endpoints: Endpoint[] = [
    {
      kind: "verifyd",
      key: "verifyd.listen[0]",
      address: { kind: "unix", path: "/run/emailng/verifyd.sock" },
    },
    {
      kind: "policyd",
      key: "policyd.listen[0]",
      address: { kind: "unix", path: "/var/spool/postfix/private/emailng-policyd" },
    },
  ];
  const relay = [
    "queue_directory = /var/spool/postfix",
    "relay_recipient_maps = socketmap:unix:/run/emailng/verifyd.sock:recipient",
    "virtual_alias_maps = socketmap:unix:/run/emailng/verifyd.sock:alias",
    "smtpd_recipient_restrictions = reject_unlisted_recipient, check_policy_service { unix:private/emailng-policyd, timeout=15s, default_action=DEFER_IF_PERMIT }",
    "smtpd_end_of_data_restrictions = check_policy_service unix:private/emailng-policyd",
    "virtual_alias_domains =",
  ];

  it("reads references and policy targets as Postfix resolves them", () => {
    expect(
      socketmapReferences("p", "proxy:socketmap:unix:/a/b.sock:alias, socketmap:inet:[::1]:10045:login"),
    ).toEqual([
      { parameter: "p", target: { kind: "unix", path: "/a/b.sock" }, map: "alias" },
      { parameter: "p", target: { kind: "tcp", host: "::1", port: 10045 }, map: "login" },
    ]);
    expect(
      policyTargets(
        "check_policy_service { unix:private/a, timeout=1s }, check_policy_service unix:/abs/b, check_policy_service inet:127.0.0.1:10040",
        "/q",
      ),
    ).toEqual(["/q/private/a", "/abs/b", "127.0.0.1:10040"]);
    expect(parsePostconf(relay.join("\n")).get("virtual_alias_domains")).toBe("");
  });

  it("is content with a relay wired like deploy/postfix/relay-main.cf", () => {
    expect(statuses(judgePostfix(parsePostconf(relay.join("\n")), endpoints))).toEqual(["ok", "ok"]);
  });

  it.each([
    {
      name: "relay_recipient_maps without verifyd",
      change: ["relay_recipient_maps = hash:/etc/postfix/relay_recipients"],
      want: "relay_recipient_maps (hash:/etc/postfix/relay_recipients) does not use verifyd's socket",
    },
    {
      name: "a socketmap on another socket",
      change: ["virtual_alias_maps = socketmap:unix:/run/old.sock:alias"],
      want: "virtual_alias_maps uses the socketmap /run/old.sock, which is not a verifyd listener here",
    },
    {
      name: "a map verifyd does not serve",
      change: ["virtual_alias_maps = socketmap:unix:/run/emailng/verifyd.sock:aliases"],
      want: 'asks for the map "aliases"',
    },
    {
      name: "policyd not charged",
      change: ["smtpd_end_of_data_restrictions ="],
      want: "messages are never charged",
    },
    {
      name: "policyd not called",
      change: ["smtpd_recipient_restrictions = reject_unlisted_recipient"],
      want: "smtpd_recipient_restrictions does not call policyd",
    },
  ])("warns: $name", ({ change, want }) => {
    const findings = judgePostfix(parsePostconf([...relay, ...change].join("\n")), endpoints);
    const problems = findings.filter((finding) => finding.status === "warn" || finding.status === "fail");
    expect(problems.map((finding) => finding.message).join("\n")).toContain(want);
    for (const problem of problems)
      expect(problem.status !== "ok" && "fix" in problem && problem.fix).toBeTruthy();
  });
});

describe("doveconf", () => {
  const endpoints: Endpoint[] = [
    {
      kind: "quotad-feed",
      key: "quotad.feed.listen[0]",
      address: { kind: "unix", path: "/run/emailng/quotad-dict.sock" },
    },
    {
      kind: "verifyd-dict",
      key: "verifyd.dovecot.listen[0]",
      address: { kind: "unix", path: "/run/emailng/verifyd-dict.sock" },
    },
  ];
  const doveconf = `passdb {
  args = /etc/dovecot/dict-emailng.conf.ext
  driver = dict
}
plugin {
  quota_clone_dict = proxy:/run/emailng/quotad-dict.sock:quotaclone
}
userdb {
  args = /etc/dovecot/dict-emailng.conf.ext
  driver = dict
}
`;
  const authFiles = new Map([
    ["/etc/dovecot/dict-emailng.conf.ext", "uri = proxy:/run/emailng/verifyd-dict.sock:auth\n"],
  ]);

  it("reads 2.3 and 2.4 quota_clone targets", () => {
    expect(quotaCloneReferences(doveconf)).toEqual([
      { where: "quota_clone_dict", path: "/run/emailng/quotad-dict.sock", name: "quotaclone" },
    ]);
    expect(
      quotaCloneReferences(
        "quota_clone {\n  dict proxy {\n    dict_proxy_name = quotaclone\n    dict_proxy_socket_path = /run/q.sock\n  }\n}\n",
      ),
    ).toEqual([{ where: "quota_clone { dict proxy }", path: "/run/q.sock", name: "quotaclone" }]);
  });

  it.each([
    {
      name: "wired like deploy/dovecot/backend-23.conf",
      text: doveconf,
      files: authFiles,
      dictName: "quotaclone",
      want: ["ok", "ok"],
    },
    { name: "another dict name", text: doveconf, files: authFiles, dictName: "usage", want: ["fail", "ok"] },
    {
      name: "no quota_clone",
      text: doveconf.replace(/quota_clone_dict.*\n/, ""),
      files: authFiles,
      dictName: "quotaclone",
      want: ["warn", "ok"],
    },
    {
      name: "dict passdb on another socket",
      text: doveconf,
      files: new Map([["/etc/dovecot/dict-emailng.conf.ext", "uri = proxy:/run/other.sock:auth\n"]]),
      dictName: "quotaclone",
      want: ["ok", "fail"],
    },
    {
      name: "no dict passdb",
      text: "plugin {\n  quota_clone_dict = proxy:/run/emailng/quotad-dict.sock:quotaclone\n}\n",
      files: new Map(),
      dictName: "quotaclone",
      want: ["ok", "warn"],
    },
  ])("$name", ({ text, files, dictName, want }) => {
    const findings = judgeDovecot({ doveconf: text, authFiles: files, feedDictName: dictName }, endpoints);
    expect(statuses(findings)).toEqual(want);
  });
});

describe("report", () => {
  it("exits 1 on a warning or a failure, 0 on ok and skipped checks only", () => {
    expect(doctorExitStatus([ok("a", "x"), skip("b", "y")])).toBe(0);
    expect(doctorExitStatus([ok("a", "x"), warn("b", "y", "z")])).toBe(1);
    expect(doctorExitStatus([fail("a", "x", "z")])).toBe(1);
  });

  it("prints each fix under its finding and a summary", () => {
    const text = formatFindingsText([ok("config", "valid"), fail("snapshot", "missing", "run sync")]);
    expect(text).toBe(
      "ok   config: valid\nFAIL snapshot: missing\n     fix: run sync\n1 failed, 0 warnings, 1 ok, 0 skipped\n",
    );
  });
});
