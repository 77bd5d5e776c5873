/**
 * The decision for one policy request, from its facts and injected
 * dependencies (settings, store, directory, transaction table, clock); no
 * sockets, no logging. The session logs and counts what comes back.
 *
 * RCPT, in order, the first refusal winning:
 *   1. protected list (5.7.1 naming the list);
 *   2. a login held after a burst (HOLD: accepted into the hold queue);
 *   3. rate limits (4xx or 5xx per rule), read but not charged;
 *   4. greylisting (DEFER_IF_PERMIT; the accepted retry gets a PREPEND
 *      header, once per transaction).
 * A recipient let through is remembered for the END-OF-MESSAGE request,
 * which charges the transaction once (idempotent per `instance`) and feeds
 * burst detection, answering HOLD when the login trips it.
 *
 * A check in shadow mode is decided and reported but answers DUNNO. A store
 * failure gives the failure answer of the checks that needed the store:
 * DEFER_IF_PERMIT if any enforced one says so; with DUNNO the failed check
 * is skipped and the following checks still run. Any other exception is a
 * bug: it propagates, and the server answers the fail-safe DEFER_IF_PERMIT.
 */
import type { Resolver } from "../core/directory/resolver.js";
import { TransientError } from "../core/errors.js";
import type { MaybePromise } from "../core/maybe-promise.js";
import type { PolicyAction } from "../core/protocols/policy-reply.js";
import type { BurstTrigger, HoldRecord } from "./burst.js";
import { classOf, principalLogin } from "./classes.js";
import { drive, type Steps, wait } from "./drive.js";
import type { RequestFacts } from "./facts.js";
import { type GreylistDecision, greylistApplicability, greylistHeader } from "./greylist.js";
import { judgeLimits, type Principal, planCharges, planRcptChecks } from "./limits.js";
import { checkProtectedList, protectedListText } from "./protected-lists.js";
import type { CompiledRule, FailureAction, Mode, PolicySettings } from "./rules.js";
import type { BurstOutcome, PolicyStore } from "./store.js";
import type { TransactionTable } from "./transactions.js";
import type { WindowReading } from "./windows.js";

export interface DecisionDependencies {
  settings: PolicySettings;
  store: PolicyStore;
  /** The directory in use, or null when no snapshot is loaded. */
  resolver: Resolver | null;
  transactions: TransactionTable;
  now: () => number;
  /** For the X-Greylist header. */
  hostName: string;
}

export type CheckName = "protected_list" | "hold" | "rate_limit" | "greylist" | "burst" | "charge";

/** One check's result, for metrics and the decision log line. */
export interface CheckEvent {
  check: CheckName;
  /** Rule or list name; "" for checks without one. */
  name: string;
  result: string;
  mode: Mode;
}

export type Outcome =
  | { kind: "not_applicable"; reason: "stage" }
  | { kind: "accepted" }
  | { kind: "list_refused"; list: string }
  | { kind: "directory_unavailable" }
  | { kind: "held"; login: string }
  | { kind: "rate_limited"; rule: string; periodMs: number; limit: number; used: number }
  | { kind: "greylisted"; retryInMs: number }
  | { kind: "greylist_passed"; delayedMs: number }
  | { kind: "charged"; counters: number; duplicate: boolean }
  | { kind: "store_failed"; action: FailureAction; reason: string };

export interface Decision {
  action: PolicyAction;
  outcome: Outcome;
  events: CheckEvent[];
  /** Set when this request put a login on hold: the one alert to raise. */
  alert: { hold: HoldRecord; trigger: BurstTrigger | null } | null;
}

const DEFER_TEXT = "Service temporarily unavailable";

/**
 * The decision: synchronously when the store answers at once (memory), as a
 * promise when it has to wait (Redis). Written once, as generators that
 * yield each store answer (drive.ts).
 */
export function decide(facts: RequestFacts, deps: DecisionDependencies): MaybePromise<Decision> {
  switch (facts.stage) {
    case "RCPT":
      return drive(rcptSteps(facts, deps));
    case "END-OF-MESSAGE":
      return drive(endOfMessageSteps(facts, deps));
    case "other":
      return finish({ action: "DUNNO" }, { kind: "not_applicable", reason: "stage" }, []);
    default: {
      const unreachable: never = facts.stage;
      return unreachable;
    }
  }
}

