/**
 * Exports of the directory for sites that still want plain files: three
 * Postfix lookup tables (relay_recipients, virtual_aliases, virtual_domains)
 * and a Dovecot passwd-file. What each address means is asked of the
 * resolver, never worked out here, so a site using these files gets the same
 * answers as one asking verifyd over socketmap.
 *
 * Every file is replaced atomically: written under a temporary name in the
 * same directory, fsynced, renamed over the old one, and the directory
 * fsynced. With a map type set, postmap builds the indexed file from the
 * temporary source, so the database is complete before it is renamed into
 * place; Postfix daemons notice the new inode and reopen it. All three maps
 * are prepared before any is renamed, so a postmap failure leaves every old
 * map in place.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";
import { normaliseDomain, splitAddress } from "../core/directory/address.js";
import type { Directory, DirectoryUser } from "../core/directory/model.js";
import type { Resolver } from "../core/directory/resolver.js";
import { contentHash } from "../core/directory/snapshot-store.js";

const execFileAsync = promisify(execFile);

export type PostfixMapType = "" | "hash" | "btree" | "cdb" | "lmdb";

export type MapName = "relay_recipients" | "virtual_aliases" | "virtual_domains";

export interface ExportOptions {
  /** Where the maps go (config.sync.export.directory). */
  directory: string;
  /** "" writes text only (for texthash:); otherwise postmap builds type:FILE. */
  mapType: PostfixMapType;
  postmapCommand: string;
  /** Handed to postmap as -c (it reads main.cf there); Postfix's default when absent. */
  postfixConfigDirectory?: string;
  /** Named in the header comment, to tell which snapshot a file came from. */
  snapshotVersion?: number;
  /** Per postmap run; default 60 s. */
  postmapTimeoutMs?: number;
}

export interface ExportProblem {
  /** The address, domain or login concerned. */
  subject: string;
  message: string;
}

export interface MapEntry {
  key: string;
  value: string;
}

export interface PostfixMaps {
  relayRecipients: MapEntry[];
  virtualAliases: MapEntry[];
  virtualDomains: MapEntry[];
  problems: ExportProblem[];
}

export interface ExportedMap {
  name: MapName;
  /** The text source. */
  path: string;
  /** The indexed file postmap built, or null for mapType "". */
  databasePath: string | null;
  entries: number;
}

export interface ExportResult {
  maps: ExportedMap[];
  problems: ExportProblem[];
  contentHash: string;
}

/** Postfix's default virtual_alias_expansion_limit; longer expansions are reported, still exported. */
const POSTFIX_EXPANSION_LIMIT = 1000;

const DATABASE_SUFFIX: Record<Exclude<PostfixMapType, "">, string> = {
  hash: ".db",
  btree: ".db",
  cdb: ".cdb",
  lmdb: ".lmdb",
};

/** Characters that would change the meaning of a map line: white space, commas, controls. */
const UNSAFE_MAP_TEXT = /[\s,\x00-\x1f\x7f]/;

const byKey = (a: MapEntry, b: MapEntry): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * The three tables as entries, sorted by key. An address is listed when the
 * resolver calls it a mailbox, a forward or a group; inactive and ambiguous
 * addresses are left out (ambiguous ones reported), and so is a group whose
 * expansion hit a limit or came out empty, since Postfix cannot be told
 * "temporarily unavailable" by a static table.
 */
