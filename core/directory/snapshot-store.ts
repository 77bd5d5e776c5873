/**
 * The directory snapshot on disk: one SQLite file holding a Directory plus a
 * version, a content hash, the creation time and a per-source summary.
 *
 * Writers build the new file beside the old one, fsync it, rename it over the
 * old one and fsync the directory, so a reader opens either the complete old
 * snapshot or the complete new one, never half of either. Readers open the
 * file read-only and load it whole into memory (the hot path never touches
 * SQLite).
 */
import { createHash } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Directory, DirectoryGroup, DirectoryUser, DomainSet } from "./model.js";

export const snapshotFormat = 1;

export interface SourceSummary {
  name: string;
  users: number;
  groups: number;
  skipped: number;
}

export interface SnapshotMeta {
  format: number;
  version: number;
  contentHash: string;
  createdAt: string;
  /** "internal" carries password hashes and homes; "relay" never does. */
  view: "internal" | "relay";
  sources: SourceSummary[];
  /**
   * The source's own change marker at the time of the snapshot (the greatest
   * LDAP modifyTimestamp seen), from which the next incremental sync starts.
   */
  watermark?: string;
  /**
   * Fingerprint of everything else the snapshot was built from (legacy file
   * contents, domains, mapping, precedence): with an unchanged watermark it
   * lets an incremental sync finish without rebuilding anything.
   */
  inputs?: string;
}

export interface Snapshot {
  meta: SnapshotMeta;
  directory: Directory;
}

