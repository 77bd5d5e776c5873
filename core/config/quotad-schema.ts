/**
 * quotad's own keys under [quotad], beside the listener keys every daemon
 * shares (schema.ts daemonSection): the replies (quota-status compatible),
 * the group policy, default limit and grace, how old usage may be before it
 * is ignored, which name Dovecot uses for a user, the usage store (SQLite
 * or Redis) and the dict listeners receiving Dovecot's quota_clone writes.
 * Documented in deploy/emailng.example.toml.
 *
 * Replies are checked here with the same parser Postfix's side of the codec
 * uses, so a typo in a reply stops the program at start instead of turning
 * into Postfix's "451 4.3.5 Server configuration error" on the first mail;
 * the reply used when quotad cannot decide may only be DUNNO or temporary.
 */
import { z } from "zod";
import { checkPolicyAction, type PolicyAction, parsePolicyAction } from "../protocols/policy-reply.js";
import { absolutePath } from "./fields.js";
import { listenerSchema } from "./listener-config.js";
import { section } from "./section.js";
import { duration, integer, parseSize, size } from "./units.js";

type Sink = { addIssue(issue: { code: "custom"; message: string; params: { fix: string } }): void };

function refuse(context: Sink, message: string, fix: string): never {
  context.addIssue({ code: "custom", message, params: { fix } });
  return z.NEVER;
}

const REPLY_FIX =
  'write a Postfix access action, e.g. "DUNNO", "552 5.2.2 Mailbox is full" or "DEFER_IF_PERMIT Try later"';

/** One policy action as an administrator writes it after `action=`. */
function policyReply(fallback: string, allowed?: (action: PolicyAction) => string | undefined) {
  return z
    .string()
    .transform((text, context): PolicyAction => {
      const trimmed = text.trim();
      if (trimmed === "" || /[\r\n]/.test(trimmed)) {
        return refuse(context, `${JSON.stringify(text)} is not a policy action`, REPLY_FIX);
      }
      const parsed = parsePolicyAction(trimmed);
      if (!parsed.ok) return refuse(context, parsed.reason, REPLY_FIX);
      const checked = checkPolicyAction(parsed.action);
      if (!checked.ok) return refuse(context, checked.reason, REPLY_FIX);
      const problem = allowed?.(parsed.action);
      if (problem !== undefined) return refuse(context, problem, REPLY_FIX);
      return parsed.action;
    })
    .prefault(fallback);
}

/** The answer when quotad cannot decide: never a permanent refusal (DESIGN: never bounce the valid). */
function temporaryOnly(action: PolicyAction): string | undefined {
  switch (action.action) {
    case "DUNNO":
    case "DEFER":
    case "DEFER_IF_PERMIT":
      return undefined;
    case "REPLY":
      return action.code >= 400 && action.code < 500
        ? undefined
        : `${action.code} is permanent; this reply must be DUNNO or temporary`;
    default:
      return `${action.action} is not allowed here: use DUNNO, DEFER_IF_PERMIT, DEFER or a 4xx reply`;
  }
}

/** OK and DUNNO only: anything else would refuse mail that fits. */
function successOnly(action: PolicyAction): string | undefined {
  return action.action === "DUNNO" || action.action === "OK"
    ? undefined
    : `${action.action} is not allowed as the success reply: use DUNNO (later restrictions still run) or OK`;
}

export type QuotaGrace = { kind: "percent"; percent: number } | { kind: "bytes"; bytes: number };

/** "10%" of each user's limit, or a size ("512K", "0"). */
function grace(fallback: string) {
  const fix = 'write a percentage of the limit such as "10%", or a size such as "1M"; "0" for none';
  return z
    .unknown()
    .transform((raw, context): QuotaGrace => {
      const text = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : undefined;
      if (text === undefined)
        return refuse(context, `expected a percentage or a size, got ${typeof raw}`, fix);
      const percent = /^([0-9]{1,3})%$/.exec(text);
      if (percent) {
        const value = Number(percent[1]);
        if (value > 100) return refuse(context, `${text} is above the maximum 100%`, fix);
        return { kind: "percent", percent: value };
      }
      const bytes = parseSize(text);
      if (bytes === undefined)
        return refuse(context, `${JSON.stringify(text)} is not a percentage or a size`, fix);
      if (bytes > 1024 ** 4) return refuse(context, `${text} is above the maximum 1024G`, fix);
      return { kind: "bytes", bytes };
    })
    .prefault(fallback);
}

/** Dovecot's redis dict splits its URI at ':' and knows no escape, so the prefix cannot hold one. */
const redisKeyPrefix = z
  .string()
  .max(64)
  .refine((text) => !/[:\s\x00-\x1f\x7f*?[\]\\]/.test(text), {
    error: "must not contain ':', white space, control characters or glob characters (* ? [ ] \\)",
    params: {
      fix: 'use letters, digits and / . - _, e.g. "quota/"; Dovecot\'s redis prefix= must be the same',
    },
  });

export const quotadSettings = {
  // The limit of a user whose directory entry has no quota; 0 = not checked.
  default_limit: size({ default: "0", min: "0", max: "1024G" }),
  grace: grace("10%"),
  usage_max_age: duration({ default: "7d", min: "1m", max: "365d" }),
  dovecot_username: z.enum(["login", "primary_address"]).default("login"),
  group_policy: z.enum(["accept", "any", "all"]).default("all"),
  several_recipients: z.enum(["accept", "refuse"]).default("accept"),
  snapshot_check_interval: duration({ default: "2s", min: "100ms", max: "5m" }),
  replies: section({
    success: policyReply("DUNNO", successOnly),
    over_quota: policyReply("552 5.2.2 Mailbox is full"),
    too_large: policyReply("552 5.3.4 Message is too big for this mailbox"),
    not_ours: policyReply("DUNNO"),
    unavailable: policyReply("DEFER_IF_PERMIT Mailbox quota cannot be checked now", temporaryOnly),
  }),
  usage: section({
    backend: z.enum(["sqlite", "redis"]).default("sqlite"),
    path: absolutePath().default("/var/lib/emailng/quota-usage.sqlite"),
    check_interval: duration({ default: "2s", min: "100ms", max: "5m" }),
    redis_key_prefix: redisKeyPrefix.default("quota/"),
  }),
  feed: section({
    listen: z.array(listenerSchema).default([]),
    dict_name: z
      .string()
      .max(100)
      .refine((text) => !/[\s\x00-\x1f\x7f]/.test(text), {
        error: "must not contain white space or control characters",
        params: { fix: 'use the name after the socket path in quota_clone_dict, e.g. "quotaclone"' },
      })
      .default("quotaclone"),
    max_connections: integer({ default: 200, min: 1, max: 100_000 }),
    // Dovecot's dict client gives up after 30 s (compiled in); answer well before.
    request_timeout: duration({ default: "5s", min: "100ms", max: "25s" }),
    idle_timeout: duration({ default: "60s", min: "1s", max: "1h" }),
  }),
} satisfies z.core.$ZodLooseShape;
