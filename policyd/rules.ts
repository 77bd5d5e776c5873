/**
 * The [policyd] configuration turned into what the decision functions use:
 * rules with their windows, per-class limits and exception lists parsed once,
 * modes and failure answers resolved against the [policyd] defaults, and the
 * greylisting, protected-list and burst settings. compilePolicy also makes
 * the checks the schema cannot make table by table (a class named in a rule
 * must exist; a Redis store needs a [redis] table). It runs at start and on
 * SIGHUP: a configuration that fails here is refused and the running one
 * stays, so a reload can never leave policyd half-configured.
 */
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { type AllowList, createAllowList } from "../core/net/allow-list.js";
import { redisConfigured } from "../core/redis/client.js";
import { AddressList, type KeyKind } from "./keys.js";
import type { Algorithm } from "./windows.js";

export type Mode = "enforce" | "shadow";
export type FailureAction = "DUNNO" | "DEFER_IF_PERMIT";
export type Metric = "messages" | "recipients" | "bytes";

export interface CompiledWindow {
  periodMs: number;
  limit: number;
  /** Limits of principals in a class, by class name; others use `limit`. */
  classLimits: ReadonlyMap<string, number>;
  /** Store keys of this window's counters without the key value (limits.ts counterId), built once. */
  idPrefix: string;
}

export interface CompiledRule {
  name: string;
  key: KeyKind;
  metric: Metric;
  algorithm: Algorithm;
  windows: readonly CompiledWindow[];
  action: "defer" | "reject";
  message: string;
  mode: Mode;
  failureAction: FailureAction;
  ipv4Prefix: number;
  ipv6Prefix: number;
  exceptNetworks: AllowList;
  exceptLogins: ReadonlySet<string>;
  exceptSenders: AddressList;
  exceptRecipients: AddressList;
  exceptClasses: ReadonlySet<string>;
}

export interface CompiledClass {
  name: string;
  groups: readonly string[];
  attribute: "category" | "mail_host" | null;
  values: ReadonlySet<string>;
}

export interface GreylistSettings {
  enabled: boolean;
  mode: Mode;
  delayMs: number;
  retryWindowMs: number;
  maxAgeMs: number;
  autoWhitelistAfter: number;
  ipv4Prefix: number;
  ipv6Prefix: number;
  exemptNetworks: AllowList;
  /** Lower-case domain names without a leading dot; a client name matches itself and its sub-domains. */
  exemptClientNames: readonly string[];
  exemptRecipients: AddressList;
  header: boolean;
  message: string;
}

export interface ProtectedListSettings {
  group: string;
  allowedGroups: readonly string[];
  allowedLogins: ReadonlySet<string>;
  allowedNetworks: AllowList;
  allowedSenders: AddressList;
}

export interface ProtectedListsSettings {
  fromDirectory: boolean;
  mode: Mode;
  allowedNetworks: AllowList;
  /** Configured lists by lower-case group name. */
  lists: ReadonlyMap<string, ProtectedListSettings>;
}

export interface BurstSettings {
  enabled: boolean;
  mode: Mode;
  intervalMs: number;
  baselineIntervals: number;
  factor: number;
  minRecipients: number;
  minDistinctRecipients: number;
  alertCommand: readonly string[];
  alertTimeoutMs: number;
  message: string;
}

export interface PolicySettings {
  mode: Mode;
  failureAction: FailureAction;
  rules: readonly CompiledRule[];
  classes: readonly CompiledClass[];
  greylist: GreylistSettings;
  protectedLists: ProtectedListsSettings;
  burst: BurstSettings;
  transactionTimeoutMs: number;
  recipientDelimiters: string;
}

export interface PolicyConfigIssue {
  path: string;
  message: string;
  fix: string;
}

export type CompileResult =
  | { ok: true; settings: PolicySettings }
  | { ok: false; errors: PolicyConfigIssue[] };

