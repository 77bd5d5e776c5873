/**
 * verifyd's live LDAP lookups against a real slapd.
 *
 * The snapshot is the sample directory without ekaragia (as if she had been
 * created after the last sync); slapd holds the whole sample. verifyd runs
 * with [verifyd.live_ldap] on, its socketmap and its Dovecot dict on UNIX
 * sockets. Asked over socketmap (the client Postfix's socketmap table is
 * modelled on) and over the dict protocol (the lines Dovecot's auth process
 * sends):
 * - ekaragia's addresses are accepted from LDAP; her alternate address is
 *   rewritten to her primary one; the dict userdb finds her;
 * - an address LDAP does not know is NOTFOUND, and stays so from the
 *   negative cache while slapd is stopped;
 * - with slapd stopped, a new unknown address answers TEMP on socketmap and
 *   a failure on the dict, never NOTFOUND; after slapd is back, NOTFOUND.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { DomainSet } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping } from "../../core/ldap/mapping.js";
import { openSocketmapClient, type SocketmapClient } from "../../core/net/socketmap-client.js";
import { startVerifyd, type Verifyd } from "../../verifyd/program.js";
import { makeTempDir, removeTempDir } from "../harness/process.js";
import { BASE_DN, SAMPLE_DIRECTORY_LDIF, type Slapd, startSlapd } from "../harness/slapd.js";

const DOMAINS: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};

/** One dict connection as Dovecot's auth process opens it: hello, one line, one reply. */
function dictLookup(socketPath: string, key: string, user: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let received = "";
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error(`dict: no reply for ${key}`));
    });
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      received += chunk.toString("utf8");
      if (received.includes("\n")) {
        socket.end();
        resolve(received.slice(0, received.indexOf("\n")));
      }
    });
    socket.write(`H3\t2\t0\t\tauth\nL${key}\t${user}\n`);
  });
}

describe("verifyd live LDAP lookups against a real slapd", () => {
  let dir: string;
  let slapd: Slapd;
  let verifyd: Verifyd;
  let client: SocketmapClient;
  let dictPath: string;

  beforeAll(async () => {
    dir = makeTempDir("verifyd-live");
    slapd = await startSlapd();
    const { directory } = directoryFromLdif(
      readFileSync(SAMPLE_DIRECTORY_LDIF, "utf8"),
      defaultMapping(BASE_DN),
      DOMAINS,
    );
    directory.users = directory.users.filter((user) => user.login !== "ekaragia");
    const snapshotPath = join(dir, "snapshot.sqlite");
    writeSnapshot(snapshotPath, directory, { version: 1, view: "internal", sources: [] });
    const passwordFile = join(dir, "bind-password");
    writeFileSync(passwordFile, `${slapd.readerPassword}\n`, { mode: 0o600 });
    const socketPath = join(dir, "verifyd.sock");
    dictPath = join(dir, "verifyd-dict.sock");
    const config = parseConfigText(`
[ldap]
urls = ["${slapd.url}"]
base_dn = "${BASE_DN}"
bind_dn = "${slapd.readerDn}"
bind_password_file = "${passwordFile}"
timeout = "1s"
connect_timeout = "1s"
[snapshot]
path = "${snapshotPath}"
[directory]
primary_domain = "cs.example.org"
alias_domains = ["example.org"]
virtual_domains = ["rise.example"]
[verifyd]
snapshot_check_interval = "5m"
[[verifyd.listen]]
unix = "${socketPath}"
[[verifyd.dovecot.listen]]
unix = "${dictPath}"
[verifyd.live_ldap]
enabled = true
negative_ttl = "1h"
`);
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    verifyd = await startVerifyd(config.config, pino({ level: "silent" }), { processMetrics: false });
    client = await openSocketmapClient({ path: socketPath });
  });

  afterAll(async () => {
    client?.close();
    await verifyd?.close();
    await slapd?.destroy();
    if (dir) removeTempDir(dir);
  });

  it("accepts a user LDAP knows and the snapshot does not yet", async () => {
    expect(await client.lookup("recipient", "ekaragia@cs.example.org")).toEqual({
      status: "OK",
      data: "DUNNO",
    });
    expect(await client.lookup("alias", "karagianni.eleni@cs.example.org")).toEqual({
      status: "OK",
      data: "ekaragia@cs.example.org",
    });
    expect(await client.lookup("login", "ekaragia@cs.example.org")).toEqual({
      status: "OK",
      data: "ekaragia",
    });
    const userdb = await dictLookup(dictPath, "shared/userdb/ekaragia", "ekaragia");
    expect(userdb).toMatch(/^O\{.*"user":"ekaragia"/);
  });

  it("answers NOTFOUND for an address LDAP does not know either", async () => {
    expect(await client.lookup("recipient", "nobody@cs.example.org")).toEqual({ status: "NOTFOUND" });
    expect(await dictLookup(dictPath, "shared/userdb/nobody", "nobody")).toBe("N");
  });

  it("with LDAP down: TEMP for a new unknown address, cached answers still served", async () => {
    await slapd.stop();
    try {
      expect((await client.lookup("recipient", "ghost@cs.example.org")).status).toBe("TEMP");
      expect((await dictLookup(dictPath, "shared/userdb/ghost", "ghost")).startsWith("F")).toBe(true);
      // Remembered from the tests above.
      expect(await client.lookup("recipient", "nobody@cs.example.org")).toEqual({ status: "NOTFOUND" });
      expect(await client.lookup("recipient", "ekaragia@cs.example.org")).toEqual({
        status: "OK",
        data: "DUNNO",
      });
      // The snapshot's own answers never need LDAP.
      expect(await client.lookup("recipient", "gpapadop@cs.example.org")).toEqual({
        status: "OK",
        data: "DUNNO",
      });
    } finally {
      await slapd.restart();
    }
    expect(await client.lookup("recipient", "ghost@cs.example.org")).toEqual({ status: "NOTFOUND" });
  });
});