export function buildPostfixMaps(directory: Directory, resolver: Resolver): PostfixMaps {
  const primary = normaliseDomain(directory.domains.primary);
  const aliasDomains = directory.domains.aliasDomains.map(normaliseDomain);
  const candidates = new Set<string>();
  for (const [address] of resolver.claimedAddresses()) {
    candidates.add(address);
    // Alias-domain forms exist only by rewriting; the resolver decides which hold.
    const { local, domain } = splitAddress(address);
    if (domain === primary) for (const alias of aliasDomains) candidates.add(`${local}@${alias}`);
  }

  const maps: PostfixMaps = { relayRecipients: [], virtualAliases: [], virtualDomains: [], problems: [] };
  const deliverable = (address: string, targets: string[]): void => {
    if (UNSAFE_MAP_TEXT.test(address) || address.startsWith("#")) {
      maps.problems.push({ subject: address, message: "cannot be written as a Postfix map key; left out" });
      return;
    }
    const unsafe = targets.find((target) => UNSAFE_MAP_TEXT.test(target));
    if (unsafe !== undefined) {
      maps.problems.push({ subject: address, message: `target "${unsafe}" cannot be written; left out` });
      return;
    }
    maps.relayRecipients.push({ key: address, value: "OK" });
    if (targets.length === 1 && targets[0] === address) return;
    if (targets.length > POSTFIX_EXPANSION_LIMIT) {
      maps.problems.push({
        subject: address,
        message: `expands to ${targets.length} addresses, above Postfix's default virtual_alias_expansion_limit of ${POSTFIX_EXPANSION_LIMIT}`,
      });
    }
    maps.virtualAliases.push({ key: address, value: targets.join(",") });
  };

  for (const address of candidates) {
    const resolution = resolver.resolve(address);
    switch (resolution.kind) {
      case "unknown":
      case "inactive":
        break;
      case "invalid":
      case "not_ours":
        maps.problems.push({ subject: address, message: "claimed, but not an address of a served domain" });
        break;
      case "ambiguous":
        // Reported once, under the claimed address, not again for its alias-domain forms.
        if (resolution.key === address) {
          maps.problems.push({
            subject: address,
            message: `claimed by ${resolution.claims.length} entries; left out`,
          });
        }
        break;
      case "mailbox":
        deliverable(address, [resolution.user.primaryAddress]);
        break;
      case "forward": {
        const copy = resolution.keepCopy ? [resolution.user.primaryAddress] : [];
        deliverable(address, [...copy, ...resolution.targets]);
        break;
      }
      case "group": {
        const { expansion } = resolution;
        if (expansion.limitExceeded !== null) {
          maps.problems.push({
            subject: address,
            message: `group ${resolution.group.name} exceeds the ${expansion.limitExceeded} limit; left out`,
          });
          break;
        }
        const targets = [
          ...expansion.users.map((user) => user.primaryAddress),
          // Bare names from legacy alias files mean the primary domain.
          ...expansion.externalAddresses.map((target) =>
            target.includes("@") ? target : `${target}@${primary}`,
          ),
        ];
        if (targets.length === 0) {
          maps.problems.push({
            subject: address,
            message: `group ${resolution.group.name} has no active members; left out`,
          });
          break;
        }
        deliverable(address, targets);
        break;
      }
      default: {
        const unreachable: never = resolution;
        throw new Error(`unhandled resolution ${JSON.stringify(unreachable)}`);
      }
    }
  }

  const domains = new Set([...aliasDomains, ...directory.domains.virtualDomains.map(normaliseDomain)]);
  domains.delete(primary);
  for (const domain of domains) maps.virtualDomains.push({ key: domain, value: "OK" });
  maps.relayRecipients.sort(byKey);
  maps.virtualAliases.sort(byKey);
  maps.virtualDomains.sort(byKey);
  return maps;
}

function header(what: string, hash: string, snapshotVersion: number | undefined): string {
  const version = snapshotVersion === undefined ? "" : `snapshot version ${snapshotVersion}, `;
  return (
    `# ${what}: generated by emailng sync-agent; do not edit, the next export replaces it.\n` +
    `# From ${version}directory content ${hash}.\n`
  );
}

/** A temporary name beside `path`, unique per process and call. */
function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Creates `path` (which must not exist) with exactly `mode` (umask aside),
 * owned like `owner` when given, holding `text`, and fsyncs it.
 */
