/**
 * Reads what `postconf` says about the parameters that should lead to
 * emailng, and checks that they name the sockets and map names emailng
 * serves here: every socketmap table is one of verifyd's listeners with a
 * map verifyd knows, recipients are checked against verifyd (relay:
 * relay_recipient_maps, back-end: virtual_mailbox_maps), a relay expands
 * aliases through verifyd, and policyd and quotad are called where their
 * READMEs say (policyd at RCPT and at END-OF-MESSAGE, where it charges).
 * Pure: the parameter values and the served endpoints are passed in.
 */
import { isAbsolute, join } from "node:path";
import { MAP_NAMES } from "../verifyd/maps.js";
import { describeAddress, type Endpoint } from "./endpoints.js";
import { type Finding, fail, ok, warn } from "./findings.js";

/** The parameters read with `postconf NAME…`. */
export const POSTFIX_PARAMETERS = [
  "queue_directory",
  "relay_domains",
  "relay_recipient_maps",
  "virtual_alias_maps",
  "virtual_mailbox_domains",
  "virtual_mailbox_maps",
  "smtpd_sender_login_maps",
  "smtpd_recipient_restrictions",
  "smtpd_end_of_data_restrictions",
] as const;

/** `name = value` lines as postconf prints them. */
export function parsePostconf(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(" = ");
    if (at > 0) settings.set(line.slice(0, at).trim(), line.slice(at + 3).trim());
    else if (/^\S+ =$/.test(line.trim())) settings.set(line.trim().slice(0, -2), "");
  }
  return settings;
}

export interface SocketmapReference {
  parameter: string;
  target: { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };
  map: string;
}

export function socketmapReferences(parameter: string, value: string): SocketmapReference[] {
  const references: SocketmapReference[] = [];
  const pattern = /socketmap:(?:unix:([^\s,{}]+)|inet:(\[[^\]]+\]|[^\s,{}:]+):([0-9]+)):([^\s,{}:]+)/g;
  for (const match of value.matchAll(pattern)) {
    const map = match[4] ?? "";
    if (match[1] !== undefined) {
      // Backtracking leaves the last colon for the map name, as Postfix splits it.
      references.push({ parameter, target: { kind: "unix", path: match[1] }, map });
    } else {
      const host = (match[2] ?? "").replace(/^\[|\]$/g, "");
      references.push({ parameter, target: { kind: "tcp", host, port: Number(match[3]) }, map });
    }
  }
  return references;
}

/** check_policy_service targets of a restriction list, unix paths made absolute (relative to the queue directory). */
export function policyTargets(value: string, queueDirectory: string): string[] {
  const targets: string[] = [];
  const pattern = /check_policy_service\s+(?:\{\s*([^,}\s]+)[^}]*\}|([^\s,]+))/g;
  for (const match of value.matchAll(pattern)) {
    const target = match[1] ?? match[2] ?? "";
    if (target.startsWith("unix:")) {
      const path = target.slice("unix:".length);
      targets.push(isAbsolute(path) ? path : join(queueDirectory, path));
    } else {
      targets.push(target.replace(/^inet:/, ""));
    }
  }
  return targets;
}

function endpointKeys(endpoints: readonly Endpoint[]): string[] {
  return endpoints.flatMap((endpoint) => {
    const address = endpoint.address;
    if (address.kind === "unix") return [address.path];
    if (address.kind === "tcp") return [`${address.host}:${address.port}`, `localhost:${address.port}`];
    return [];
  });
}

function targetKey(target: SocketmapReference["target"]): string {
  return target.kind === "unix" ? target.path : `${target.host}:${target.port}`;
}

