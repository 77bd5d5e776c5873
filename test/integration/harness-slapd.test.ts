// Proves the slapd harness: a private slapd with the sample directory
// answers the mail-reader, refuses anonymous reads, checks user passwords,
// keeps its data across a restart on the same port, and loads a generated
// 10,000-person directory quickly enough for later scale tests.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDirectoryLdif } from "../harness/directory-ldif.js";
import { isAlive, makeTempDir, removeTempDir } from "../harness/process.js";
import { type Slapd, startSlapd } from "../harness/slapd.js";

/** Values of one attribute in ldapsearch's LDIF output (-LLL, no line wrapping). */
function values(ldif: string, attribute: string): string[] {
  const prefix = `${attribute.toLowerCase()}: `;
  return ldif
    .split("\n")
    .filter((line) => line.toLowerCase().startsWith(prefix))
    .map((line) => line.slice(prefix.length));
}

describe("slapd harness with the sample directory", () => {
  let slapd: Slapd;

  beforeAll(async () => {
    const started = Date.now();
    slapd = await startSlapd();
    console.log(`slapd (sample directory) started in ${Date.now() - started} ms, pid ${slapd.pid}`);
  });

  afterAll(async () => {
    await slapd?.destroy();
  });

  it("answers a search as cn=mail-reader with the fixture's addresses", async () => {
    const result = await slapd.ldapsearch([
      "-x",
      "-LLL",
      "-o",
      "ldif-wrap=no",
      "-D",
      slapd.readerDn,
      "-w",
      slapd.readerPassword,
      "-b",
      slapd.baseDn,
      "(uid=gpapadop)",
      "mail",
      "mailAlternateAddress",
      "userPassword",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(values(result.stdout, "mail")).toEqual(["gpapadop@cs.example.org"]);
    expect(values(result.stdout, "mailAlternateAddress").sort()).toEqual([
      "george.papadopoulos@cs.example.org",
      "georgios.papadopoulos@rise.example",
      "papadopoulos.georgios@cs.example.org",
    ]);
    // The reader resolves addresses; it has no business with password hashes.
    expect(values(result.stdout, "userPassword")).toEqual([]);
  });

  it("gives anonymous clients nothing to read", async () => {
    const result = await slapd.ldapsearch(["-x", "-LLL", "-b", slapd.baseDn, "(uid=gpapadop)", "mail"]);
    // slapd does not even admit the suffix exists (32 noSuchObject), so an
    // anonymous client learns nothing, not even which entries are there.
    expect(result.code).toBe(32);
    expect(result.stdout).not.toContain("gpapadop@cs.example.org");
    expect(result.stdout).not.toContain("dn:");
  });

  it("binds a user with pw-<uid> and refuses a wrong password", async () => {
    const dn = `uid=csd4711,ou=people,${slapd.baseDn}`;
    const good = await slapd.ldapsearch(["-x", "-D", dn, "-w", "pw-csd4711", "-b", dn, "-s", "base", "uid"]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain("uid: csd4711");
    const bad = await slapd.ldapsearch(["-x", "-D", dn, "-w", "wrong", "-b", dn, "-s", "base", "uid"]);
    expect(bad.code).toBe(49); // invalidCredentials
  });

  it("keeps its data and port across a restart, with a new PID", async () => {
    const oldPid = slapd.pid;
    await slapd.stop();
    expect(isAlive(oldPid)).toBe(false);
    await slapd.restart();
    expect(slapd.pid).not.toBe(oldPid);
    const result = await slapd.ldapsearch([
      "-x",
      "-LLL",
      "-D",
      slapd.readerDn,
      "-w",
      slapd.readerPassword,
      "-b",
      slapd.baseDn,
      "(mail=csall@cs.example.org)",
      "cn",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("cn: csall");
  });

  it("is gone after stop (the PID no longer exists)", async () => {
    const pid = slapd.pid;
    await slapd.stop();
    expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe("slapd harness with a generated 10,000-person directory", () => {
  let slapd: Slapd;
  let workDir: string;

  beforeAll(async () => {
    workDir = makeTempDir("ldif");
    const generateStarted = Date.now();
    const generated = await generateDirectoryLdif({
      path: join(workDir, "directory.ldif"),
      users: 10_000,
      groups: 200,
    });
    const generateMs = Date.now() - generateStarted;
    const started = Date.now();
    slapd = await startSlapd({ ldif: [generated.path], logLevel: "none" });
    console.log(
      `10,000 people + 200 groups: generated in ${generateMs} ms, slapadd -q ${slapd.loadMs} ms, ` +
        `slapd ready in ${Date.now() - started} ms in all`,
    );
  });

  afterAll(async () => {
    await slapd?.destroy();
    if (workDir !== undefined) removeTempDir(workDir);
  });

  it("finds a generated person by address and counts all people", async () => {
    const one = await slapd.ldapsearch([
      "-x",
      "-LLL",
      "-D",
      slapd.readerDn,
      "-w",
      slapd.readerPassword,
      "-b",
      slapd.baseDn,
      "(mail=csd109999@cs.example.org)",
      "uid",
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toContain("uid: csd109999");

    const started = Date.now();
    const all = await slapd.ldapsearch([
      "-x",
      "-LLL",
      "-D",
      slapd.readerDn,
      "-w",
      slapd.readerPassword,
      "-b",
      `ou=people,${slapd.baseDn}`,
      "-s",
      "one",
      "(objectClass=inetMailUser)",
      "1.1",
    ]);
    expect(all.code, all.stderr).toBe(0);
    const count = all.stdout.split("\n").filter((line) => line.startsWith("dn: ")).length;
    console.log(`search of all ${count} people took ${Date.now() - started} ms`);
    // 10,000 generated plus the 12 people of the sample.
    expect(count).toBe(10_012);
  });

  it("checks a generated person's password", async () => {
    const dn = `uid=csd100042,ou=people,${slapd.baseDn}`;
    const result = await slapd.ldapsearch([
      "-x",
      "-D",
      dn,
      "-w",
      "pw-csd100042",
      "-b",
      dn,
      "-s",
      "base",
      "1.1",
    ]);
    expect(result.code, result.stderr).toBe(0);
  });
});