function finish(
  action: PolicyAction,
  outcome: Outcome,
  events: CheckEvent[],
  alert: Decision["alert"] = null,
): Decision {
  return { action, outcome, events, alert };
}

function principalOf(facts: RequestFacts, deps: DecisionDependencies): Principal {
  // The principal only matters for classes; without any, skip the directory lookup.
  if (deps.settings.classes.length === 0) return { login: facts.login, className: null };
  const login = principalLogin(facts, deps.resolver);
  return { login, className: classOf(login, deps.resolver, deps.settings.classes) };
}

/** The failure answer when the store failed for these checks. */
function failureAnswer(actions: readonly FailureAction[], reason: string, events: CheckEvent[]): Decision {
  const action: FailureAction = actions.includes("DEFER_IF_PERMIT") ? "DEFER_IF_PERMIT" : "DUNNO";
  const reply: PolicyAction =
    action === "DEFER_IF_PERMIT" ? { action: "DEFER_IF_PERMIT", text: DEFER_TEXT } : { action: "DUNNO" };
  return finish(reply, { kind: "store_failed", action, reason }, events);
}

/**
 * A store failure in one check: DEFER_IF_PERMIT ends the decision at once;
 * DUNNO means "this check does not apply now" and the next checks still run
 * (the failure is remembered for the outcome).
 */
function storeFailed(
  actions: readonly FailureAction[],
  error: unknown,
  events: CheckEvent[],
  degraded: { reason: string | null },
): Decision | null {
  // Only a backend failure is the store's; anything else is a bug, answered by the fail-safe.
  if (!(error instanceof TransientError)) throw error;
  if (actions.includes("DEFER_IF_PERMIT")) return failureAnswer(actions, reasonOf(error), events);
  degraded.reason ??= reasonOf(error);
  return null;
}

