/**
 * One socketmap connection of verifyd: each request is answered by
 * maps.ts from the snapshot in use at the moment it arrives, counted, and
 * logged. Lookups are logged at debug (Postfix asks several per message, at
 * tens of thousands per second); what an operator must act on (a malformed
 * request or unknown map name, an ambiguous address, an expansion over a
 * limit, an exception) at warn, once per connection and kind so that a
 * misconfigured client cannot flood the log.
 */
import type { Logger } from "pino";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import { sanitizePeerString } from "../core/log/logger.js";
import type { SessionFactory } from "../core/net/protocol.js";
import type { SocketmapReply } from "../core/protocols/socketmap.js";
import { answerRequest, isMapName } from "./maps.js";

export interface SocketmapSessionDependencies {
  /** The snapshot in use now (LiveSnapshot.current). */
  snapshot: () => CurrentSnapshot | null;
  /** Counts one answered lookup; `map` is a served map name or "other". */
  counted?: (map: string, result: SocketmapReply["status"], detail: string) => void;
}

export function verifydSocketmapSessions(
  dependencies: SocketmapSessionDependencies,
): SessionFactory<Uint8Array, SocketmapReply> {
  return (_peer, log: Logger) => {
    const warned = new Set<string>();
    return {
      handle(payload) {
        const answer = answerRequest(payload, dependencies.snapshot());
        const map = isMapName(answer.map) ? answer.map : "other";
        dependencies.counted?.(map, answer.reply.status, answer.detail);
        if (answer.problem !== undefined) {
          const kind = `${map} ${answer.detail}`;
          if (!warned.has(kind)) {
            warned.add(kind);
            log.warn(
              {
                map: sanitizePeerString(answer.map, 40),
                request: sanitizePeerString(new TextDecoder().decode(payload), 200),
                reply: answer.reply.status,
                detail: answer.detail,
              },
              answer.problem,
            );
          }
        } else if (log.isLevelEnabled("debug")) {
          log.debug(
            {
              request: sanitizePeerString(new TextDecoder().decode(payload), 200),
              reply: answer.reply.status,
              detail: answer.detail,
            },
            "lookup",
          );
        }
        return answer.reply;
      },
    };
  };
}
