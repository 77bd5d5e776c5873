/**
 * The daemon side of `emailng policy explain|reset|release KEY`: KEY is
 * interpreted by explain.ts against the rules in force, the store is read
 * or changed, and the answer goes back as one JSON line. Each change is
 * logged at info with the key, so the log says who was released when.
 */
import { sanitizePeerString } from "../core/log/logger.js";
import type { SessionFactory } from "../core/net/protocol.js";
import type { AdminReply, AdminRequest } from "./admin-protocol.js";
import type { DecisionDependencies } from "./decide.js";
import { interpretKey, targetsOf } from "./explain.js";

export function adminSessions(current: () => DecisionDependencies): SessionFactory<AdminRequest, AdminReply> {
  return (_peer, log) => ({
    async handle(request): Promise<AdminReply> {
      if (!request.ok) return request;
      const deps = current();
      const values = interpretKey(request.key, deps.settings.recipientDelimiters);
      if (values === null) {
        return {
          ok: false,
          error: `${request.key} is not a login, address, @domain, client address or "global"`,
        };
      }
      const target = targetsOf(values, deps.settings, deps.resolver);
      const now = deps.now();
      const key = sanitizePeerString(request.key, 100);
      try {
        switch (request.command) {
          case "explain": {
            const report = await deps.store.report(
              target.counters,
              target.login,
              target.greylistClientId,
              now,
            );
            return {
              ok: true,
              key: request.key,
              interpreted: values,
              counters: target.counters.map((counter, index) => {
                const reading = report.counters[index]?.reading;
                return {
                  rule: counter.rule,
                  key: counter.key,
                  value: counter.value,
                  periodSeconds: counter.spec.periodMs / 1000,
                  limit: counter.spec.limit,
                  used: reading === undefined ? 0 : Math.round(reading.used * 100) / 100,
                  full: reading === undefined ? false : !reading.fits,
                };
              }),
              hold:
                report.hold === null
                  ? null
                  : { ...report.hold, since: new Date(report.hold.since).toISOString() },
              burst: report.burst,
              greylistClient: report.greylistClient,
            };
          }
          case "reset": {
            const removed = await deps.store.reset(
              target.counters.map((counter) => counter.id),
              target.login,
            );
            log.info({ key, removed }, "counters reset by administrator");
            return { ok: true, key: request.key, removed };
          }
          case "release": {
            if (target.login === null) return { ok: false, error: `${request.key} is not a login` };
            const released = await deps.store.release(target.login);
            log.info({ login: target.login, released }, "hold released by administrator");
            return { ok: true, key: request.key, login: target.login, released };
          }
          default: {
            const unreachable: never = request.command;
            return unreachable;
          }
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        log.error({ key, command: request.command, reason }, "administrative command failed");
        return { ok: false, error: `the store failed: ${reason}` };
      }
    },
  });
}
