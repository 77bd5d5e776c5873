/**
 * One socketmap connection of verifyd: each request is answered by
 * maps.ts from the snapshot in use at the moment it arrives, counted, and
 * logged. Lookups are logged at debug (Postfix asks several per message, at
 * tens of thousands per second); what an operator must act on (a malformed
 * request or unknown map name, an ambiguous address, an expansion over a
 * limit, an exception) at warn, once per connection and kind so that a
 * misconfigured client cannot flood the log.
 *
 * With live LDAP lookups on, an address the fresh snapshot does not know
 * (recipient, alias and login maps) is asked of LDAP before answering
 * NOTFOUND; a user found there is answered as a one-user directory would
 * be. LDAP failing gives TEMP, never NOTFOUND.
 */
import type { Logger } from "pino";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { DirectoryUser, DomainSet } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { sanitizePeerString } from "../core/log/logger.js";
import type { SessionFactory } from "../core/net/protocol.js";
import { parseSocketmapRequest, type SocketmapReply } from "../core/protocols/socketmap.js";
import { isMapName, lookupMap, type MapAnswer, malformedRequest } from "./maps.js";

export interface SocketmapSessionDependencies {
  /** The snapshot in use now (LiveSnapshot.current). */
  snapshot: () => CurrentSnapshot | null;
  /** Asks LDAP for an address the snapshot does not know (LiveLdap.lookup); absent when off. */
  liveLookup?: (name: string, domains: DomainSet, signal: AbortSignal) => Promise<DirectoryUser | null>;
  /** Counts one answered lookup; `map` is a served map name or "other". */
  counted?: (map: string, result: SocketmapReply["status"], detail: string) => void;
}

/** Maps whose "unknown" answer a live LDAP lookup may change. */
const LIVE_MAPS = new Set(["recipient", "alias", "login"]);

async function liveAnswer(
  map: string,
  key: string,
  snapshot: CurrentSnapshot,
  liveLookup: NonNullable<SocketmapSessionDependencies["liveLookup"]>,
  signal: AbortSignal,
): Promise<MapAnswer | null> {
  const resolution = snapshot.resolver.resolve(key);
  if (resolution.kind !== "unknown") return null;
  let user: DirectoryUser | null;
  try {
    user = await liveLookup(resolution.key, snapshot.resolver.domains, signal);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      reply: { status: "TEMP", reason: "directory lookup failed" },
      detail: "live_error",
      problem: reason,
    };
  }
  if (user === null) return null;
  const oneUser = new Resolver(
    { users: [user], groups: [], domains: snapshot.resolver.domains },
    snapshot.resolver.options,
  );
  const answer = lookupMap(map, key, { resolver: oneUser, meta: snapshot.meta, fresh: true });
  return { ...answer, detail: `live_${answer.detail}` };
}

export function verifydSocketmapSessions(
  dependencies: SocketmapSessionDependencies,
): SessionFactory<Uint8Array, SocketmapReply> {
  return (_peer, log: Logger) => {
    const warned = new Set<string>();
    const finish = (payload: Uint8Array, mapName: string, answer: MapAnswer): SocketmapReply => {
      const map = isMapName(mapName) ? mapName : "other";
      dependencies.counted?.(map, answer.reply.status, answer.detail);
      if (answer.problem !== undefined) {
        const kind = `${map} ${answer.detail}`;
        if (!warned.has(kind)) {
          warned.add(kind);
          log.warn(
            {
              map: sanitizePeerString(mapName, 40),
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
    };
    return {
      handle(payload, context) {
        const snapshot = dependencies.snapshot();
        const parsed = parseSocketmapRequest(payload);
        if (!parsed.ok) return finish(payload, "", malformedRequest(parsed.error.message));
        const { name, key } = parsed.request;
        const answer = lookupMap(name, key, snapshot);
        const { liveLookup } = dependencies;
        if (
          liveLookup === undefined ||
          snapshot === null ||
          answer.detail !== "unknown" ||
          !LIVE_MAPS.has(name)
        ) {
          return finish(payload, name, answer);
        }
        return liveAnswer(name, key, snapshot, liveLookup, context.signal).then((live) =>
          finish(payload, name, live ?? answer),
        );
      },
    };
  };
}
