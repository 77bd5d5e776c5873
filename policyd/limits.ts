/**
 * Rate limits as pure functions: which counters a request touches and with
 * what cost, and what the readings mean.
 *
 * At RCPT each applicable rule is checked without charging anything: the
 * cost is 1 for a message rule, the recipients already accepted in this
 * transaction plus this one for a recipient rule, and the announced size
 * (MAIL FROM SIZE=, at least 1) for a byte rule. At END-OF-MESSAGE the
 * transaction is charged once: 1 message, `recipient_count` recipients,
 * `size` bytes; rules keyed by recipient or recipient domain are charged for
 * each recipient accepted at RCPT. Mail refused at RCPT or later never
 * reaches END-OF-MESSAGE and so is never charged.
 *
 * A rule does not apply when the request lacks its key (no login, the null
 * sender, no parsable client address) or an exception matches.
 */

import type { RequestFacts } from "./facts.js";
import { clientNetwork, domainOf } from "./keys.js";
import {
  type CompiledRule,
  type CompiledWindow,
  counterIdPrefix,
  type PolicySettings,
  windowLimit,
} from "./rules.js";
import type { WindowReading, WindowSpec } from "./windows.js";

export interface Principal {
  /** The directory login counted as the principal (SASL login or local sender), if any. */
  login: string | null;
  className: string | null;
}

export interface CounterCheck {
  /** Store key of the counter: rule, period and key value. */
  id: string;
  rule: CompiledRule;
  window: CompiledWindow;
  spec: WindowSpec;
  cost: number;
  /** The key value counted (login, address, network, domain, "*"). */
  value: string;
}

export function counterId(ruleName: string, periodMs: number, value: string): string {
  return counterIdPrefix(ruleName, periodMs) + value;
}

/** The value a rule counts by for this request and recipient, or null when the request lacks it. */
export function keyValue(rule: CompiledRule, facts: RequestFacts, recipient: string | null): string | null {
  switch (rule.key) {
    case "sasl_login":
      return facts.login;
    case "sender":
      return facts.sender;
    case "sender_domain":
      return domainOf(facts.sender);
    case "client_address":
      return facts.client === null ? null : clientNetwork(facts.client, rule.ipv4Prefix, rule.ipv6Prefix);
    case "recipient":
      return recipient;
    case "recipient_domain":
      return domainOf(recipient);
    case "global":
      return "*";
    default: {
      const unreachable: never = rule.key;
      return unreachable;
    }
  }
}

/** True when an exception of the rule covers the request (recipient exceptions are checked per recipient). */
export function exempted(rule: CompiledRule, facts: RequestFacts, principal: Principal): boolean {
  if (facts.client !== null && rule.exceptNetworks.entries.length > 0) {
    if (rule.exceptNetworks.allows(facts.client.toString())) return true;
  }
  if (facts.login !== null && rule.exceptLogins.has(facts.login)) return true;
  if (rule.exceptSenders.matches(facts.sender)) return true;
  return principal.className !== null && rule.exceptClasses.has(principal.className);
}

function isRecipientKeyed(rule: CompiledRule): boolean {
  return rule.key === "recipient" || rule.key === "recipient_domain";
}

/** Appends one check per window of the rule to `checks`. */
function addChecks(
  checks: CounterCheck[],
  rule: CompiledRule,
  value: string,
  cost: number,
  principal: Principal,
): void {
  for (const window of rule.windows) {
    checks.push({
      id: window.idPrefix + value,
      rule,
      window,
      spec: {
        algorithm: rule.algorithm,
        periodMs: window.periodMs,
        limit: windowLimit(window, principal.className),
      },
      cost,
      value,
    });
  }
}

/**
 * The counters to read at RCPT. `accepted` are the recipients already
 * accepted in this transaction (normalised), which a recipient rule adds to.
 */