export function judgePostfix(
  settings: ReadonlyMap<string, string>,
  endpoints: readonly Endpoint[],
): Finding[] {
  const check = "postfix";
  const findings: Finding[] = [];
  const get = (name: string) => settings.get(name) ?? "";
  const verifyd = endpoints.filter((endpoint) => endpoint.kind === "verifyd");
  const verifydKeys = new Set(endpointKeys(verifyd));
  const example = verifyd.find((endpoint) => endpoint.address.kind === "unix");
  const examplePath = example === undefined ? "/run/emailng/verifyd.sock" : describeAddress(example.address);

  const references = POSTFIX_PARAMETERS.flatMap((name) => socketmapReferences(name, get(name)));
  for (const reference of references) {
    const where = targetKey(reference.target);
    if (verifyd.length > 0 && !verifydKeys.has(where)) {
      findings.push(
        fail(
          check,
          `${reference.parameter} uses the socketmap ${where}, which is not a verifyd listener here`,
          `use socketmap:unix:${examplePath}:${reference.map} (deploy/postfix/relay-main.cf), or add the socket to [[verifyd.listen]]`,
        ),
      );
    }
    if (!(MAP_NAMES as readonly string[]).includes(reference.map)) {
      findings.push(
        fail(
          check,
          `${reference.parameter} asks for the map "${reference.map}", which verifyd does not serve (it serves ${MAP_NAMES.join(", ")})`,
          `write socketmap:unix:${examplePath}:NAME with one of ${MAP_NAMES.join(", ")}`,
        ),
      );
    }
  }

  const uses = (parameter: string, map: string) =>
    references.some(
      (reference) =>
        reference.parameter === parameter &&
        reference.map === map &&
        verifydKeys.has(targetKey(reference.target)),
    );
  if (verifyd.length > 0) {
    const relay = uses("relay_recipient_maps", "recipient");
    const backend = uses("virtual_mailbox_maps", "recipient");
    if (!relay && !backend) {
      findings.push(
        warn(
          check,
          get("relay_recipient_maps") === ""
            ? "neither relay_recipient_maps nor virtual_mailbox_maps asks verifyd: Postfix does not check recipients against the directory"
            : `relay_recipient_maps (${get("relay_recipient_maps")}) does not use verifyd's socket`,
          `relay: relay_recipient_maps = socketmap:unix:${examplePath}:recipient (deploy/postfix/relay-main.cf); back-end: virtual_mailbox_maps = the same (deploy/postfix/backend-main.cf)`,
        ),
      );
    }
    if (relay && !uses("virtual_alias_maps", "alias")) {
      findings.push(
        warn(
          check,
          "relay_recipient_maps uses verifyd but virtual_alias_maps does not: aliases, groups and forwards are not expanded",
          `virtual_alias_maps = socketmap:unix:${examplePath}:alias`,
        ),
      );
    }
    if (relay || backend) {
      findings.push(
        ok(
          check,
          `Postfix checks recipients with verifyd (${relay ? "relay_recipient_maps" : "virtual_mailbox_maps"})`,
        ),
      );
    }
  }

  const queueDirectory = get("queue_directory") || "/var/spool/postfix";
  const atRcpt = new Set(policyTargets(get("smtpd_recipient_restrictions"), queueDirectory));
  const atData = new Set(policyTargets(get("smtpd_end_of_data_restrictions"), queueDirectory));
  for (const kind of ["quotad", "policyd"] as const) {
    const keys = endpointKeys(endpoints.filter((endpoint) => endpoint.kind === kind));
    const served = endpoints.filter((endpoint) => endpoint.kind === kind);
    if (served.length === 0) continue;
    const example = keys[0] ?? `/var/spool/postfix/private/emailng-${kind}`;
    const spec = example.startsWith("/") ? `unix:${example}` : `inet:${example}`;
    const rcpt = keys.some((key) => atRcpt.has(key));
    const data = keys.some((key) => atData.has(key));
    if (!rcpt) {
      findings.push(
        warn(
          check,
          `smtpd_recipient_restrictions does not call ${kind} (${keys.join(", ") || "no resolvable socket"})`,
          `add check_policy_service { ${spec}, timeout=15s, default_action=DEFER_IF_PERMIT } (deploy/postfix/relay-main.cf)`,
        ),
      );
    } else if (kind === "policyd" && !data) {
      findings.push(
        warn(
          check,
          "policyd is called at RCPT but not in smtpd_end_of_data_restrictions: messages are never charged, so no rate limit ever fills",
          `smtpd_end_of_data_restrictions = check_policy_service { ${spec}, timeout=15s, default_action=DUNNO }`,
        ),
      );
    } else {
      findings.push(ok(check, `Postfix calls ${kind} at RCPT${data ? " and END-OF-MESSAGE" : ""}`));
    }
  }
  return findings;
}