export function compilePolicy(config: DeepReadonly<Config>): CompileResult {
  const policyd = config.policyd;
  const errors: PolicyConfigIssue[] = [];
  const classNames = new Set(policyd.classes.map((entry) => entry.name));
  const knownClasses = [...classNames].join(", ") || "none yet";
  const checkClass = (name: string, path: string) => {
    if (!classNames.has(name)) {
      errors.push({
        path,
        message: `class ${name} is not defined`,
        fix: `define it in a [[policyd.classes]] table (defined: ${knownClasses})`,
      });
    }
  };

  const rules = policyd.rules.map((rule, index): CompiledRule => {
    const path = `policyd.rules[${index}]`;
    rule.except_classes.forEach((name, position) => {
      checkClass(name, `${path}.except_classes[${position}]`);
    });
    const windows = rule.windows.map((window, position): CompiledWindow => {
      for (const name of Object.keys(window.class_limits)) {
        checkClass(name, `${path}.windows[${position}].class_limits.${name}`);
      }
      return {
        periodMs: window.period,
        limit: window.limit,
        classLimits: new Map(Object.entries(window.class_limits)),
        idPrefix: counterIdPrefix(rule.name, window.period),
      };
    });
    return {
      name: rule.name,
      key: rule.key,
      metric: rule.metric,
      algorithm: rule.algorithm,
      windows,
      action: rule.action,
      message: rule.message,
      mode: rule.mode === "" ? policyd.mode : rule.mode,
      failureAction: rule.failure_action === "" ? policyd.failure_action : rule.failure_action,
      ipv4Prefix: rule.ipv4_prefix,
      ipv6Prefix: rule.ipv6_prefix,
      exceptNetworks: createAllowList(rule.except_networks),
      exceptLogins: new Set(rule.except_logins.map((login) => login.toLowerCase())),
      exceptSenders: new AddressList(rule.except_senders),
      exceptRecipients: new AddressList(rule.except_recipients),
      exceptClasses: new Set(rule.except_classes),
    };
  });

  if (policyd.store.backend === "redis" && !redisConfigured(config.redis)) {
    errors.push({
      path: "policyd.store.backend",
      message: "redis needs a [redis] table with url or sentinels",
      fix: 'set redis.url (e.g. "redis://127.0.0.1:6379/0") or use backend = "memory"',
    });
  }

  const command = policyd.burst.alert_command[0];
  if (command !== undefined && !command.startsWith("/")) {
    errors.push({
      path: "policyd.burst.alert_command[0]",
      message: `${JSON.stringify(command)} is not an absolute path`,
      fix: "name the program by its absolute path; it runs without a shell",
    });
  }

  const greylist = policyd.greylist;
  const lists = policyd.protected_lists;
  const burst = policyd.burst;
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    settings: {
      mode: policyd.mode,
      failureAction: policyd.failure_action,
      rules,
      classes: policyd.classes.map((entry) => ({
        name: entry.name,
        groups: [...entry.groups],
        attribute: entry.attribute === "" ? null : entry.attribute,
        values: new Set(entry.values.map((value) => value.toLowerCase())),
      })),
      greylist: {
        enabled: greylist.enabled,
        mode: greylist.mode === "" ? policyd.mode : greylist.mode,
        delayMs: greylist.delay,
        retryWindowMs: greylist.retry_window,
        maxAgeMs: greylist.max_age,
        autoWhitelistAfter: greylist.auto_whitelist_after,
        ipv4Prefix: greylist.ipv4_prefix,
        ipv6Prefix: greylist.ipv6_prefix,
        exemptNetworks: createAllowList(greylist.exempt_networks),
        exemptClientNames: greylist.exempt_client_names.map((name) => name.toLowerCase().replace(/^\./, "")),
        exemptRecipients: new AddressList(greylist.exempt_recipients),
        header: greylist.header,
        message: greylist.message,
      },
      protectedLists: {
        fromDirectory: lists.from_directory,
        mode: lists.mode === "" ? policyd.mode : lists.mode,
        allowedNetworks: createAllowList(lists.allowed_networks),
        lists: new Map(
          lists.lists.map((list) => [
            list.group.toLowerCase(),
            {
              group: list.group,
              allowedGroups: [...list.allowed_groups],
              allowedLogins: new Set(list.allowed_logins.map((login) => login.toLowerCase())),
              allowedNetworks: createAllowList(list.allowed_networks),
              allowedSenders: new AddressList(list.allowed_senders),
            },
          ]),
        ),
      },
      burst: {
        enabled: burst.enabled,
        mode: burst.mode === "" ? policyd.mode : burst.mode,
        intervalMs: burst.interval,
        baselineIntervals: burst.baseline_intervals,
        factor: burst.factor,
        minRecipients: burst.min_recipients,
        minDistinctRecipients: burst.min_distinct_recipients,
        alertCommand: [...burst.alert_command],
        alertTimeoutMs: burst.alert_timeout,
        message: burst.message,
      },
      transactionTimeoutMs: policyd.transaction_timeout,
      recipientDelimiters: config.directory.recipient_delimiter,
    },
  };
}

/** The limit of one window for a principal of class `className` (null: no class). */
/** What every counter id of one rule window starts with (limits.ts counterId); compiled once per window. */
export function counterIdPrefix(ruleName: string, periodMs: number): string {
  return `rl:${ruleName}:${periodMs}:`;
}

export function windowLimit(window: CompiledWindow, className: string | null): number {
  if (className === null) return window.limit;
  return window.classLimits.get(className) ?? window.limit;
}