function writeTemporary(
  path: string,
  text: string,
  mode: number,
  owner?: { uid: number; gid: number },
): void {
  const fd = openSync(path, "wx", mode);
  try {
    fchmodSync(fd, mode);
    if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface PreparedFile {
  temporary: string;
  final: string;
}

/** Renames prepared files into place (databases before their sources) and fsyncs the directories. */
function commit(files: PreparedFile[]): void {
  const directories = new Set<string>();
  for (const file of files) {
    renameSync(file.temporary, file.final);
    directories.add(dirname(file.final));
  }
  for (const directory of directories) fsyncPath(directory);
}

/** Writes the three Postfix tables into options.directory; see the module comment. */
export async function exportPostfixMaps(
  directory: Directory,
  resolver: Resolver,
  options: ExportOptions,
): Promise<ExportResult> {
  const maps = buildPostfixMaps(directory, resolver);
  const hash = contentHash(directory);
  const tables: Array<[MapName, MapEntry[]]> = [
    ["relay_recipients", maps.relayRecipients],
    ["virtual_aliases", maps.virtualAliases],
    ["virtual_domains", maps.virtualDomains],
  ];
  // In commit order: each database before its source, so Postfix never sees
  // a source newer than its database (it would warn and keep the old one).
  const prepared: PreparedFile[] = [];
  const temporaries: string[] = [];
  const exported: ExportedMap[] = [];
  try {
    for (const [name, entries] of tables) {
      const final = join(options.directory, name);
      const temporary = temporaryPath(final);
      const lines = entries.map((entry) => `${entry.key} ${entry.value}\n`).join("");
      temporaries.push(temporary);
      writeTemporary(temporary, header(name, hash, options.snapshotVersion) + lines, 0o644);
      let databasePath: string | null = null;
      if (options.mapType !== "") {
        const suffix = DATABASE_SUFFIX[options.mapType];
        // Listed before postmap runs, so a half-built database is removed too.
        temporaries.push(temporary + suffix);
        await runPostmap(options, `${options.mapType}:${temporary}`);
        fsyncPath(temporary + suffix);
        prepared.push({ temporary: temporary + suffix, final: final + suffix });
        databasePath = final + suffix;
      }
      prepared.push({ temporary, final });
      exported.push({ name, path: final, databasePath, entries: entries.length });
    }
    commit(prepared);
  } catch (error) {
    for (const temporary of temporaries) rmSync(temporary, { force: true });
    throw error;
  }
  return { maps: exported, problems: maps.problems, contentHash: hash };
}

async function runPostmap(options: ExportOptions, map: string): Promise<void> {
  const args = options.postfixConfigDirectory === undefined ? [] : ["-c", options.postfixConfigDirectory];
  try {
    await execFileAsync(options.postmapCommand, [...args, map], {
      timeout: options.postmapTimeoutMs ?? 60_000,
      maxBuffer: 1024 * 1024,
    });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    const detail = failure.stderr?.trim() || failure.message;
    throw new Error(`${options.postmapCommand} ${map} failed: ${detail}`, { cause: error });
  }
}

export interface PasswdExportOptions {
  /**
   * The site's mail location, used as the base when a user has alternate
   * storage but no mail location of their own (userdb_mail then carries both).
   */
  defaultMailLocation?: string;
  /** Which name Dovecot looks users up by (auth_username_format); default the login. */
  username?: "login" | "primaryAddress";
  snapshotVersion?: number;
}

export interface PasswdExportResult {
  path: string;
  /** Lines written. */
  users: number;
  /** Users left out or fields dropped, with the reason. */
  problems: ExportProblem[];
}

/** Neither ':' (field separator) nor controls (line breaks) may appear in a positional field. */
const UNSAFE_FIELD = /[:\x00-\x1f\x7f]/;
/** Extra fields are space-separated key=value pairs; a colon is fine there (joined back by Dovecot). */
const UNSAFE_EXTRA = /[\s\x00-\x1f\x7f]/;

/**
 * One passwd-file line, `user:password:uid:gid:(gecos):home:(shell):extra`,
 * or the reason it cannot be written. A user without a password hash gets an
 * empty password field, which Dovecot never matches (checked against 2.3.19:
 * empty and any other password both fail; only the `nopassword` field, which
 * we never write, would allow any), plus `nologin` so that stays true even
 * for a passdb that treats an empty field differently. The line still
 * matters: it is the userdb entry LMTP delivery needs.
 */
export function passwdLine(
  user: DirectoryUser,
  options: PasswdExportOptions = {},
): { line: string } | { problem: string } {
  const name = options.username === "primaryAddress" ? user.primaryAddress : user.login;
  if (name === "" || name.startsWith("#") || UNSAFE_FIELD.test(name) || /\s/.test(name))
    return { problem: `user name "${name}" cannot be written to a passwd-file` };
  const password = user.passwordHash ?? "";
  if (UNSAFE_FIELD.test(password) || /\s/.test(password))
    return { problem: "password hash contains ':', white space or a control character" };
  const home = user.home ?? "";
  if (UNSAFE_FIELD.test(home)) return { problem: `home "${home}" contains ':' or a control character` };
  for (const id of [user.uidNumber, user.gidNumber]) {
    if (id !== undefined && !(Number.isSafeInteger(id) && id >= 0))
      return { problem: `uid/gid ${id} is not a non-negative integer` };
  }
  const extra: string[] = [];
  let mail = user.mailLocation;
  if (user.alternateStorage !== undefined) {
    const base = mail ?? options.defaultMailLocation;
    if (base === undefined)
      return { problem: "has alternate storage but no mail location, and no default mail location is set" };
    mail = `${base}:ALT=${user.alternateStorage}`;
  }
  if (mail !== undefined) {
    if (UNSAFE_EXTRA.test(mail))
      return { problem: `mail location "${mail}" contains white space or controls` };
    extra.push(`userdb_mail=${mail}`);
  }
  // Dovecot reads bytes=0 as "no limit"; null leaves the site's default rule.
  if (user.quotaBytes !== null) {
    if (!(Number.isSafeInteger(user.quotaBytes) && user.quotaBytes >= 0))
      return { problem: `quota ${user.quotaBytes} is not a byte count` };
    extra.push(`userdb_quota_rule=*:bytes=${user.quotaBytes}`);
  }
  if (user.passwordHash === undefined) extra.push("nologin");
  const uid = user.uidNumber ?? "";
  const gid = user.gidNumber ?? "";
  return { line: `${name}:${password}:${uid}:${gid}::${home}::${extra.join(" ")}` };
}

/**
 * Writes the Dovecot passwd-file: one line per active user, mode 0640,
 * replaced atomically. The existing file's owner and group are kept (an
 * administrator gives it to Dovecot's group once); when they cannot be kept
 * the export fails and the old file stays, rather than leaving Dovecot a
 * file it cannot read.
 */
export function exportPasswdFile(
  directory: Directory,
  path: string,
  options: PasswdExportOptions = {},
): PasswdExportResult {
  const problems: ExportProblem[] = [];
  const lines: string[] = [];
  const seen = new Set<string>();
  const users = directory.users
    .filter((user) => user.status === "active")
    .sort((a, b) => (a.login < b.login ? -1 : a.login > b.login ? 1 : 0));
  for (const user of users) {
    const result = passwdLine(user, options);
    if ("problem" in result) {
      problems.push({ subject: user.login, message: `${result.problem}; left out` });
      continue;
    }
    const name = result.line.slice(0, result.line.indexOf(":"));
    if (seen.has(name)) {
      problems.push({ subject: user.login, message: `user name ${name} is already taken; left out` });
      continue;
    }
    seen.add(name);
    lines.push(`${result.line}\n`);
  }
  let owner: { uid: number; gid: number } | undefined;
  try {
    const info = statSync(path);
    owner = { uid: info.uid, gid: info.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const temporary = temporaryPath(path);
  const text =
    header("Dovecot passwd-file", contentHash(directory), options.snapshotVersion) + lines.join("");
  try {
    writeTemporary(temporary, text, 0o640, owner);
    commit([{ temporary, final: path }]);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { path, users: lines.length, problems };
}
