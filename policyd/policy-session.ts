/**
 * One Postfix policy connection of policyd: each request is read into facts,
 * decided by decide.ts with the settings and snapshot in use at that moment
 * (a reload swaps them between requests, never during one), counted, logged
 * and answered. Refusals, holds, greylisting and store failures are logged
 * at info with the rule or list that decided; plain acceptances at debug
 * (Postfix asks once per recipient). A stage policyd does not use (it is
 * hooked somewhere other than RCPT and END-OF-MESSAGE) is answered DUNNO
 * with one warning per connection. A new hold raises the alert. With the
 * memory store the reply is returned synchronously (no promise per request).
 */
import type { Logger } from "pino";
import { sanitizePeerString } from "../core/log/logger.js";
import { isPromiseLike } from "../core/maybe-promise.js";
import type { SessionFactory } from "../core/net/protocol.js";
import type { PolicyRequest } from "../core/protocols/policy.js";
import type { PolicyAction } from "../core/protocols/policy-reply.js";
import { type CheckEvent, type Decision, type DecisionDependencies, decide } from "./decide.js";
import { type RequestFacts, readFacts } from "./facts.js";

export interface PolicySessionDependencies {
  /** The dependencies in force now (settings and snapshot may change between requests). */
  current: () => DecisionDependencies;
  /** Counts one check result and one outcome. */
  counted?: (events: readonly CheckEvent[], decision: Decision) => void;
  /** Raises the one alert for a login that was just put on hold. */
  alert?: (alert: NonNullable<Decision["alert"]>, log: Logger) => void;
}

export function policySessions(
  dependencies: PolicySessionDependencies,
): SessionFactory<PolicyRequest, PolicyAction> {
  return (_peer, log) => {
    let warnedStage = false;
    const answer = (facts: RequestFacts, decision: Decision): PolicyAction => {
      dependencies.counted?.(decision.events, decision);
      if (decision.outcome.kind === "not_applicable") {
        if (!warnedStage) {
          warnedStage = true;
          log.warn(
            { state: sanitizePeerString(facts.protocolState, 32) },
            "policy request at a stage policyd does not use; answering DUNNO (hook it at RCPT and END-OF-MESSAGE)",
          );
        }
        return decision.action;
      }
      logDecision(log, facts, decision);
      if (decision.alert !== null) dependencies.alert?.(decision.alert, log);
      return decision.action;
    };
    return {
      // The reply itself when the decision finished synchronously (memory store), a promise otherwise.
      handle(request) {
        const deps = dependencies.current();
        const facts = readFacts(request, deps.settings.recipientDelimiters);
        const decision = decide(facts, deps);
        if (isPromiseLike(decision)) return decision.then((settled) => answer(facts, settled));
        return answer(facts, decision);
      },
    };
  };
}

const QUIET_OUTCOMES = new Set(["accepted", "charged"]);

function logDecision(log: Logger, facts: RequestFacts, decision: Decision): void {
  const quiet =
    QUIET_OUTCOMES.has(decision.outcome.kind) && !decision.events.some((event) => event.result !== "pass");
  const level = quiet ? "debug" : "info";
  if (!log.isLevelEnabled(level)) return;
  log[level](
    {
      stage: facts.stage,
      instance: facts.instance === null ? undefined : sanitizePeerString(facts.instance, 64),
      login: facts.login === null ? undefined : sanitizePeerString(facts.login, 64),
      sender: facts.sender === null ? undefined : sanitizePeerString(facts.sender, 100),
      recipient: facts.recipient === null ? undefined : sanitizePeerString(facts.recipient, 100),
      client: facts.client?.toString(),
      outcome: decision.outcome,
      checks: decision.events.map(
        (event) =>
          `${event.check}${event.name ? `:${event.name}` : ""}=${event.result}${event.mode === "shadow" ? "(shadow)" : ""}`,
      ),
      action: decision.action.action,
    },
    "decision",
  );
}
