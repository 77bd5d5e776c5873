/**
 * policyd's own keys under [policyd], beside the listener keys every daemon
 * shares (schema.ts daemonSection): rate-limit rules with their windows and
 * classes, greylisting, protected lists, burst detection, the counter store
 * and the failure policy. Documented in deploy/emailng.example.toml.
 *
 * Cross-key checks (unique rule names, classes that exist, a Redis store
 * with a [redis] table) are made here where the table alone decides, and in
 * policyd/rules.ts where the whole configuration is needed; both run at
 * start, in `emailng config check` and on SIGHUP before anything is swapped.
 */
import { z } from "zod";
import { cidr, namePattern, optionalAbsolutePath } from "./fields.js";
import { section } from "./section.js";
import { duration, integer } from "./units.js";

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME_FIX = "use 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit";

const ruleName = () => namePattern(NAME, "a rule name", NAME_FIX);
const className = () => namePattern(NAME, "a class name", NAME_FIX);

/** "" inherits the [policyd] default. */
const modeOverride = () => z.enum(["", "enforce", "shadow"]).default("");
const failureOverride = () => z.enum(["", "DUNNO", "DEFER_IF_PERMIT"]).default("");

/** A login, an address (user@domain) or a domain ("@domain" or "domain"); case-insensitive. */
const addressPattern = () =>
  namePattern(
    /^[^\s@,]*@?[^\s@,]+$/,
    "an address, @domain or domain",
    'write "user@example.org", "@example.org" or "example.org"',
  );

const loginName = () =>
  namePattern(/^[^\s@,]{1,256}$/, "a login", 'write the SASL login name, e.g. "gpapadop"');

const windowSchema = z.strictObject({
  period: duration({ default: "1h", min: "1s", max: "30d" }),
  limit: integer({ default: 100, min: 0, max: 1_000_000_000_000 }),
  class_limits: z.record(z.string(), integer({ default: 0, min: 0, max: 1_000_000_000_000 })).default({}),
});

const ruleSchema = z
  .strictObject({
    name: ruleName(),
    key: z.enum([
      "sasl_login",
      "sender",
      "sender_domain",
      "client_address",
      "recipient",
      "recipient_domain",
      "global",
    ]),
    metric: z.enum(["messages", "recipients", "bytes"]).default("messages"),
    algorithm: z.enum(["sliding_window", "gcra"]).default("sliding_window"),
    windows: z.array(windowSchema).min(1, { error: "needs at least one window" }),
    action: z.enum(["defer", "reject"]).default("defer"),
    message: z.string().max(200).default(""),
    mode: modeOverride(),
    failure_action: failureOverride(),
    ipv4_prefix: integer({ default: 32, min: 1, max: 32 }),
    ipv6_prefix: integer({ default: 64, min: 1, max: 128 }),
    except_networks: z.array(cidr()).default([]),
    except_logins: z.array(loginName()).default([]),
    except_senders: z.array(addressPattern()).default([]),
    except_recipients: z.array(addressPattern()).default([]),
    except_classes: z.array(className()).default([]),
  })
  .superRefine((rule, context) => {
    const periods = new Set<number>();
    rule.windows.forEach((window, index) => {
      if (periods.has(window.period)) {
        context.addIssue({
          code: "custom",
          path: ["windows", index, "period"],
          message: "the same period is used twice in this rule",
          params: { fix: "give each window of a rule its own period" },
        });
      }
      periods.add(window.period);
    });
  });

const classSchema = z
  .strictObject({
    name: className(),
    groups: z.array(z.string().min(1)).default([]),
    attribute: z.enum(["", "category", "mail_host"]).default(""),
    values: z.array(z.string().min(1)).default([]),
  })
  .superRefine((entry, context) => {
    if (entry.groups.length === 0 && entry.attribute === "") {
      context.addIssue({
        code: "custom",
        path: ["groups"],
        message: "a class needs groups or an attribute",
        params: { fix: 'list directory groups, or set attribute = "category" and values' },
      });
    }
    if (entry.attribute !== "" && entry.values.length === 0) {
      context.addIssue({
        code: "custom",
        path: ["values"],
        message: "is required with attribute",
        params: { fix: 'list the attribute values of this class, e.g. ["student"]' },
      });
    }
  });

