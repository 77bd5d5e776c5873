/**
 * One Dovecot dict connection of verifyd (userdb/passdb). The hello names
 * the dict ("auth" for back-ends, "proxy" for front-end proxies, see
 * dovecot-auth.ts); lookups and iterations are answered from the snapshot in
 * use when each arrives; this dict is read-only, so a commit fails and
 * transaction lines get no reply. A dict name we do not serve, a malformed
 * line, a missing hello: every L/I/C gets a dict failure (a temporary error
 * for Dovecot), warned once per connection and kind.
 *
 * A lookup missing from the snapshot may be asked of LDAP live
 * (`liveLookup`, when [verifyd.live_ldap] is on); its answer replaces the
 * snapshot's "not found" only, never a snapshot answer.
 */
import type { Logger } from "pino";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { DirectoryUser } from "../core/directory/model.js";
import { sanitizePeerString } from "../core/log/logger.js";
import type { RequestContext, SessionFactory } from "../core/net/protocol.js";
import type { DictProtocolVersion } from "../core/protocols/dict-commands.js";
import { DictIterateFlag } from "../core/protocols/dict-commands.js";
import type { DictClientFrame, DictServerReply } from "../core/protocols/dovecot-dict.js";
import {
  type AuthAnswer,
  type AuthDictName,
  answerAuthLookup,
  answerFromLiveUser,
  type DovecotAuthSettings,
  isAuthDictName,
  iterateAuthKeys,
  lookupName,
} from "./dovecot-auth.js";

export interface DictSessionDependencies {
  snapshot: () => CurrentSnapshot | null;
  settings: DovecotAuthSettings;
  /**
   * Asks LDAP for a name the snapshot does not know; resolves to the user, or
   * null when LDAP does not know it either; rejects (TransientError) when LDAP
   * cannot answer. Absent when live lookups are off.
   */
  liveLookup?: (name: string, signal: AbortSignal) => Promise<DirectoryUser | null>;
  /** Counts one answer: kind passdb/userdb/iterate/other, detail as in AuthAnswer. */
  counted?: (kind: string, detail: string) => void;
}

const BAD_DICT_ANSWER: AuthAnswer = {
  kind: "other",
  result: { kind: "failed", error: "dict not served" },
  detail: "bad_dict",
};

export function verifydDictSessions(
  dependencies: DictSessionDependencies,
): SessionFactory<DictClientFrame, DictServerReply> {
  return (_peer, log: Logger) => {
    let dictName: AuthDictName | null = null;
    let helloSeen = false;
    const warned = new Set<string>();
    const warnOnce = (kind: string, fields: Record<string, unknown>, message: string): void => {
      if (warned.has(kind)) return;
      warned.add(kind);
      log.warn(fields, message);
    };

    /**
     * The snapshot's answer, at once; only a name the snapshot does not know,
     * with live lookups on, waits for LDAP (and only then is the request's
     * signal asked for).
     */
    function lookup(key: string, context: RequestContext): AuthAnswer | Promise<AuthAnswer> {
      if (dictName === null) return BAD_DICT_ANSWER;
      const snapshot = dependencies.snapshot();
      const answer = answerAuthLookup(key, dictName, snapshot, dependencies.settings);
      if (answer.detail !== "not_found" || dependencies.liveLookup === undefined || snapshot === null) {
        return answer;
      }
      const name = lookupName(key);
      if (name === null) return answer;
      const served = dictName;
      return dependencies
        .liveLookup(name, context.signal)
        .then((user) =>
          user === null ? answer : answerFromLiveUser(answer.kind, user, served, dependencies.settings),
        );
    }

    function lookupReply(key: string, version: DictProtocolVersion, answer: AuthAnswer): DictServerReply {
      dependencies.counted?.(answer.kind, answer.detail);
      if (answer.problem !== undefined) {
        warnOnce(
          `${answer.kind} ${answer.detail}`,
          { key: sanitizePeerString(key, 200), detail: answer.detail },
          answer.problem,
        );
      } else if (log.isLevelEnabled("debug")) {
        log.debug(
          { key: sanitizePeerString(key, 200), result: answer.result.kind, detail: answer.detail },
          "lookup",
        );
      }
      return { kind: "lookup", version, result: answer.result };
    }

    return {
      handle(frame, context): DictServerReply | undefined | Promise<DictServerReply> {
        switch (frame.kind) {
          case "hello": {
            helloSeen = true;
            const name = frame.hello.dictName;
            if (isAuthDictName(name)) dictName = name;
            else {
              warnOnce(
                "dict",
                { dict: sanitizePeerString(name, 60) },
                'dict name not served (use "auth" or "proxy" in the proxy URI); every lookup fails',
              );
            }
            return undefined;
          }
          case "invalid": {
            warnOnce(
              `invalid ${frame.letter}`,
              { letter: sanitizePeerString(frame.letter, 4), reason: frame.reason, hello: helloSeen },
              "malformed dict line",
            );
            dependencies.counted?.("other", "malformed");
            // The fail-safe gives L/I/C a dict failure; other lines get nothing.
            throw new Error(`malformed dict line: ${frame.reason}`);
          }
          case "command":
            break;
          default: {
            const unreachable: never = frame;
            return unreachable;
          }
        }
        const { command, version } = frame;
        switch (command.kind) {
          case "lookup": {
            const { key } = command;
            const answer = lookup(key, context);
            return answer instanceof Promise
              ? answer.then((live) => lookupReply(key, version, live))
              : lookupReply(key, version, answer);
          }
          case "iterate": {
            const iteration =
              dictName === null
                ? ({ ok: false, error: "dict not served", detail: "bad_dict" } as const)
                : iterateAuthKeys(
                    command.path,
                    command.maxRows,
                    dependencies.snapshot(),
                    dependencies.settings,
                  );
            dependencies.counted?.("iterate", iteration.ok ? "ok" : iteration.detail);
            if (!iteration.ok) {
              return { kind: "iterate", version, rows: [], end: { ok: false, error: iteration.error } };
            }
            // The auth process ignores the values; send none.
            const noValue = (command.flags & DictIterateFlag.noValue) !== 0;
            return {
              kind: "iterate",
              version,
              rows: iteration.keys.map((key) => ({ key, values: noValue ? [] : [""] })),
              end: { ok: true },
            };
          }
          case "commit":
            warnOnce("commit", {}, "write to the read-only userdb/passdb dict refused");
            return {
              kind: "commit",
              version,
              id: command.id,
              result: { kind: "failed", error: "read-only dict" },
            };
          case "begin":
          case "rollback":
          case "set":
          case "unset":
          case "atomic-inc":
          case "timestamp":
            return undefined;
          default: {
            const unreachable: never = command;
            return unreachable;
          }
        }
      },
    };
  };
}
