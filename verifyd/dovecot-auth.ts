/**
 * verifyd's Dovecot 2.3 userdb and passdb, answered over the dict protocol
 * from the snapshot in use (no sockets, no logging, no clock here). Dovecot's
 * dict passdb/userdb (dict-auth.conf.ext, see README.md) asks for
 * `shared/passdb/<user>` and `shared/userdb/<user>`, with `format = json`:
 * each value is one JSON object whose fields become passdb or userdb fields.
 * It iterates `shared/userdb/` for `doveadm -A` and `doveadm user '*'`.
 *
 * The dict name in Dovecot's URI chooses the answers:
 *   auth   a back-end: password hash, user name, uid, gid, home, mail
 *          location (with ALT= storage), quota_rule.
 *   proxy  a front-end IMAP/ManageSieve proxy: proxy=y host=<mail host, or a
 *          back-end chosen by a stable hash of the login>, plus the
 *          password hash when the snapshot has one (else nopassword=y and
 *          the back-end checks the password).
 *
 * Failure semantics: "not found" (N) only from a loaded, fresh snapshot.
 * No snapshot, a stale one, an address two entries claim, a user whose
 * password hash the snapshot does not hold (relay view, or a directory
 * without hashes): a dict failure, which Dovecot turns into a temporary
 * failure (passdb code=temp_fail, userdb "lookup failed"), never a wrong
 * password and never "user unknown". An inactive user is refused: passdb
 * answers nologin with a reason, userdb "not found".
 */
import { createHash } from "node:crypto";
import { splitAddress } from "../core/directory/address.js";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { DirectoryUser } from "../core/directory/model.js";
import type { Resolver } from "../core/directory/resolver.js";
import type { DictLookupResult } from "../core/protocols/dict-replies.js";

export interface DovecotAuthSettings {
  username: "login" | "address";
  uid: number;
  gid: number;
  home: string;
  mailLocation: string;
  proxyBackends: readonly string[];
}

export const PASSDB_PREFIX = "shared/passdb/";
export const USERDB_PREFIX = "shared/userdb/";
export const AUTH_DICT_NAMES = ["auth", "proxy"] as const;
export type AuthDictName = (typeof AUTH_DICT_NAMES)[number];

export function isAuthDictName(name: string): name is AuthDictName {
  return (AUTH_DICT_NAMES as readonly string[]).includes(name);
}

/** What a lookup was, for metrics and logs. */
export type AuthLookupKind = "passdb" | "userdb" | "other";

export interface AuthAnswer {
  kind: AuthLookupKind;
  result: DictLookupResult;
  /** Short label for metrics: found, not_found, inactive, stale, no_password, ambiguous, bad_key … */
  detail: string;
  /** Set when an operator should hear of it (logged at warn once per connection and kind). */
  problem?: string;
}

const notFound = (kind: AuthLookupKind, detail: string): AuthAnswer => ({
  kind,
  result: { kind: "not-found" },
  detail,
});

function failure(kind: AuthLookupKind, detail: string, error: string, problem?: string): AuthAnswer {
  return {
    kind,
    result: { kind: "failed", error },
    detail,
    ...(problem === undefined ? {} : { problem }),
  };
}

const found = (kind: AuthLookupKind, detail: string, value: UserdbFields | PassdbFields): AuthAnswer => ({
  kind,
  result: { kind: "found", values: [JSON.stringify(value)] },
  detail,
});

type UserMatch =
  | { kind: "user"; user: DirectoryUser }
  | { kind: "inactive"; user: DirectoryUser }
  | { kind: "unknown" }
  | { kind: "ambiguous" };

/** A login, or any address of a user (extension and alias domains as the resolver handles them). */
export function findUser(resolver: Resolver, name: string): UserMatch {
  if (!name.includes("@")) {
    const user = resolver.user(name);
    if (user === undefined) return { kind: "unknown" };
    return user.status === "active" ? { kind: "user", user } : { kind: "inactive", user };
  }
  const resolution = resolver.resolve(name);
  switch (resolution.kind) {
    case "mailbox":
    case "forward":
      return { kind: "user", user: resolution.user };
    case "inactive":
      return resolution.claim.kind === "user"
        ? { kind: "inactive", user: resolution.claim.user }
        : { kind: "unknown" };
    case "ambiguous":
      return { kind: "ambiguous" };
    case "group":
    case "unknown":
    case "not_ours":
    case "invalid":
      return { kind: "unknown" };
    default: {
      const unreachable: never = resolution;
      return unreachable;
    }
  }
}

function canonicalName(user: DirectoryUser, settings: DovecotAuthSettings): string {
  return settings.username === "address" ? user.primaryAddress : user.login;
}

/** A template cut once into literal text and the variables between it. */
type TemplatePart = { text: string } | { variable: "u" | "n" | "d" };

