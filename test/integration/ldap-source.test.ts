// Proves core/ldap (client, source, incremental) against a real OpenLDAP
// slapd: the sample directory read completely and in pages, TLS with the
// certificate checked (LDAPS and StartTLS, and a wrong CA refused), the
// failures that must never give a partial directory (wrong password, dead or
// silent servers, slapd stopped in the middle of a paged search), fail-over
// to the second URL, incremental reads after ldapmodify, and a 10,000-person
// directory read in full.
import { readFileSync, statSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DomainSet } from "../../core/directory/model.js";
import { TransientError } from "../../core/errors.js";
import {
  connectLdap,
  type LdapConnection,
  type LdapConnectOptions,
  LdapRefusedError,
} from "../../core/ldap/client.js";
import { applyChanges } from "../../core/ldap/incremental.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping, type RawEntry } from "../../core/ldap/mapping.js";
import { fetchChanges, fetchDirectory, parseGeneralizedTime } from "../../core/ldap/source.js";
import { generateDirectoryLdif } from "../harness/directory-ldif.js";
import { freePort, makeTempDir, removeTempDir, runChecked, sleep } from "../harness/process.js";
import { SAMPLE_DIRECTORY_LDIF, type Slapd, startSlapd } from "../harness/slapd.js";
import { generateSelfSignedCertificate } from "../harness/tls.js";

const LDAPMODIFY = "/usr/bin/ldapmodify";
const domains: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};
const TIMESTAMP = "modifyTimestamp";

function readerOptions(slapd: Slapd, overrides: Partial<LdapConnectOptions> = {}): LdapConnectOptions {
  return {
    urls: [slapd.url],
    startTls: false,
    caPem: undefined,
    bindDn: slapd.readerDn,
    bindPassword: slapd.readerPassword,
    timeoutMs: 5_000,
    connectTimeoutMs: 2_000,
    pageSize: 3,
    ...overrides,
  };
}

async function withConnection<T>(
  options: LdapConnectOptions,
  use: (c: LdapConnection) => Promise<T>,
): Promise<T> {
  const connection = await connectLdap(options);
  try {
    return await use(connection);
  } finally {
    await connection.close();
  }
}

