/**
 * The directory every socketmap and dict benchmark runs on: the sample
 * directory plus N generated people and N/20 groups of 50
 * (test/harness/directory-ldif.ts, the generator bench/directory.ts also
 * uses), turned into a Directory by core/ldap/ldif.ts with the default
 * mapping — the same conversion sync-agent applies to LDAP answers — and
 * written with writeSnapshot as the relay view, as a relay receives it.
 * The same LDIF is what the private slapd of the LDAP anchor loads, so
 * every target answers for the very same addresses.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DomainSet } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping } from "../../core/ldap/mapping.js";
import { generateDirectoryLdif } from "../../test/harness/directory-ldif.js";
import { BASE_DN, SAMPLE_DIRECTORY_LDIF } from "../../test/harness/slapd.js";

export const WORKLOAD_DOMAINS: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};

/** The addresses and names the request pools draw from. */
export interface DirectoryKeys {
  /** Primary addresses of active users. */
  primaries: string[];
  /** Alternate (lastname.firstname) addresses of active users. */
  alternates: string[];
  /** Logins of active users (for dict userdb/passdb keys). */
  logins: string[];
  /** Primary addresses of inactive users (answered NOTFOUND). */
  inactive: string[];
  /** Group addresses. */
  groups: string[];
}

export interface WorkloadDirectory {
  users: number;
  groups: number;
  /** Generated people and groups only (load after the sample directory). */
  ldifPath: string;
  /** Relay view (no homes, uids or password hashes): what the socketmap side reads. */
  snapshotPath: string;
  /** Internal view (homes, uids, password hashes): what the Dovecot dict side reads. */
  internalSnapshotPath: string;
  snapshotBytes: number;
  keys: DirectoryKeys;
  buildMs: number;
}

export async function buildWorkloadDirectory(work: string, users: number): Promise<WorkloadDirectory> {
  const started = Date.now();
  const groups = Math.max(5, Math.round(users / 20));
  const generated = await generateDirectoryLdif({
    path: join(work, `directory-${users}.ldif`),
    users,
    groups,
  });
  const text = `${readFileSync(SAMPLE_DIRECTORY_LDIF, "utf8")}\n${readFileSync(generated.path, "utf8")}`;
  const { directory, problems } = directoryFromLdif(text, defaultMapping(BASE_DN), WORKLOAD_DOMAINS);
  if (directory.users.length < users) {
    throw new Error(
      `generated directory: ${directory.users.length} users of ${users}; ${problems.slice(0, 5).join("; ")}`,
    );
  }
  const snapshotPath = join(work, `snapshot-${users}.sqlite`);
  writeSnapshot(snapshotPath, directory, {
    version: 1,
    view: "relay",
    sources: [{ name: "ldap", users: directory.users.length, groups: directory.groups.length, skipped: 0 }],
  });
  const internalSnapshotPath = join(work, `snapshot-${users}-internal.sqlite`);
  writeSnapshot(internalSnapshotPath, directory, {
    version: 1,
    view: "internal",
    sources: [{ name: "ldap", users: directory.users.length, groups: directory.groups.length, skipped: 0 }],
  });
  const keys: DirectoryKeys = { primaries: [], alternates: [], logins: [], inactive: [], groups: [] };
  for (const user of directory.users) {
    if (user.status !== "active") {
      keys.inactive.push(user.primaryAddress);
      continue;
    }
    keys.primaries.push(user.primaryAddress);
    keys.logins.push(user.login);
    for (const address of user.alternateAddresses)
      if (address.endsWith(`@${WORKLOAD_DOMAINS.primary}`)) keys.alternates.push(address);
  }
  for (const group of directory.groups)
    if (group.status === "active" && group.addresses[0] !== undefined) keys.groups.push(group.addresses[0]);
  return {
    users: directory.users.length,
    groups: directory.groups.length,
    ldifPath: generated.path,
    snapshotPath,
    internalSnapshotPath,
    snapshotBytes: statSync(snapshotPath).size,
    keys,
    buildMs: Date.now() - started,
  };
}