const parsedTemplates = new Map<string, { parts: TemplatePart[]; usesAddress: boolean }>();

/** Cuts a template at %u, %n, %d and %% (%% becomes text); any other % is text as written. */
function parseTemplate(template: string): { parts: TemplatePart[]; usesAddress: boolean } {
  const parts: TemplatePart[] = [];
  let usesAddress = false;
  let text = "";
  let index = 0;
  while (index < template.length) {
    const char = template[index] as string;
    const next = template[index + 1];
    if (char === "%" && (next === "u" || next === "n" || next === "d" || next === "%")) {
      if (next === "%") text += "%";
      else {
        if (text !== "") parts.push({ text });
        text = "";
        parts.push({ variable: next });
        if (next !== "u") usesAddress = true;
      }
      index += 2;
    } else {
      text += char;
      index += 1;
    }
  }
  if (text !== "") parts.push({ text });
  return { parts, usesAddress };
}

/**
 * Expands %u, %n, %d and %% (the schema allows nothing else). The template
 * (home, mail_location: one or two per configuration) is parsed once and
 * kept, as it is expanded on every userdb lookup.
 */
export function expandTemplate(template: string, user: DirectoryUser, username: string): string {
  let parsed = parsedTemplates.get(template);
  if (parsed === undefined) {
    parsed = parseTemplate(template);
    parsedTemplates.set(template, parsed);
  }
  const { local, domain } = parsed.usesAddress
    ? splitAddress(user.primaryAddress)
    : { local: "", domain: "" };
  let out = "";
  for (const part of parsed.parts) {
    if ("text" in part) out += part.text;
    else out += part.variable === "u" ? username : part.variable === "n" ? local : domain;
  }
  return out;
}

/**
 * quota_rule for a limit in bytes. Dovecot reads a bare number as bytes and
 * accepts the B suffix; the suffix keeps the unit visible in `doveadm user`.
 */
export function quotaRule(bytes: number): string {
  return `*:storage=${bytes}B`;
}

/** Fields Dovecot takes from a userdb answer (userdb_objects = userdb). */
export interface UserdbFields {
  user: string;
  uid?: string;
  gid?: string;
  home?: string;
  mail?: string;
  quota_rule?: string;
}

/** Fields Dovecot takes from a passdb answer (passdb_objects = passdb). */
interface PassdbFields {
  user: string;
  password?: string;
  nopassword?: "y";
  proxy?: "y";
  host?: string;
  nologin?: "y";
  reason?: string;
}

/** The userdb fields of an active user, or a problem when a needed part is missing. */
export function userdbFields(
  user: DirectoryUser,
  settings: DovecotAuthSettings,
): { fields: UserdbFields; problem?: string } {
  const username = canonicalName(user, settings);
  const fields: UserdbFields = { user: username };
  const uid = user.uidNumber ?? settings.uid;
  const gid = user.gidNumber ?? settings.gid;
  if (uid > 0) fields.uid = String(uid);
  if (gid > 0) fields.gid = String(gid);
  const home = user.home ?? (settings.home === "" ? "" : expandTemplate(settings.home, user, username));
  if (home !== "") fields.home = home;
  let problem: string | undefined;
  const location =
    user.mailLocation ??
    (settings.mailLocation === "" ? "" : expandTemplate(settings.mailLocation, user, username));
  if (user.alternateStorage !== undefined) {
    if (location === "") {
      problem =
        "user has alternate storage but neither the directory nor [verifyd.dovecot] mail_location gives a mail location; ALT left out";
    } else if (!/^(sdbox|mdbox):/.test(location)) {
      // Dovecot refuses the whole mail location otherwise ("alt_dir not supported by this driver").
      problem = "alternate storage needs an sdbox or mdbox mail location; ALT left out";
      if (user.mailLocation !== undefined) fields.mail = user.mailLocation;
    } else {
      fields.mail = `${location}:ALT=${user.alternateStorage}`;
    }
  } else if (user.mailLocation !== undefined) {
    fields.mail = user.mailLocation;
  }
  if (user.quotaBytes !== null) fields.quota_rule = quotaRule(user.quotaBytes);
  return problem === undefined ? { fields } : { fields, problem };
}

/** A stable choice among the back-ends: the same login always lands on the same host. */
export function chooseBackend(login: string, backends: readonly string[]): string | undefined {
  if (backends.length === 0) return undefined;
  const digest = createHash("sha256").update(login.toLowerCase()).digest();
  return backends[digest.readUInt32BE(0) % backends.length];
}