/** The final answer of a request that met no refusal: DUNNO, noted as a store failure if one was skipped. */
function accepted(events: CheckEvent[], degraded: { reason: string | null }, outcome: Outcome): Decision {
  if (degraded.reason !== null) {
    return finish(
      { action: "DUNNO" },
      { kind: "store_failed", action: "DUNNO", reason: degraded.reason },
      events,
    );
  }
  return finish({ action: "DUNNO" }, outcome, events);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function enforcedFailureActions(rules: Iterable<CompiledRule>): FailureAction[] {
  return [...rules].filter((rule) => rule.mode === "enforce").map((rule) => rule.failureAction);
}

function rateLimitReply(rule: CompiledRule): PolicyAction {
  if (rule.action === "reject") {
    const text = rule.message || `Rate limit exceeded (${rule.name})`;
    return { action: "REPLY", code: 550, enhancedCode: "5.7.1", text };
  }
  const text = rule.message || `Rate limit exceeded (${rule.name}), please try again later`;
  return { action: "REPLY", code: 450, enhancedCode: "4.7.1", text };
}

function* rcptSteps(facts: RequestFacts, deps: DecisionDependencies): Steps<Decision> {
  const { settings, store } = deps;
  const now = deps.now();
  const events: CheckEvent[] = [];

  const list = checkProtectedList(facts, settings.protectedLists, deps.resolver);
  const listMode = settings.protectedLists.mode;
  switch (list.kind) {
    case "refused": {
      events.push({ check: "protected_list", name: list.list, result: "refused", mode: listMode });
      if (listMode === "enforce") {
        const text = protectedListText(list.list, list.allowedGroups);
        return finish(
          { action: "REPLY", code: 550, enhancedCode: "5.7.1", text },
          { kind: "list_refused", list: list.list },
          events,
        );
      }
      break;
    }
    case "unavailable":
      events.push({ check: "protected_list", name: "", result: "unavailable", mode: listMode });
      if (listMode === "enforce") {
        return finish(
          { action: "DEFER_IF_PERMIT", text: DEFER_TEXT },
          { kind: "directory_unavailable" },
          events,
        );
      }
      break;
    case "allowed":
      events.push({ check: "protected_list", name: list.list, result: `allowed_${list.by}`, mode: listMode });
      break;
    case "not_protected":
      break;
    default: {
      const unreachable: never = list;
      return unreachable;
    }
  }

  const principal = principalOf(facts, deps);
  const burst = settings.burst;
  const degraded = { reason: null as string | null };
  let heldAction: PolicyAction | null = null;
  if (burst.enabled && facts.login !== null) {
    let hold: HoldRecord | null = null;
    try {
      hold = yield* wait(store.hold(facts.login));
    } catch (error) {
      events.push({ check: "hold", name: "", result: "store_failed", mode: burst.mode });
      const ended = storeFailed(
        burst.mode === "enforce" ? [settings.failureAction] : [],
        error,
        events,
        degraded,
      );
      if (ended !== null) return ended;
    }
    if (hold !== null) {
      events.push({ check: "hold", name: "", result: "held", mode: burst.mode });
      if (burst.mode === "enforce") heldAction = { action: "HOLD", text: burst.message };
    }
  }

  const transaction = facts.instance === null ? undefined : deps.transactions.get(facts.instance, now);
  const checks = planRcptChecks(settings, facts, principal, transaction?.recipients ?? []);
  let readings: WindowReading[] | null = null;
  if (checks.length > 0) {
    try {
      readings = yield* wait(store.readCounters(checks, now));
    } catch (error) {
      const rules = new Set(checks.map((check) => check.rule));
      for (const rule of rules) {
        events.push({ check: "rate_limit", name: rule.name, result: "store_failed", mode: rule.mode });
      }
      const ended = storeFailed(enforcedFailureActions(rules), error, events, degraded);
      if (ended !== null) return ended;
    }
  }
  if (readings !== null) {
    let refusal: Decision | null = null;
    for (const verdict of judgeLimits(checks, readings)) {
      const { rule } = verdict;
      if (verdict.exceeded === null) {
        events.push({ check: "rate_limit", name: rule.name, result: "pass", mode: rule.mode });
        continue;
      }
      events.push({ check: "rate_limit", name: rule.name, result: rule.action, mode: rule.mode });
      if (rule.mode === "enforce" && refusal === null) {
        const { check, reading } = verdict.exceeded;
        refusal = finish(
          rateLimitReply(rule),
          {
            kind: "rate_limited",
            rule: rule.name,
            periodMs: check.spec.periodMs,
            limit: check.spec.limit,
            used: Math.round(reading.used * 100) / 100,
          },
          events,
        );
      }
    }
    if (refusal !== null) return refusal;
  }

  if (heldAction !== null) {
    remember(facts, deps, now);
    return finish(heldAction, { kind: "held", login: facts.login ?? "" }, events);
  }

  const greylist = settings.greylist;
  const applicability = greylistApplicability(greylist, facts);
  if (applicability.applies) {
    let decision: GreylistDecision | null;
    try {
      decision = yield* wait(store.greylist(applicability.query, now, greylist));
    } catch (error) {
      events.push({ check: "greylist", name: "", result: "store_failed", mode: greylist.mode });
      const ended = storeFailed(
        greylist.mode === "enforce" ? [settings.failureAction] : [],
        error,
        events,
        degraded,
      );
      if (ended !== null) return ended;
      decision = null;
    }
    if (decision !== null)
      events.push({ check: "greylist", name: "", result: decision.kind, mode: greylist.mode });
    if (decision !== null && greylist.mode === "enforce") {
      if (decision.kind === "deferred") {
        return finish(
          { action: "DEFER_IF_PERMIT", text: greylist.message },
          { kind: "greylisted", retryInMs: decision.retryInMs },
          events,
        );
      }
      if (decision.kind === "passed") {
        const header = greylist.header && !alreadyPrepended(facts, deps, now);
        remember(facts, deps, now, header);
        return finish(
          header
            ? { action: "PREPEND", header: greylistHeader(decision.delayedMs, deps.hostName, new Date(now)) }
            : { action: "DUNNO" },
          { kind: "greylist_passed", delayedMs: decision.delayedMs },
          events,
        );
      }
    }
  }

  remember(facts, deps, now);
  return accepted(events, degraded, { kind: "accepted" });
}

function alreadyPrepended(facts: RequestFacts, deps: DecisionDependencies, now: number): boolean {
  if (facts.instance === null) return false;
  return deps.transactions.get(facts.instance, now)?.headerPrepended === true;
}

/** Notes an accepted recipient (and a prepended header) for END-OF-MESSAGE. */
function remember(facts: RequestFacts, deps: DecisionDependencies, now: number, prepended = false): void {
  if (facts.instance === null) return;
  const transaction = deps.transactions.open(facts.instance, now);
  if (facts.recipient !== null) deps.transactions.addRecipient(transaction, facts.recipient);
  if (prepended) transaction.headerPrepended = true;
}

let anonymousTransactions = 0;

function* endOfMessageSteps(facts: RequestFacts, deps: DecisionDependencies): Steps<Decision> {
  const { settings, store } = deps;
  const now = deps.now();
  const events: CheckEvent[] = [];
  const transaction = facts.instance === null ? undefined : deps.transactions.finish(facts.instance, now);
  const burst = settings.burst;
  const watchBurst = burst.enabled && facts.login !== null;
  const principal = principalOf(facts, deps);
  const charges = planCharges(settings, facts, principal, transaction?.recipients ?? null);
  if (charges.length === 0 && !watchBurst) return finish({ action: "DUNNO" }, { kind: "accepted" }, events);

  // Without an instance nothing can be de-duplicated; such a request cannot come from Postfix.
  const transactionId = facts.instance ?? `anonymous-${process.pid}-${++anonymousTransactions}`;
  const degraded = { reason: null as string | null };
  // Unknown when the store failed: burst figures are then still tried (they cannot be de-duplicated).
  let charged = true;
  try {
    charged = yield* wait(store.chargeCounters(transactionId, charges, now, settings.transactionTimeoutMs));
    for (const rule of new Set(charges.map((charge) => charge.rule))) {
      events.push({
        check: "charge",
        name: rule.name,
        result: charged ? "charged" : "duplicate",
        mode: rule.mode,
      });
    }
  } catch (error) {
    const rules = new Set(charges.map((charge) => charge.rule));
    for (const rule of rules) {
      events.push({ check: "charge", name: rule.name, result: "store_failed", mode: rule.mode });
    }
    const ended = storeFailed(enforcedFailureActions(rules), error, events, degraded);
    if (ended !== null) return ended;
  }
  const chargedOutcome: Outcome = { kind: "charged", counters: charges.length, duplicate: !charged };
  if (!watchBurst || facts.login === null) return accepted(events, degraded, chargedOutcome);

  if (!charged) {
    // A resent END-OF-MESSAGE: counted already; only the hold still matters.
    let hold: HoldRecord | null = null;
    try {
      hold = yield* wait(store.hold(facts.login));
    } catch (error) {
      const ended = storeFailed(
        burst.mode === "enforce" ? [settings.failureAction] : [],
        error,
        events,
        degraded,
      );
      if (ended !== null) return ended;
    }
    if (hold !== null && burst.mode === "enforce") {
      return finish({ action: "HOLD", text: burst.message }, { kind: "held", login: facts.login }, events);
    }
    return accepted(events, degraded, chargedOutcome);
  }

  const addresses = transaction?.recipients ?? (facts.recipient === null ? [] : [facts.recipient]);
  let result: BurstOutcome;
  try {
    result = yield* wait(
      store.recordBurst(
        { login: facts.login, recipients: Math.max(facts.recipientCount, addresses.length), addresses },
        now,
        burst,
      ),
    );
  } catch (error) {
    events.push({ check: "burst", name: "", result: "store_failed", mode: burst.mode });
    const ended = storeFailed(
      burst.mode === "enforce" ? [settings.failureAction] : [],
      error,
      events,
      degraded,
    );
    return ended ?? accepted(events, degraded, chargedOutcome);
  }
  if (result.kind === "normal") {
    events.push({ check: "burst", name: "", result: "normal", mode: burst.mode });
    return accepted(events, degraded, chargedOutcome);
  }
  events.push({ check: "burst", name: "", result: result.newlyHeld ? "held_now" : "held", mode: burst.mode });
  const alert = result.newlyHeld ? { hold: result.hold, trigger: result.trigger } : null;
  if (burst.mode !== "enforce") return finish({ action: "DUNNO" }, chargedOutcome, events, alert);
  return finish({ action: "HOLD", text: burst.message }, { kind: "held", login: facts.login }, events, alert);
}
