/**
 * Asks each socket one harmless question in its own protocol, the way its
 * real peer would, and judges the answer:
 *   socketmap (verifyd)   `domain <primary domain>`; OK is fine, NOTFOUND
 *                         means the snapshot does not serve the domain,
 *                         TEMP/PERM carry verifyd's reason.
 *   policy (policyd, quotad)  a minimal RCPT request from 127.0.0.1 by an
 *                         authenticated "emailng-doctor" (never greylisted,
 *                         nothing is charged at RCPT) for postmaster@<domain>.
 *   dict (verifyd's userdb, quotad's feed)  the hello Dovecot 2.3 sends, then
 *                         one lookup of a user that does not exist; N or O
 *                         is fine, F carries the daemon's reason.
 * Each probe is bounded by its own deadline and leaves no connection open.
 * The judge functions are pure; the probe functions do the I/O.
 */

import { exchangeOnce, type ProbeResult, type ProbeTarget, probeFailure } from "../core/net/one-shot.js";
import { openSocketmapClient } from "../core/net/socketmap-client.js";
import { encodeDictCommand, encodeDictHello } from "../core/protocols/dict-commands.js";
import { DictReplyDecoder, type DictReplyLine } from "../core/protocols/dict-replies.js";

export type { ProbeResult, ProbeTarget };

import { encodePolicyRequest } from "../core/protocols/policy.js";
import { type PolicyReply, PolicyReplyDecoder, parsePolicyAction } from "../core/protocols/policy-reply.js";
import type { SocketmapReply } from "../core/protocols/socketmap.js";
import { type EndpointKind, SERVICE_OF } from "./endpoints.js";
import { type Finding, fail, ok, warn } from "./findings.js";

export const PROBE_USER = "emailng-doctor";

function withDeadline<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "timeout" }));
    }, timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export async function probeSocketmap(
  target: ProbeTarget,
  map: string,
  key: string,
  timeoutMs: number,
): Promise<ProbeResult<SocketmapReply>> {
  let client: Awaited<ReturnType<typeof openSocketmapClient>> | undefined;
  let timedOut = false;
  try {
    const reply = await withDeadline(
      (async () => {
        client = await openSocketmapClient(target, timeoutMs);
        // The deadline may have passed while connecting: do not leave the connection behind.
        if (timedOut) client.close();
        return client.lookup(map, key);
      })(),
      timeoutMs,
      () => {
        timedOut = true;
        client?.close();
      },
    );
    return { ok: true, reply };
  } catch (error) {
    return probeFailure(error);
  } finally {
    client?.close();
  }
}

/** The request Postfix's smtpd sends at RCPT, reduced to what a decision reads. */
export function probePolicyRequest(recipient: string, instance: string): Uint8Array {
  return encodePolicyRequest([
    ["request", "smtpd_access_policy"],
    ["protocol_state", "RCPT"],
    ["protocol_name", "ESMTP"],
    ["client_address", "127.0.0.1"],
    ["client_name", "localhost"],
    ["reverse_client_name", "localhost"],
    ["helo_name", "localhost"],
    ["sender", ""],
    ["recipient", recipient],
    ["recipient_count", "0"],
    ["queue_id", ""],
    ["instance", instance],
    ["size", "0"],
    ["sasl_method", "PLAIN"],
    ["sasl_username", PROBE_USER],
    ["sasl_sender", ""],
  ]);
}

export function probePolicy(
  target: ProbeTarget,
  recipient: string,
  timeoutMs: number,
): Promise<ProbeResult<PolicyReply>> {
  const instance = `doctor.${process.pid}.${Date.now().toString(36)}`;
  return exchangeOnce(target, probePolicyRequest(recipient, instance), new PolicyReplyDecoder(), timeoutMs);
}

/** Dovecot 2.3's hello for `dictName`, then one lookup. */
export function probeDictRequest(dictName: string, key: string, user: string): Uint8Array {
  const hello = encodeDictHello({ version: { major: 3, minor: 2 }, valueType: 0, user: "", dictName });
  return new TextEncoder().encode(hello + encodeDictCommand({ kind: "lookup", key, user }));
}

export function probeDict(
  target: ProbeTarget,
  dictName: string,
  key: string,
  timeoutMs: number,
): Promise<ProbeResult<DictReplyLine>> {
  return exchangeOnce(target, probeDictRequest(dictName, key, PROBE_USER), new DictReplyDecoder(), timeoutMs);
}

// --- judging -----------------------------------------------------------------