function passdbAnswer(user: DirectoryUser, dict: AuthDictName, settings: DovecotAuthSettings): AuthAnswer {
  const username = canonicalName(user, settings);
  if (dict === "proxy") {
    const host = user.mailHost ?? chooseBackend(user.login, settings.proxyBackends);
    if (host === undefined) {
      return failure(
        "passdb",
        "no_backend",
        "no back-end known for this user",
        "user has no mail host and [verifyd.dovecot] proxy_backends is empty",
      );
    }
    const value: PassdbFields = { user: username, proxy: "y", host };
    if (user.passwordHash !== undefined) value.password = user.passwordHash;
    else value.nopassword = "y";
    return found("passdb", "found", value);
  }
  if (user.passwordHash === undefined) {
    return failure("passdb", "no_password", "no password hash for this user in the snapshot");
  }
  return found("passdb", "found", { user: username, password: user.passwordHash });
}

/** Answers one dict lookup `key` from the snapshot, for the dict named in the peer's hello. */
export function answerAuthLookup(
  key: string,
  dict: AuthDictName,
  snapshot: CurrentSnapshot | null,
  settings: DovecotAuthSettings,
): AuthAnswer {
  const kind: AuthLookupKind = key.startsWith(PASSDB_PREFIX)
    ? "passdb"
    : key.startsWith(USERDB_PREFIX)
      ? "userdb"
      : "other";
  if (kind === "other") {
    return failure(
      "other",
      "bad_key",
      "unknown key",
      "key outside shared/passdb/ and shared/userdb/: check the key names in dict-auth.conf.ext",
    );
  }
  if (snapshot === null) return failure(kind, "no_snapshot", "directory snapshot not loaded");
  if (!snapshot.fresh) return failure(kind, "stale", "directory snapshot too old");
  const name = lookupName(key);
  // userdb/<user>/<more> would be a per-user sub-key, which this userdb does not define.
  if (name === null) return notFound(kind, "bad_name");
  return answerForMatch(kind, findUser(snapshot.resolver, name), dict, settings);
}

/** The user name in a passdb/userdb key; null for another key or a sub-key. */
export function lookupName(key: string): string | null {
  const prefix = key.startsWith(PASSDB_PREFIX)
    ? PASSDB_PREFIX
    : key.startsWith(USERDB_PREFIX)
      ? USERDB_PREFIX
      : null;
  if (prefix === null) return null;
  const name = key.slice(prefix.length);
  return name === "" || name.includes("/") ? null : name;
}

/** The answer for a user LDAP knows but the snapshot does not yet (live lookup). */
export function answerFromLiveUser(
  kind: AuthLookupKind,
  user: DirectoryUser,
  dict: AuthDictName,
  settings: DovecotAuthSettings,
): AuthAnswer {
  const match: UserMatch = user.status === "active" ? { kind: "user", user } : { kind: "inactive", user };
  const answer = answerForMatch(kind, match, dict, settings);
  return { ...answer, detail: `live_${answer.detail}` };
}

function answerForMatch(
  kind: AuthLookupKind,
  match: UserMatch,
  dict: AuthDictName,
  settings: DovecotAuthSettings,
): AuthAnswer {
  switch (match.kind) {
    case "unknown":
      return notFound(kind, "not_found");
    case "ambiguous":
      return failure(
        kind,
        "ambiguous",
        "address claimed by more than one directory entry",
        "address claimed by more than one directory entry",
      );
    case "inactive":
      return kind === "passdb"
        ? found("passdb", "inactive", {
            user: canonicalName(match.user, settings),
            nologin: "y",
            reason: "Account disabled.",
          })
        : notFound(kind, "inactive");
    case "user": {
      if (kind === "passdb") return passdbAnswer(match.user, dict, settings);
      if (dict === "proxy") return notFound(kind, "proxy_has_no_userdb");
      const { fields, problem } = userdbFields(match.user, settings);
      const answer = found(kind, "found", fields);
      return problem === undefined ? answer : { ...answer, problem };
    }
    default: {
      const unreachable: never = match;
      return unreachable;
    }
  }
}

export type AuthIteration =
  | { ok: true; keys: string[] }
  | { ok: false; error: string; detail: "no_snapshot" | "stale" };

/**
 * The keys of an iteration: active users under shared/userdb/ (direct
 * children only, as Dovecot's own dict servers answer without RECURSE; the
 * auth process ignores the values). Any other path has no rows.
 */
export function iterateAuthKeys(
  path: string,
  maxRows: number,
  snapshot: CurrentSnapshot | null,
  settings: DovecotAuthSettings,
): AuthIteration {
  if (snapshot === null) return { ok: false, error: "directory snapshot not loaded", detail: "no_snapshot" };
  if (!snapshot.fresh) return { ok: false, error: "directory snapshot too old", detail: "stale" };
  if (path !== USERDB_PREFIX) return { ok: true, keys: [] };
  const keys: string[] = [];
  for (const user of snapshot.resolver.users()) {
    if (user.status !== "active") continue;
    keys.push(`${USERDB_PREFIX}${canonicalName(user, settings)}`);
    if (maxRows > 0 && keys.length >= maxRows) break;
  }
  return { ok: true, keys };
}