const greylistSection = section({
  enabled: z.boolean().default(false),
  mode: modeOverride(),
  delay: duration({ default: "5m", min: "1s", max: "1d" }),
  retry_window: duration({ default: "2d", min: "1m", max: "30d" }),
  max_age: duration({ default: "35d", min: "1h", max: "365d" }),
  auto_whitelist_after: integer({ default: 5, min: 0, max: 1000 }),
  ipv4_prefix: integer({ default: 24, min: 1, max: 32 }),
  ipv6_prefix: integer({ default: 64, min: 1, max: 128 }),
  exempt_networks: z.array(cidr()).default([]),
  exempt_client_names: z
    .array(
      namePattern(
        /^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/,
        "a host or domain name",
        'write e.g. "google.com" (also matches its sub-domains)',
      ),
    )
    .default([]),
  exempt_recipients: z.array(addressPattern()).default([]),
  header: z.boolean().default(true),
  message: z.string().max(200).default("Greylisted, please try again later"),
});

const protectedListSchema = z.strictObject({
  group: z.string().min(1),
  allowed_groups: z.array(z.string().min(1)).default([]),
  allowed_logins: z.array(loginName()).default([]),
  allowed_networks: z.array(cidr()).default([]),
  allowed_senders: z.array(addressPattern()).default([]),
});

const protectedListsSection = section({
  from_directory: z.boolean().default(true),
  mode: modeOverride(),
  allowed_networks: z.array(cidr()).default([]),
  lists: z.array(protectedListSchema).default([]),
});

const burstSection = section({
  enabled: z.boolean().default(false),
  mode: modeOverride(),
  interval: duration({ default: "10m", min: "1s", max: "1d" }),
  baseline_intervals: integer({ default: 144, min: 1, max: 100_000 }),
  factor: integer({ default: 10, min: 1, max: 10_000 }),
  min_recipients: integer({ default: 200, min: 1, max: 100_000_000 }),
  min_distinct_recipients: integer({ default: 100, min: 1, max: 100_000_000 }),
  alert_command: z.array(z.string()).default([]),
  alert_timeout: duration({ default: "10s", min: "100ms", max: "5m" }),
  message: z.string().max(200).default("held: unusual sending volume for this account"),
});

const storeSection = section({
  backend: z.enum(["memory", "redis"]).default("memory"),
  path: optionalAbsolutePath().default("/var/lib/emailng/policyd.sqlite"),
  flush_interval: duration({ default: "1s", min: "10ms", max: "5m" }),
  max_entries: integer({ default: 1_000_000, min: 100, max: 100_000_000 }),
});

export const policydSettings = {
  mode: z.enum(["enforce", "shadow"]).default("enforce"),
  failure_action: z.enum(["DUNNO", "DEFER_IF_PERMIT"]).default("DEFER_IF_PERMIT"),
  snapshot_check_interval: duration({ default: "2s", min: "100ms", max: "5m" }),
  transaction_timeout: duration({ default: "1h", min: "1m", max: "1d" }),
  max_transactions: integer({ default: 100_000, min: 100, max: 10_000_000 }),
  admin_socket: optionalAbsolutePath().default("/run/emailng/policyd-admin.sock"),
  store: storeSection,
  classes: z
    .array(classSchema)
    .default([])
    .superRefine((classes, context) => uniqueNames(classes, "class", context)),
  rules: z
    .array(ruleSchema)
    .default([])
    .superRefine((rules, context) => uniqueNames(rules, "rule", context)),
  greylist: greylistSection,
  protected_lists: protectedListsSection,
  burst: burstSection,
} satisfies z.core.$ZodLooseShape;

function uniqueNames(entries: readonly { name: string }[], what: string, context: z.RefinementCtx): void {
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    if (seen.has(entry.name)) {
      context.addIssue({
        code: "custom",
        path: [index, "name"],
        message: `${what} name ${entry.name} is used twice`,
        params: { fix: `give each ${what} its own name` },
      });
    }
    seen.add(entry.name);
  });
}