/** The finding for a probe that got no answer at all. */
export function judgeConnectionFailure(
  kind: EndpointKind,
  where: string,
  result: { code: string; message: string },
): Finding {
  const check = `${kind} socket`;
  const service = SERVICE_OF[kind];
  switch (result.code) {
    case "ENOENT":
      return fail(
        check,
        `${where} does not exist: ${kind} is not listening there`,
        `start it (systemctl start ${service}.service), or correct the listener in the configuration`,
      );
    case "ECONNREFUSED":
      return fail(
        check,
        `${where} exists but nobody accepts connections on it (${kind} stopped, stale socket file)`,
        `systemctl restart ${service}.service; journalctl -u ${service}.service shows why it stopped`,
      );
    case "EACCES":
    case "EPERM":
      return fail(
        check,
        `no permission to connect to ${where}`,
        "run emailng doctor as root, or as a member of the socket's group",
      );
    case "timeout":
      return fail(
        check,
        `${where} accepted the connection but did not answer (${result.message})`,
        `look at journalctl -u ${service}.service; a restart (systemctl restart ${service}.service) ends a hang`,
      );
    default:
      return fail(
        check,
        `${where}: ${result.message}`,
        `check that ${where} is ${kind}'s socket (journalctl -u ${service}.service)`,
      );
  }
}

/** `expectFound`: the key is the configured primary domain, which the snapshot must serve. */
export function judgeSocketmap(
  where: string,
  domain: string,
  expectFound: boolean,
  result: ProbeResult<SocketmapReply>,
): Finding {
  if (!result.ok) return judgeConnectionFailure("verifyd", where, result);
  const check = "verifyd socket";
  const reply = result.reply;
  switch (reply.status) {
    case "OK":
      return ok(check, `${where} answers: domain ${domain} → OK ${reply.data}`);
    case "NOTFOUND":
      if (!expectFound) return ok(check, `${where} answers: domain ${domain} → NOTFOUND`);
      return fail(
        check,
        `${where} answers, but not for ${domain}: the snapshot does not serve the primary domain`,
        "check [directory] primary_domain and that the snapshot was built from this directory (emailng sync run)",
      );
    case "TEMP":
    case "TIMEOUT":
      return fail(
        check,
        `${where} answers ${reply.status} ${reply.reason}: Postfix answers 451 for every recipient`,
        "see the snapshot finding above and journalctl -u emailng-verifyd.service",
      );
    case "PERM":
      return fail(
        check,
        `${where} answers PERM ${reply.reason}`,
        "check that this socket is verifyd's socketmap (not its dict) and journalctl -u emailng-verifyd.service",
      );
    default: {
      const unexpected: never = reply;
      throw new Error(`unknown socketmap reply ${JSON.stringify(unexpected)}`);
    }
  }
}

export function judgePolicy(
  kind: "policyd" | "quotad",
  where: string,
  result: ProbeResult<PolicyReply>,
): Finding {
  if (!result.ok) return judgeConnectionFailure(kind, where, result);
  const check = `${kind} socket`;
  const service = SERVICE_OF[kind];
  const text = result.reply.action;
  if (text === undefined) {
    return fail(
      check,
      `${where} answered without an action: Postfix would log "missing attribute action" and apply its default_action`,
      `check that ${where} is ${kind}'s policy socket (not its dict or admin socket)`,
    );
  }
  const parsed = parsePolicyAction(text);
  if (!parsed.ok) {
    return fail(
      check,
      `${where} answered an action Postfix refuses: ${text}`,
      `journalctl -u ${service}.service`,
    );
  }
  const action = parsed.action;
  const temporary =
    action.action === "DEFER" ||
    action.action === "DEFER_IF_PERMIT" ||
    (action.action === "REPLY" && action.code < 500);
  if (temporary) {
    return warn(
      check,
      `${where} answers a test recipient temporarily: ${text}`,
      `${kind} cannot decide now (snapshot or store): see the snapshot finding and journalctl -u ${service}.service`,
    );
  }
  return ok(check, `${where} answers a test RCPT: ${text}`);
}

export function judgeDict(
  kind: "verifyd-dict" | "quotad-feed",
  where: string,
  result: ProbeResult<DictReplyLine>,
): Finding {
  if (!result.ok) return judgeConnectionFailure(kind, where, result);
  const check = `${kind} socket`;
  const service = SERVICE_OF[kind];
  const reply = result.reply;
  if (reply.kind !== "reply") {
    return fail(
      check,
      `${where} answered a line Dovecot does not understand`,
      `journalctl -u ${service}.service`,
    );
  }
  switch (reply.code) {
    case "O":
    case "N":
      return ok(check, `${where} answers a dict lookup (${reply.code === "N" ? "not found" : "found"})`);
    case "F":
      return fail(
        check,
        `${where} answers a dict lookup with a failure: ${reply.value || "(no reason)"}`,
        kind === "verifyd-dict"
          ? "Dovecot logins fail temporarily meanwhile: see the snapshot finding and journalctl -u emailng-verifyd.service"
          : "check [quotad.feed] dict_name and the usage store (journalctl -u emailng-quotad.service)",
      );
    default:
      return fail(
        check,
        `${where} answered ${reply.code} to a lookup`,
        `check that ${where} is ${kind}'s dict socket`,
      );
  }
}
