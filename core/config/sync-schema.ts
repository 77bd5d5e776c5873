/**
 * Configuration of the directory itself and of sync-agent: the domains we
 * serve, how LDAP entries map onto the directory model, legacy files, the
 * safety rail, exports, replication to relays, scheduling and mailbox
 * clean-up. Kept apart from schema.ts only for size; the same rules hold
 * (every key has a default and bounds, every table is strict).
 */
import cron from "node-cron";
import { z } from "zod";
import { absolutePath, optionalAbsolutePath, optionalTcpAddress } from "./fields.js";
import { section } from "./section.js";
import { duration, integer } from "./units.js";

const domainName = z
  .string()
  .transform((text) => text.trim().toLowerCase())
  .refine((text) => /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(text), {
    error: "is not a domain name",
    params: { fix: 'write a fully qualified domain such as "cs.example.org"' },
  });

export const directorySection = section({
  primary_domain: z.union([z.literal(""), domainName]).default(""),
  alias_domains: z.array(domainName).default([]),
  virtual_domains: z.array(domainName).default([]),
  recipient_delimiter: z
    .string()
    .max(8)
    .refine((text) => !/[@\s]/.test(text), {
      error: "must not contain @ or white space",
      params: { fix: 'use Postfix\'s recipient_delimiter, e.g. "+" or "+-"' },
    })
    .default("+"),
  max_expansion: integer({ default: 10_000, min: 1, max: 1_000_000 }),
  max_depth: integer({ default: 16, min: 1, max: 100 }),
});

/** An LDAP attribute name (or "" where the mapping allows leaving it out). */
const attribute = (fallback: string) =>
  z
    .string()
    .refine((text) => text === "" || /^[A-Za-z][A-Za-z0-9-]*$/.test(text), {
      error: "is not an LDAP attribute name",
      params: { fix: 'use a name such as "mail", or "" to leave it out' },
    })
    .default(fallback);

const filter = (fallback: string) =>
  z
    .string()
    .refine((text) => text.startsWith("(") && text.endsWith(")"), {
      error: "is not an LDAP filter",
      params: { fix: 'write a parenthesised filter, e.g. "(objectClass=inetMailUser)"' },
    })
    .default(fallback);

export const ldapUsersSection = section({
  base: z.string().default(""),
  filter: filter("(objectClass=inetMailUser)"),
  login: attribute("uid"),
  primary_address: attribute("mail"),
  alternate_addresses: z.array(attribute("")).default(["mailAlternateAddress"]),
  forwarding_addresses: attribute("mailForwardingAddress"),
  quota: attribute("mailQuota"),
  quota_unit: integer({ default: 1, min: 1, max: 1024 ** 4 }),
  status: attribute("mailUserStatus"),
  inactive_values: z.array(z.string()).default(["inactive", "disabled"]),
  inactive_bitmask: integer({ default: 0, min: 0, max: 2 ** 31 - 1 }),
  category: attribute("employeeType"),
  home: attribute("homeDirectory"),
  uid_number: attribute("uidNumber"),
  gid_number: attribute("gidNumber"),
  mail_location: attribute(""),
  alternate_storage: attribute(""),
  mail_host: attribute(""),
  password_hash: attribute("userPassword"),
  member_of: attribute(""),
});

export const ldapGroupsSection = section({
  base: z.string().default(""),
  filter: filter("(objectClass=inetMailGroup)"),
  name: attribute("cn"),
  addresses: z.array(attribute("")).default(["mail", "mailAlternateAddress"]),
  member_logins: attribute("memberUid"),
  member_dns: attribute("member"),
  allowed_posters: attribute("mailAllowedBroadcaster"),
  status: attribute("mailUserStatus"),
});

const cronExpression = z.string().refine((text) => text === "" || cron.validate(text), {
  error: "is not a cron expression",
  params: { fix: 'use five or six fields, e.g. "*/30 * * * * *" (every 30 s) or "" to disable' },
});

const httpUrl = z
  .string()
  .refine((text) => text === "" || /^https?:\/\/[^\s]+$/.test(text), {
    error: "is not an http:// or https:// URL",
    params: { fix: 'write e.g. "https://mailsync.cs.example.org:8443/snapshot"' },
  })
  .default("");

export const syncSection = section({
  precedence: z
    .array(z.enum(["ldap", "legacy"]))
    .length(2)
    .refine((list) => new Set(list).size === 2, {
      error: "must name ldap and legacy once each",
      params: { fix: 'write ["ldap", "legacy"] or ["legacy", "ldap"]' },
    })
    .default(["ldap", "legacy"]),
  max_drop_percent: integer({ default: 10, min: 0, max: 100 }),
  lock_file: absolutePath().default("/var/lib/emailng/sync.lock"),
  modify_timestamp: attribute("modifyTimestamp"),
  legacy: section({
    alias_files: z.array(absolutePath()).default([]),
    virtual_maps: z.array(absolutePath()).default([]),
    domain_lists: z.array(z.strictObject({ domain: domainName, path: absolutePath() })).default([]),
  }),
  export: section({
    directory: optionalAbsolutePath(),
    map_type: z.enum(["", "hash", "btree", "cdb", "lmdb"]).default(""),
    postmap_command: absolutePath().default("/usr/sbin/postmap"),
    postfix_config_directory: optionalAbsolutePath(),
    passwd_file: optionalAbsolutePath(),
  }),
  serve: section({
    listen: optionalTcpAddress(),
    token_file: optionalAbsolutePath(),
    tls_cert_file: optionalAbsolutePath(),
    tls_key_file: optionalAbsolutePath(),
  }),
  pull: section({
    from: httpUrl,
    token_file: optionalAbsolutePath(),
    ca_file: optionalAbsolutePath(),
    timeout: duration({ default: "30s", min: "1s", max: "10m" }),
  }),
  schedule: section({
    full: cronExpression.default("0 */15 * * * *"),
    incremental: cronExpression.default("*/30 * * * * *"),
    pull: cronExpression.default(""),
    cleanup: cronExpression.default("0 30 3 * * *"),
  }),
});

export const cleanupSection = section({
  doveadm: absolutePath().default("/usr/bin/doveadm"),
  doveadm_config: optionalAbsolutePath(),
  mail_host: z.string().default(""),
  rules: z
    .array(
      z.strictObject({
        mailbox: z.string().min(1),
        older_than: duration({ default: "30d", min: "1d", max: "3650d" }),
        group: z.string().default(""),
        date: z.enum(["saved", "received"]).default("saved"),
      }),
    )
    .default([]),
});