/** What the promise rejected with (fails the test if it resolved), and how long it took. */
async function failure(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)?.slice(0, 200)}`);
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
}

function requireWatermark(watermark: string | null): string {
  if (watermark === null) throw new Error("no watermark");
  return watermark;
}

/** Timestamps have one-second resolution: waits until the clock is past the watermark's second. */
async function waitPastSecondOf(watermark: string): Promise<void> {
  const second = Math.floor((parseGeneralizedTime(watermark) ?? 0) / 1000);
  while (Math.floor(Date.now() / 1000) <= second) await sleep(50);
}

/** slapd's log from a byte offset on (the stats lines of what we just did). */
function logSince(slapd: Slapd, offset: number): string {
  return readFileSync(slapd.logPath).subarray(offset).toString("utf8");
}

function logSize(slapd: Slapd): number {
  return statSync(slapd.logPath).size;
}

/** A TCP listener on 127.0.0.1 that accepts connections and never says a byte. */
async function silentServer(): Promise<{ url: (scheme: string) => string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    url: (scheme) => `${scheme}://127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("LDAP source against slapd with the sample directory", () => {
  let slapd: Slapd;
  let workDir: string;
  let caPem: string;
  let wrongCaPem: string;
  const mapping = defaultMapping("dc=cs,dc=example,dc=org");

  beforeAll(async () => {
    slapd = await startSlapd({ tls: true });
    workDir = makeTempDir("ldap-source");
    if (slapd.tls === null) throw new Error("slapd started without TLS");
    caPem = readFileSync(slapd.tls.caPath, "utf8");
    // A certificate for the same names that no one signed: trusting it must not make slapd's acceptable.
    wrongCaPem = readFileSync((await generateSelfSignedCertificate(workDir)).certPath, "utf8");
  });

  afterAll(async () => {
    await slapd?.destroy();
    if (workDir !== undefined) removeTempDir(workDir);
  });

  it("reads the whole sample directory as the reader, in pages of 3, without password hashes", async () => {
    const offset = logSize(slapd);
    const fetched = await withConnection(readerOptions(slapd), (connection) =>
      fetchDirectory(connection, mapping, domains, TIMESTAMP),
    );
    const fromLdif = directoryFromLdif(readFileSync(SAMPLE_DIRECTORY_LDIF, "utf8"), mapping, domains);
    expect(fromLdif.problems).toEqual([]);
    expect(fetched.problems).toEqual([]);
    expect(fetched.entries).toEqual({ users: 12, groups: 6 });

    // The file holds hashes; the reader may not read userPassword, so none arrive.
    expect(fromLdif.directory.users.filter((user) => user.passwordHash !== undefined)).toHaveLength(12);
    expect(fetched.users.filter((user) => user.passwordHash !== undefined)).toEqual([]);
    const withoutHash = fromLdif.directory.users.map(({ passwordHash: _hash, ...user }) => user);
    const byLogin = <T extends { login: string }>(list: T[]) =>
      [...list].sort((a, b) => a.login.localeCompare(b.login));
    const byName = <T extends { name: string }>(list: T[]) =>
      [...list].sort((a, b) => a.name.localeCompare(b.name));
    expect(byLogin(fetched.users)).toEqual(byLogin(withoutHash));
    expect(byName(fetched.groups)).toEqual(byName(fromLdif.directory.groups));

    expect(fetched.watermark).toMatch(/^\d{14}Z$/);
    expect(parseGeneralizedTime(fetched.watermark ?? "")).toBeLessThanOrEqual(Date.now());

    // slapd's stats log: one SEARCH RESULT per page; 12 people in pages of 3
    // need at least four searches on ou=people, none returning more than 3.
    const log = logSince(slapd, offset);
    const results = [...log.matchAll(/SEARCH RESULT tag=101 err=0 .*nentries=(\d+)/g)].map((match) =>
      Number(match[1]),
    );
    const pageCount = results.length;
    console.log(`sample directory: ${pageCount} pages, entries per page ${results.join(",")}`);
    expect(results.every((count) => count <= 3)).toBe(true);
    expect(results.reduce((sum, count) => sum + count, 0)).toBe(18);
    expect(pageCount).toBeGreaterThanOrEqual(6);
  });

  it("refuses a wrong password with a clear error and returns nothing", async () => {
    const { error } = await failure(
      withConnection(readerOptions(slapd, { bindPassword: "wrong" }), (connection) =>
        fetchDirectory(connection, mapping, domains, TIMESTAMP),
      ),
    );
    expect(error).toBeInstanceOf(LdapRefusedError);
    expect((error as LdapRefusedError).resultCode).toBe(49);
    expect(error.message).toBe(
      `LDAP ${slapd.url}: connect and bind as ${slapd.readerDn} refused: invalid credentials`,
    );
  });

  it("reports a search base that does not exist as a refusal, not as an outage", async () => {
    const { error } = await failure(
      withConnection(readerOptions(slapd), (connection) =>
        fetchDirectory(
          connection,
          { ...mapping, groups: { ...mapping.groups, base: "ou=nowhere,dc=cs,dc=example,dc=org" } },
          domains,
          TIMESTAMP,
        ),
      ),
    );
    expect(error).toBeInstanceOf(LdapRefusedError);
    expect(error.message).toContain("search ou=nowhere,dc=cs,dc=example,dc=org");
    expect(error.message).toContain("no such object");
  });

  it("fails fast with a TransientError when nothing listens on the port", async () => {
    const port = await freePort();
    const { error, ms } = await failure(
      connectLdap(readerOptions(slapd, { urls: [`ldap://127.0.0.1:${port}`], connectTimeoutMs: 2_000 })),
    );
    expect(error).toBeInstanceOf(TransientError);
    expect((error as TransientError).code).toBe("transient.backend_down");
    expect(error.message).toContain(`ldap://127.0.0.1:${port}: connect and bind as ${slapd.readerDn} failed`);
    expect(error.message).toContain("ECONNREFUSED");
    expect(ms).toBeLessThan(2_000);
  });

  it("gives up on a server that accepts but never answers, within the connect timeout (LDAPS) or the request timeout", async () => {
    const silent = await silentServer();
    try {
      // LDAPS: the TLS handshake never completes; bounded by the connect timeout.
      const ldaps = await failure(
        connectLdap(readerOptions(slapd, { urls: [silent.url("ldaps")], caPem, connectTimeoutMs: 500 })),
      );
      expect(ldaps.error).toBeInstanceOf(TransientError);
      expect((ldaps.error as TransientError).code).toBe("transient.timeout");
      expect(ldaps.ms).toBeGreaterThanOrEqual(450);
      expect(ldaps.ms).toBeLessThan(1_500);

      // StartTLS: the extended request is never answered; bounded by the request timeout.
      const startTls = await failure(
        connectLdap(
          readerOptions(slapd, { urls: [silent.url("ldap")], startTls: true, caPem, timeoutMs: 600 }),
        ),
      );
      expect(startTls.error).toBeInstanceOf(TransientError);
      expect((startTls.error as TransientError).code).toBe("transient.timeout");
      expect(startTls.error.message).toContain("connect and StartTLS failed");
      expect(startTls.ms).toBeLessThan(1_600);

      // Plain: the bind is never answered.
      const plain = await failure(
        connectLdap(readerOptions(slapd, { urls: [silent.url("ldap")], timeoutMs: 600 })),
      );
      expect((plain.error as TransientError).code).toBe("transient.timeout");
      expect(plain.ms).toBeLessThan(1_600);
    } finally {
      await silent.close();
    }
  });

  it("uses the second URL when the first is dead, and says which failed when all are", async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const fetched = await withConnection(
      readerOptions(slapd, { urls: [dead, slapd.url] }),
      async (connection) => {
        expect(connection.url).toBe(slapd.url);
        return fetchDirectory(connection, mapping, domains, TIMESTAMP);
      },
    );
    expect(fetched.entries).toEqual({ users: 12, groups: 6 });

    const otherDead = `ldap://127.0.0.1:${await freePort()}`;
    const { error } = await failure(connectLdap(readerOptions(slapd, { urls: [dead, otherDead] })));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain("no LDAP server answered");
    expect(error.message).toContain(dead);
    expect(error.message).toContain(otherDead);
  });

  it("reads over LDAPS with slapd's certificate checked against the CA, and refuses a wrong CA", async () => {
    const ldapsUrl = slapd.tls?.ldapsUrl ?? "";
    const fetched = await withConnection(readerOptions(slapd, { urls: [ldapsUrl], caPem }), (connection) =>
      fetchDirectory(connection, mapping, domains, TIMESTAMP),
    );
    expect(fetched.entries).toEqual({ users: 12, groups: 6 });

    for (const wrong of [wrongCaPem, undefined]) {
      const { error } = await failure(connectLdap(readerOptions(slapd, { urls: [ldapsUrl], caPem: wrong })));
      expect(error).toBeInstanceOf(TransientError);
      expect(error.message).toContain("TLS certificate not accepted");
    }
  });

  it("upgrades with StartTLS before binding, and refuses a wrong CA before sending the password", async () => {
    const offset = logSize(slapd);
    const fetched = await withConnection(readerOptions(slapd, { startTls: true, caPem }), (connection) =>
      fetchDirectory(connection, mapping, domains, TIMESTAMP),
    );
    expect(fetched.entries).toEqual({ users: 12, groups: 6 });
    const log = logSince(slapd, offset);
    expect(log).toContain("EXT oid=1.3.6.1.4.1.1466.20037");
    expect(log).toMatch(/TLS established/);

    const before = logSize(slapd);
    const { error } = await failure(connectLdap(readerOptions(slapd, { startTls: true, caPem: wrongCaPem })));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain("connect and StartTLS failed: TLS certificate not accepted");
    await sleep(100);
    expect(logSince(slapd, before)).not.toContain("BIND dn=");
  });

  it("reads what changed since the watermark, and applying it gives what a full read gives", async () => {
    const people = "ou=people,dc=cs,dc=example,dc=org";
    const rise = "cn=rise,ou=groups,dc=cs,dc=example,dc=org";
    const modify = (ldif: string[]) =>
      runChecked(LDAPMODIFY, ["-x", "-H", slapd.url, "-D", slapd.adminDn, "-w", slapd.adminPassword], {
        input: [...ldif, ""].join("\n"),
        timeoutMs: 15_000,
      });
    const read = (since: string) =>
      withConnection(readerOptions(slapd), (connection) =>
        fetchChanges(connection, mapping, domains, TIMESTAMP, since),
      );
    const fullRead = () =>
      withConnection(readerOptions(slapd, { pageSize: 500 }), (connection) =>
        fetchDirectory(connection, mapping, domains, TIMESTAMP),
      );
    const dns = (entries: RawEntry[]) => entries.map((entry) => entry.dn).sort();

    const first = await fullRead();
    const w0 = requireWatermark(first.watermark);
    await waitPastSecondOf(w0);
    await modify([
      `dn: uid=csd4711,${people}`,
      "changetype: modify",
      "replace: mailUserStatus",
      "mailUserStatus: inactive",
      "",
      `dn: uid=gpapadop,${people}`,
      "changetype: modify",
      "add: mailAlternateAddress",
      "mailAlternateAddress: g.papadopoulos@cs.example.org",
      "",
      `dn: ${rise}`,
      "changetype: modify",
      "add: member",
      `member: uid=csd4712,${people}`,
    ]);

    // Inclusive: the changed entries, plus any entry stamped in the watermark's own second.
    const changes = await read(w0);
    const changed = [`uid=csd4711,${people}`, `uid=gpapadop,${people}`, rise];
    const returned = [...changes.userEntries, ...changes.groupEntries];
    expect(dns(returned)).toEqual(expect.arrayContaining(changed));
    for (const entry of returned.filter((candidate) => !changed.includes(candidate.dn))) {
      expect(entry[TIMESTAMP]).toEqual([w0]);
    }
    const w1 = requireWatermark(changes.watermark);
    expect(parseGeneralizedTime(w1)).toBeGreaterThan(parseGeneralizedTime(w0) ?? Number.POSITIVE_INFINITY);

    const applied = applyChanges(first, changes.userEntries, changes.groupEntries, mapping, domains);
    expect(applied.problems).toEqual([]);
    const user = (login: string) => applied.users.find((candidate) => candidate.login === login);
    expect(user("csd4711")?.status).toBe("inactive");
    expect(user("gpapadop")?.alternateAddresses).toContain("g.papadopoulos@cs.example.org");
    // csd4712 did not change: its DN is resolved from the previous read.
    expect(applied.groups.find((group) => group.name === "rise")?.memberLogins.sort()).toEqual([
      "csd4712",
      "gpapadop",
      "mnikolai",
      "soikonom",
    ]);

    // A second round: exactly the entries of the watermark's second and the new change.
    await waitPastSecondOf(w1);
    await modify([
      `dn: uid=jsmith,${people}`,
      "changetype: modify",
      "add: mailForwardingAddress",
      "mailForwardingAddress: john.smith@elsewhere.example",
    ]);
    const second = await read(w1);
    expect(dns(second.userEntries)).toEqual([
      `uid=csd4711,${people}`,
      `uid=gpapadop,${people}`,
      `uid=jsmith,${people}`,
    ]);
    expect(dns(second.groupEntries)).toEqual([rise]);
    const applied2 = applyChanges(applied, second.userEntries, second.groupEntries, mapping, domains);
    expect(applied2.users.find((candidate) => candidate.login === "jsmith")?.forwardingAddresses).toEqual([
      "john.smith@elsewhere.example",
    ]);

    // The incremental result is what a new full read gives.
    const last = await fullRead();
    expect(applied2.users).toEqual(last.users);
    expect(applied2.groups).toEqual(last.groups);
    expect(last.watermark).toBe(second.watermark);

    // Nothing stamped after the watermark: nothing read, no new watermark.
    const later = new Date((parseGeneralizedTime(requireWatermark(second.watermark)) ?? 0) + 1000);
    const none = await read(`${later.toISOString().replace(/\D/g, "").slice(0, 14)}Z`);
    expect(none).toEqual({ userEntries: [], groupEntries: [], watermark: null });
  });
});