const byKey =
  <T>(key: (item: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * Canonical JSON of a directory: entries sorted by key and fields in a fixed
 * order, so the hash ignores source order and how an object was built.
 */
export function canonicalDirectory(directory: Directory): string {
  const users = [...directory.users].sort(byKey((u: DirectoryUser) => u.login)).map(canonicalUser);
  const groups = [...directory.groups].sort(byKey((g: DirectoryGroup) => g.name)).map(canonicalGroup);
  const { primary, aliasDomains, virtualDomains } = directory.domains;
  return JSON.stringify({ domains: [primary, aliasDomains, virtualDomains], users, groups });
}

function canonicalUser(u: DirectoryUser): unknown[] {
  return [
    u.login,
    u.source,
    u.primaryAddress,
    u.alternateAddresses,
    u.forwardingAddresses,
    u.quotaBytes,
    u.status,
    u.category ?? null,
    u.home ?? null,
    u.uidNumber ?? null,
    u.gidNumber ?? null,
    u.mailLocation ?? null,
    u.alternateStorage ?? null,
    u.mailHost ?? null,
    u.passwordHash ?? null,
  ];
}

function canonicalGroup(g: DirectoryGroup): unknown[] {
  const posting = g.posting === null ? null : [g.posting.logins, g.posting.groups];
  return [
    g.name,
    g.source,
    g.addresses,
    g.memberLogins,
    g.memberGroups,
    g.memberAddresses,
    posting,
    g.status,
  ];
}

export function contentHash(directory: Directory): string {
  // The bytes of canonicalDirectory, fed piece by piece: a 100,000-user
  // directory would otherwise be one string of tens of megabytes (and its
  // intermediate arrays) just to be hashed, doubling a daemon's peak memory.
  const hash = createHash("sha256");
  const { primary, aliasDomains, virtualDomains } = directory.domains;
  hash.update(`{"domains":${JSON.stringify([primary, aliasDomains, virtualDomains])},"users":[`);
  const users = [...directory.users].sort(byKey((u: DirectoryUser) => u.login));
  users.forEach((user, index) => {
    hash.update(`${index === 0 ? "" : ","}${JSON.stringify(canonicalUser(user))}`);
  });
  hash.update('],"groups":[');
  const groups = [...directory.groups].sort(byKey((g: DirectoryGroup) => g.name));
  groups.forEach((group, index) => {
    hash.update(`${index === 0 ? "" : ","}${JSON.stringify(canonicalGroup(group))}`);
  });
  hash.update("]}");
  return `sha256:${hash.digest("hex")}`;
}

/**
 * What relays get: addresses, status, forwards, quota, groups and mail host
 * (for IMAP proxies); no password hashes, homes, uid/gid or storage paths.
 */
export function relayView(directory: Directory): Directory {
  return {
    domains: directory.domains,
    groups: directory.groups,
    users: directory.users.map((user) => {
      const { passwordHash, home, uidNumber, gidNumber, mailLocation, alternateStorage, ...kept } = user;
      return kept;
    }),
  };
}

const schema = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  login TEXT PRIMARY KEY, source TEXT NOT NULL, primary_address TEXT NOT NULL,
  alternate_addresses TEXT NOT NULL, forwarding_addresses TEXT NOT NULL,
  quota_bytes INTEGER, status TEXT NOT NULL, category TEXT, home TEXT,
  uid_number INTEGER, gid_number INTEGER, mail_location TEXT, alternate_storage TEXT,
  mail_host TEXT, password_hash TEXT
);
CREATE TABLE groups (
  name TEXT PRIMARY KEY, source TEXT NOT NULL, addresses TEXT NOT NULL,
  member_logins TEXT NOT NULL, member_groups TEXT NOT NULL, member_addresses TEXT NOT NULL,
  posting TEXT, status TEXT NOT NULL
);`;

export interface WriteOptions {
  version: number;
  view: SnapshotMeta["view"];
  sources: SourceSummary[];
  watermark?: string;
  inputs?: string;
  now?: Date;
}

/** Writes a snapshot atomically to `path`; returns its metadata. */
export function writeSnapshot(path: string, directory: Directory, options: WriteOptions): SnapshotMeta {
  const content = options.view === "relay" ? relayView(directory) : directory;
  const meta: SnapshotMeta = {
    format: snapshotFormat,
    version: options.version,
    contentHash: contentHash(content),
    createdAt: (options.now ?? new Date()).toISOString(),
    view: options.view,
    sources: options.sources,
    ...(options.watermark === undefined ? {} : { watermark: options.watermark }),
    ...(options.inputs === undefined ? {} : { inputs: options.inputs }),
  };
  const temporary = `${path}.tmp-${process.pid}`;
  rmSync(temporary, { force: true });
  const db = new Database(temporary);
  try {
    db.pragma("journal_mode = OFF");
    db.pragma("synchronous = OFF");
    db.exec(schema);
    const insertMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    const insertUser = db.prepare(
      `INSERT INTO users VALUES (@login, @source, @primaryAddress, @alternate, @forwarding, @quotaBytes, @status,
       @category, @home, @uidNumber, @gidNumber, @mailLocation, @alternateStorage, @mailHost, @passwordHash)`,
    );
    const insertGroup = db.prepare(
      "INSERT INTO groups VALUES (@name, @source, @addresses, @memberLogins, @memberGroups, @memberAddresses, @posting, @status)",
    );
    db.transaction(() => {
      insertMeta.run("meta", JSON.stringify(meta));
      insertMeta.run("domains", JSON.stringify(content.domains));
      for (const user of content.users) insertUser.run(userRow(user));
      for (const group of content.groups) {
        insertGroup.run({
          name: group.name,
          source: group.source,
          addresses: JSON.stringify(group.addresses),
          memberLogins: JSON.stringify(group.memberLogins),
          memberGroups: JSON.stringify(group.memberGroups),
          memberAddresses: JSON.stringify(group.memberAddresses),
          posting: group.posting === null ? null : JSON.stringify(group.posting),
          status: group.status,
        });
      }
    })();
  } finally {
    db.close();
  }
  // The internal view may hold password hashes: owner and group only (the
  // group is verifyd's on the back-ends); the relay view has none.
  chmodSync(temporary, options.view === "internal" ? 0o640 : 0o644);
  fsyncPath(temporary);
  renameSync(temporary, path);
  fsyncPath(dirname(path));
  return meta;
}

function userRow(user: DirectoryUser): Record<string, unknown> {
  return {
    login: user.login,
    source: user.source,
    primaryAddress: user.primaryAddress,
    alternate: JSON.stringify(user.alternateAddresses),
    forwarding: JSON.stringify(user.forwardingAddresses),
    quotaBytes: user.quotaBytes,
    status: user.status,
    category: user.category ?? null,
    home: user.home ?? null,
    uidNumber: user.uidNumber ?? null,
    gidNumber: user.gidNumber ?? null,
    mailLocation: user.mailLocation ?? null,
    alternateStorage: user.alternateStorage ?? null,
    mailHost: user.mailHost ?? null,
    passwordHash: user.passwordHash ?? null,
  };
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface UserRecord {
  login: string;
  source: string;
  primary_address: string;
  alternate_addresses: string;
  forwarding_addresses: string;
  quota_bytes: number | null;
  status: string;
  category: string | null;
  home: string | null;
  uid_number: number | null;
  gid_number: number | null;
  mail_location: string | null;
  alternate_storage: string | null;
  mail_host: string | null;
  password_hash: string | null;
}

interface GroupRecord {
  name: string;
  source: string;
  addresses: string;
  member_logins: string;
  member_groups: string;
  member_addresses: string;
  posting: string | null;
  status: string;
}

/** Reads only the metadata (cheap: used to decide whether a reload is needed). */
export function readSnapshotMeta(path: string): SnapshotMeta | null {
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'meta'").get() as
      | { value: string }
      | undefined;
    return row === undefined ? null : (JSON.parse(row.value) as SnapshotMeta);
  } finally {
    db.close();
  }
}

/** Loads a whole snapshot into memory and checks its content hash. */
export function readSnapshot(path: string): Snapshot {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const metaRow = db.prepare("SELECT value FROM meta WHERE key = 'meta'").get() as
      | { value: string }
      | undefined;
    const domainsRow = db.prepare("SELECT value FROM meta WHERE key = 'domains'").get() as
      | { value: string }
      | undefined;
    if (metaRow === undefined || domainsRow === undefined)
      throw new Error(`${path}: not an emailng snapshot`);
    const meta = JSON.parse(metaRow.value) as SnapshotMeta;
    if (meta.format !== snapshotFormat)
      throw new Error(`${path}: snapshot format ${meta.format} is not supported`);
    // Row by row: all rows at once would hold every record twice while converting.
    // Values repeated across rows (category, mail host, member logins) share
    // one string instead of one copy per row: a tenth of a 100,000-user heap.
    const strings = new Map<string, string>();
    const intern = (text: string): string => {
      const known = strings.get(text);
      if (known !== undefined) return known;
      strings.set(text, text);
      return text;
    };
    const users: DirectoryUser[] = [];
    for (const row of db.prepare("SELECT * FROM users").iterate() as IterableIterator<UserRecord>) {
      users.push(userFromRecord(row, intern));
    }
    const groups: DirectoryGroup[] = [];
    for (const row of db.prepare("SELECT * FROM groups").iterate() as IterableIterator<GroupRecord>) {
      groups.push(groupFromRecord(row, intern));
    }
    strings.clear();
    const directory: Directory = { domains: JSON.parse(domainsRow.value) as DomainSet, users, groups };
    const actual = contentHash(directory);
    if (actual !== meta.contentHash) {
      throw new Error(`${path}: content hash ${actual} does not match the recorded ${meta.contentHash}`);
    }
    return { meta, directory };
  } finally {
    db.close();
  }
}

function userFromRecord(row: UserRecord, intern: (text: string) => string): DirectoryUser {
  const user: DirectoryUser = {
    login: intern(row.login),
    source: row.source,
    primaryAddress: row.primary_address,
    alternateAddresses: JSON.parse(row.alternate_addresses) as string[],
    forwardingAddresses: JSON.parse(row.forwarding_addresses) as string[],
    quotaBytes: row.quota_bytes,
    status: row.status === "inactive" ? "inactive" : "active",
  };
  // Optional fields are set only when present, as the sources build them.
  if (row.category !== null) user.category = intern(row.category);
  if (row.home !== null) user.home = row.home;
  if (row.uid_number !== null) user.uidNumber = row.uid_number;
  if (row.gid_number !== null) user.gidNumber = row.gid_number;
  if (row.mail_location !== null) user.mailLocation = row.mail_location;
  if (row.alternate_storage !== null) user.alternateStorage = row.alternate_storage;
  if (row.mail_host !== null) user.mailHost = intern(row.mail_host);
  if (row.password_hash !== null) user.passwordHash = row.password_hash;
  return user;
}

function groupFromRecord(row: GroupRecord, intern: (text: string) => string): DirectoryGroup {
  return {
    name: intern(row.name),
    source: row.source,
    addresses: JSON.parse(row.addresses) as string[],
    memberLogins: (JSON.parse(row.member_logins) as string[]).map(intern),
    memberGroups: (JSON.parse(row.member_groups) as string[]).map(intern),
    memberAddresses: JSON.parse(row.member_addresses) as string[],
    posting: row.posting === null ? null : (JSON.parse(row.posting) as DirectoryGroup["posting"]),
    status: row.status === "inactive" ? "inactive" : "active",
  };
}

/**
 * Records that the sources were read again and gave the same content: the
 * meta row alone is rewritten (createdAt, and the sync's watermark and
 * inputs), in one SQLite transaction, so readers see the old or the new row
 * and never a mix; the directory tables and the content hash are untouched.
 * `createdAt` therefore means "last confirmed by the sources", which is what
 * freshness (snapshot.max_age) is measured from.
 */
export function touchSnapshot(
  path: string,
  update: { createdAt: Date; watermark?: string; inputs?: string },
): SnapshotMeta {
  const db = new Database(path, { fileMustExist: true });
  try {
    return db.transaction(() => {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'meta'").get() as
        | { value: string }
        | undefined;
      if (row === undefined) throw new Error(`${path}: not an emailng snapshot`);
      const meta = JSON.parse(row.value) as SnapshotMeta;
      const next: SnapshotMeta = {
        ...meta,
        createdAt: update.createdAt.toISOString(),
        ...(update.watermark === undefined ? {} : { watermark: update.watermark }),
        ...(update.inputs === undefined ? {} : { inputs: update.inputs }),
      };
      db.prepare("UPDATE meta SET value = ? WHERE key = 'meta'").run(JSON.stringify(next));
      return next;
    })();
  } finally {
    db.close();
  }
}