export function planRcptChecks(
  settings: PolicySettings,
  facts: RequestFacts,
  principal: Principal,
  accepted: readonly string[],
): CounterCheck[] {
  const checks: CounterCheck[] = [];
  for (const rule of settings.rules) {
    if (exempted(rule, facts, principal) || rule.exceptRecipients.matches(facts.recipient)) continue;
    const value = keyValue(rule, facts, facts.recipient);
    if (value === null) continue;
    let cost: number;
    switch (rule.metric) {
      case "messages":
        cost = 1;
        break;
      case "recipients":
        cost = isRecipientKeyed(rule)
          ? 1
          : accepted.filter((recipient) => !rule.exceptRecipients.matches(recipient)).length + 1;
        break;
      case "bytes":
        cost = Math.max(facts.size, 1);
        break;
      default: {
        const unreachable: never = rule.metric;
        cost = unreachable;
      }
    }
    addChecks(checks, rule, value, cost, principal);
  }
  return checks;
}

/**
 * The counters to charge at END-OF-MESSAGE. `accepted` are the recipients
 * policyd let through at RCPT for this transaction, or null when it has no
 * record (restarted in between, or the RCPT hook is missing): then counts
 * come from recipient_count alone and recipient-keyed rules can only be
 * charged for a single recipient.
 */
export function planCharges(
  settings: PolicySettings,
  facts: RequestFacts,
  principal: Principal,
  accepted: readonly string[] | null,
): CounterCheck[] {
  const count = Math.max(facts.recipientCount, 0);
  let recipients: readonly string[] | null = accepted === null ? null : accepted.slice(0, count || undefined);
  if (recipients === null && count === 1 && facts.recipient !== null) recipients = [facts.recipient];
  const charges: CounterCheck[] = [];
  for (const rule of settings.rules) {
    if (exempted(rule, facts, principal)) continue;
    const counted =
      recipients === null
        ? null
        : recipients.filter((recipient) => !rule.exceptRecipients.matches(recipient));
    if (isRecipientKeyed(rule)) {
      if (counted === null) continue;
      const perValue = new Map<string, number>();
      for (const recipient of counted) {
        const value = keyValue(rule, facts, recipient);
        if (value !== null) perValue.set(value, (perValue.get(value) ?? 0) + 1);
      }
      for (const [value, recipientsForValue] of perValue) {
        const cost =
          rule.metric === "messages" ? 1 : rule.metric === "recipients" ? recipientsForValue : facts.size;
        if (cost > 0) addChecks(charges, rule, value, cost, principal);
      }
      continue;
    }
    const value = keyValue(rule, facts, null);
    if (value === null) continue;
    const recipientTotal = counted === null ? count : counted.length;
    if (recipientTotal === 0 && count > 0) continue; // every recipient was an exception
    const cost = rule.metric === "messages" ? 1 : rule.metric === "recipients" ? recipientTotal : facts.size;
    if (cost > 0) addChecks(charges, rule, value, cost, principal);
  }
  return charges;
}

export interface RuleVerdict {
  rule: CompiledRule;
  value: string;
  /** The first window over its limit, with its reading; null when every window has room. */
  exceeded: { check: CounterCheck; reading: WindowReading } | null;
}

/** One verdict per checked rule, in rule order; `readings[i]` belongs to `checks[i]`. */
export function judgeLimits(
  checks: readonly CounterCheck[],
  readings: readonly WindowReading[],
): RuleVerdict[] {
  const verdicts: RuleVerdict[] = [];
  const byRule = new Map<string, RuleVerdict>();
  checks.forEach((check, index) => {
    const reading = readings[index];
    let verdict = byRule.get(check.rule.name);
    if (verdict === undefined) {
      verdict = { rule: check.rule, value: check.value, exceeded: null };
      byRule.set(check.rule.name, verdict);
      verdicts.push(verdict);
    }
    if (verdict.exceeded === null && reading !== undefined && !reading.fits) {
      verdict.exceeded = { check, reading };
    }
  });
  return verdicts;
}
