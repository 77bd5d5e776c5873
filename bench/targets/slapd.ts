/**
 * The "Postfix asks LDAP directly" anchors. A private slapd (test/harness/
 * slapd.ts: mdb, eq indexes on mail and mailAlternateAddress, logging off)
 * loaded with the same LDIF the snapshot was built from, then:
 *  - ldapSearchTarget: the load driver's LDAP connections (ldapts), one
 *    search per lookup with Postfix's relay_recipient_maps filter;
 *  - postmapLdapRun: Postfix's own client, `postmap -q - ldap:FILE` reading
 *    the keys on standard input (one LDAP connection per process, one
 *    search per key, exactly the code path of ldap_table in smtpd), with as
 *    many processes in parallel as the concurrency. Only throughput can be
 *    measured this way (postmap prints no per-key times).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireBinary, runCommand } from "../../test/harness/process.js";
import { type Slapd, startSlapd } from "../../test/harness/slapd.js";
import type { TargetDescriptor } from "./target.js";

export const LDAP_QUERY_FILTER = "(|(mail=%s)(mailAlternateAddress=%s))";

export interface SlapdAnchor {
  descriptor: TargetDescriptor;
  /** The running slapd once the descriptor has been started. */
  slapd(): Slapd | undefined;
}

export function slapdAnchor(ldifPath: string, users: number, pool: string): SlapdAnchor {
  let running: Slapd | undefined;
  const descriptor: TargetDescriptor = {
    name: "slapd (ldapts)",
    description: `OpenLDAP slapd ${users.toLocaleString("en-US")} users (mdb, eq indexes), searched ${LDAP_QUERY_FILTER} with result_attribute mail over one ldapts connection per client`,
    role: "anchor",
    protocol: "ldap",
    transport: "tcp",
    pool,
    async start() {
      const slapd = await startSlapd({ ldif: [ldifPath], logLevel: "none", startTimeoutMs: 900_000 });
      running = slapd;
      const { processTree, rssMb } = await import("../lib/proc.js");
      return {
        pid: slapd.pid,
        endpoint: { host: "127.0.0.1", port: slapd.port },
        idleRssMb: rssMb(processTree(slapd.pid)),
        spec: {
          ldap: {
            url: slapd.url,
            bindDn: slapd.readerDn,
            password: slapd.readerPassword,
            baseDn: slapd.baseDn,
          },
        },
        logPath: slapd.logPath,
        stop: async () => {
          running = undefined;
          await slapd.destroy();
        },
      };
    },
  };
  return { descriptor, slapd: () => running };
}

export interface PostmapRun {
  processes: number;
  keys: number;
  seconds: number;
  requestsPerSecond: number;
  found: number;
}

/** `processes` postmap processes in parallel, each looking up its share of `keys` through ldap_table. */
export async function postmapLdapRun(
  slapd: Slapd,
  work: string,
  keys: readonly string[],
  processes: number,
): Promise<PostmapRun> {
  const postmap = requireBinary("/usr/sbin/postmap", "postfix");
  const configDir = join(work, "postfix-config");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(configDir, { recursive: true });
  // postmap wants a main.cf; an empty one means stock defaults.
  writeFileSync(join(configDir, "main.cf"), "compatibility_level = 3.6\n");
  const cf = join(work, "ldap-recipients.cf");
  writeFileSync(
    cf,
    [
      `server_host = ${slapd.url}`,
      `search_base = ${slapd.baseDn}`,
      `query_filter = ${LDAP_QUERY_FILTER}`,
      "result_attribute = mail",
      "bind = yes",
      `bind_dn = ${slapd.readerDn}`,
      `bind_pw = ${slapd.readerPassword}`,
      "version = 3",
      "timeout = 10",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const perProcess = Math.ceil(keys.length / processes);
  const started = process.hrtime.bigint();
  const runs = await Promise.all(
    Array.from({ length: processes }, (_, index) => {
      const slice = keys.slice(index * perProcess, (index + 1) * perProcess);
      return runCommand(postmap, ["-c", configDir, "-q", "-", `ldap:${cf}`], {
        input: `${slice.join("\n")}\n`,
        timeoutMs: 300_000,
      });
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const run of runs) {
    if (run.code !== 0 && run.code !== 1)
      throw new Error(`postmap failed (${run.code}): ${run.stderr.slice(-500)}`);
    if (/fatal|error/i.test(run.stderr)) throw new Error(`postmap: ${run.stderr.slice(-500)}`);
  }
  const found = runs.reduce(
    (sum, run) => sum + run.stdout.split("\n").filter((line) => line.length > 0).length,
    0,
  );
  return { processes, keys: keys.length, seconds, requestsPerSecond: keys.length / seconds, found };
}