describe("LDAP source against slapd with a generated 10,000-person directory", () => {
  let slapd: Slapd;
  let workDir: string;
  const mapping = defaultMapping("dc=cs,dc=example,dc=org");

  beforeAll(async () => {
    workDir = makeTempDir("ldap-source-10k");
    const generated = await generateDirectoryLdif({
      path: join(workDir, "directory.ldif"),
      users: 10_000,
      groups: 200,
    });
    slapd = await startSlapd({ ldif: [generated.path] });
  });

  afterAll(async () => {
    await slapd?.destroy();
    if (workDir !== undefined) removeTempDir(workDir);
  });

  it("reads all 10,012 people and 206 groups", async () => {
    for (const pageSize of [500, 100]) {
      const started = Date.now();
      const fetched = await withConnection(readerOptions(slapd, { pageSize }), (connection) =>
        fetchDirectory(connection, mapping, domains, TIMESTAMP),
      );
      const ms = Date.now() - started;
      console.log(
        `10,000-person directory: ${fetched.entries.users} people, ${fetched.entries.groups} groups, ` +
          `${fetched.problems.length} problems, page size ${pageSize}: ${ms} ms (connect, bind, search, convert)`,
      );
      expect(fetched.entries).toEqual({ users: 10_012, groups: 206 });
      expect(fetched.users).toHaveLength(10_012);
      expect(new Set(fetched.users.map((user) => user.login)).size).toBe(10_012);
      expect(fetched.users.find((user) => user.login === "csd109999")?.primaryAddress).toBe(
        "csd109999@cs.example.org",
      );
    }
  });

  it("rejects with a TransientError, and no data, when slapd stops in the middle of a paged search", async () => {
    const offset = logSize(slapd);
    const connection = await connectLdap(readerOptions(slapd, { pageSize: 20 }));
    let settled = false;
    const fetch = fetchDirectory(connection, mapping, domains, TIMESTAMP).finally(() => {
      settled = true;
    });
    fetch.catch(() => {});
    // Wait for slapd to have answered a few pages (its stats log says so), then stop it.
    let pages = 0;
    while (pages < 5 && !settled) {
      pages = (logSince(slapd, offset).match(/SEARCH RESULT/g) ?? []).length;
      await sleep(2);
    }
    await slapd.stop();
    const { error } = await failure(fetch);
    await connection.close();
    console.log(`slapd stopped after ${pages} of about 500 pages: ${error.message}`);
    expect(pages).toBeGreaterThanOrEqual(5);
    expect(pages).toBeLessThan(400);
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`LDAP ${slapd.url}: search ou=people,dc=cs,dc=example,dc=org`);

    // The same connection object refuses to go on; a new connection after the restart works.
    await slapd.restart();
    const { error: lost } = await failure(
      connection.pagedSearch(mapping.users.base, "(uid=csd4711)", ["uid"], 10),
    );
    expect(lost).toBeInstanceOf(TransientError);
    const again = await withConnection(readerOptions(slapd, { pageSize: 500 }), (fresh) =>
      fresh.pagedSearch(mapping.users.base, "(uid=csd4711)", ["uid"], 10),
    );
    expect(again).toEqual([{ dn: "uid=csd4711,ou=people,dc=cs,dc=example,dc=org", uid: ["csd4711"] }]);
  });
});
