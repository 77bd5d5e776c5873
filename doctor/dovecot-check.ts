/**
 * Reads `doveconf -n` (and the dict files its passdb/userdb blocks name)
 * and checks that Dovecot reaches emailng where emailng listens: the
 * quota_clone dict (2.3 `quota_clone_dict = proxy:<socket>:<name>`, 2.4
 * `dict_proxy_socket_path` / `dict_proxy_name`) is quotad's feed with its
 * dict_name, and a dict passdb/userdb (2.3) uses verifyd's dict socket with
 * the "auth" or "proxy" dict. Pure: texts and endpoints are passed in.
 */
import { describeAddress, type Endpoint } from "./endpoints.js";
import { type Finding, fail, ok, warn } from "./findings.js";

export interface ProxyDictReference {
  where: string;
  path: string;
  name: string;
}

/** quota_clone targets in doveconf output, in 2.3 and 2.4 syntax. */
export function quotaCloneReferences(doveconf: string): ProxyDictReference[] {
  const references: ProxyDictReference[] = [];
  for (const match of doveconf.matchAll(/^\s*quota_clone_dict\s*=\s*proxy:([^\s]*):([^\s:]+)\s*$/gm)) {
    references.push({ where: "quota_clone_dict", path: match[1] ?? "", name: match[2] ?? "" });
  }
  const path = /^\s*dict_proxy_socket_path\s*=\s*(\S+)\s*$/m.exec(doveconf)?.[1];
  if (path !== undefined && /quota_clone\s*\{/.test(doveconf)) {
    const name = /^\s*dict_proxy_name\s*=\s*(\S+)\s*$/m.exec(doveconf)?.[1] ?? "";
    references.push({ where: "quota_clone { dict proxy }", path, name });
  }
  return references;
}

/** The args files of passdb/userdb blocks with driver = dict. */
export function dictAuthFiles(doveconf: string): string[] {
  const files = new Set<string>();
  for (const block of doveconf.matchAll(/^\s*(?:passdb|userdb)\s*\{([^}]*)\}/gm)) {
    const body = block[1] ?? "";
    if (!/^\s*driver\s*=\s*dict\s*$/m.test(body)) continue;
    const args = /^\s*args\s*=\s*(\S+)\s*$/m.exec(body)?.[1];
    if (args !== undefined) files.add(args);
  }
  return [...files];
}

/** `uri = proxy:<socket>:<name>` of a dict-auth file. */
export function dictFileReference(file: string, text: string): ProxyDictReference | null {
  const match = /^\s*uri\s*=\s*proxy:(\S*):([^\s:]+)\s*$/m.exec(text);
  return match === null ? null : { where: file, path: match[1] ?? "", name: match[2] ?? "" };
}

const unixPaths = (endpoints: readonly Endpoint[], kind: Endpoint["kind"]) =>
  endpoints.flatMap((endpoint) =>
    endpoint.kind === kind && endpoint.address.kind === "unix" ? [endpoint.address.path] : [],
  );

export interface DovecotFacts {
  doveconf: string;
  /** Each dict-auth file named by a passdb/userdb block, with its text (null when unreadable). */
  authFiles: ReadonlyMap<string, string | null>;
  /** [quotad.feed] dict_name; "" accepts any. */
  feedDictName: string;
}

export function judgeDovecot(facts: DovecotFacts, endpoints: readonly Endpoint[]): Finding[] {
  const check = "dovecot";
  const findings: Finding[] = [];
  const feeds = unixPaths(endpoints, "quotad-feed");
  if (endpoints.some((endpoint) => endpoint.kind === "quotad-feed")) {
    const example = feeds[0] ?? "/run/emailng/quotad-dict.sock";
    const name = facts.feedDictName === "" ? "quotaclone" : facts.feedDictName;
    const references = quotaCloneReferences(facts.doveconf);
    const good = references.filter(
      (reference) =>
        feeds.includes(reference.path) &&
        (facts.feedDictName === "" || reference.name === facts.feedDictName),
    );
    for (const reference of references.filter((reference) => !good.includes(reference))) {
      findings.push(
        fail(
          check,
          `${reference.where} writes to proxy:${reference.path}:${reference.name}, not to quotad's feed (${feeds.join(", ") || "no UNIX socket"} with dict name ${name})`,
          `quota_clone_dict = proxy:${example}:${name} (deploy/dovecot/backend-23.conf)`,
        ),
      );
    }
    if (references.length === 0) {
      findings.push(
        warn(
          check,
          "Dovecot does not clone quota usage to quotad (no quota_clone dict): the relays never see a full mailbox",
          `add quota_clone with quota_clone_dict = proxy:${example}:${name} (deploy/dovecot/backend-23.conf)`,
        ),
      );
    } else if (good.length > 0) {
      findings.push(ok(check, `quota_clone writes to quotad's feed ${good[0]?.path}`));
    }
  }

  const dictSockets = unixPaths(endpoints, "verifyd-dict");
  const dictEndpoints = endpoints.filter((endpoint) => endpoint.kind === "verifyd-dict");
  if (dictEndpoints.length > 0) {
    const example = dictEndpoints[0] === undefined ? "" : describeAddress(dictEndpoints[0].address);
    const references: ProxyDictReference[] = [];
    for (const [file, text] of facts.authFiles) {
      if (text === null) {
        findings.push(
          fail(
            check,
            `cannot read ${file}, named by a dict passdb/userdb`,
            "check the path and its permissions",
          ),
        );
        continue;
      }
      const reference = dictFileReference(file, text);
      if (reference !== null) references.push(reference);
    }
    for (const reference of references) {
      if (!dictSockets.includes(reference.path) || !["auth", "proxy"].includes(reference.name)) {
        findings.push(
          fail(
            check,
            `${reference.where} uses proxy:${reference.path}:${reference.name}, not verifyd's dict (${dictSockets.join(", ") || example} with "auth" or "proxy")`,
            `uri = proxy:${dictSockets[0] ?? example}:auth (deploy/dovecot/dict-emailng.conf.ext)`,
          ),
        );
      } else {
        findings.push(
          ok(check, `${reference.where} asks verifyd's dict ${reference.path} (${reference.name})`),
        );
      }
    }
    if (references.length === 0) {
      findings.push(
        warn(
          check,
          "[verifyd.dovecot] listen is set, but no Dovecot passdb/userdb uses verifyd's dict",
          "add the dict passdb and userdb of deploy/dovecot/backend-23.conf (Dovecot 2.3), or remove [[verifyd.dovecot.listen]]",
        ),
      );
    }
  }
  return findings;
}
