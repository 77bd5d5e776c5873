/**
 * The whole configuration of every emailng program, declared once.
 *
 * One TOML file serves all programs; each reads the sections it needs. Every
 * key has a type, a default, a unit and bounds, and every table is strict, so
 * a misspelt key is an error rather than a setting silently left at its
 * default. deploy/emailng.example.toml documents each key; a test walks this
 * schema and fails when a key is missing there.
 *
 * Adding a program's keys: give `daemonSection` an `extra` shape (or add a
 * new top-level `section(...)`), then document the keys in the example file.
 *
 * Timeouts nest (CONVENTIONS 9): LDAP timeout < request_timeout < the peer's
 * own timeout. Bounds below encode the peers' limits measured in
 * docs/protocols: Postfix waits 100 s for a policy server and closes idle
 * policy connections after 300 s; it closes idle socketmap connections after
 * 10 s; Dovecot's dict client gives up after 30 s.
 */
import { z } from "zod";
import { absolutePath, ldapUrl, optionalAbsolutePath, optionalTcpAddress } from "./fields.js";
import { listenerSchema } from "./listener-config.js";
import { policydSettings } from "./policyd-schema.js";
import { quotadSettings } from "./quotad-schema.js";
import { redisSection } from "./redis-schema.js";
import { section } from "./section.js";
import { sieveSection } from "./sieve-schema.js";
import {
  cleanupSection,
  directorySection,
  ldapGroupsSection,
  ldapUsersSection,
  syncSection,
} from "./sync-schema.js";
import { duration, integer, type UnitBounds } from "./units.js";
import { verifydSettings } from "./verifyd-schema.js";

export { section } from "./section.js";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const logSection = section({
  level: z.enum(LOG_LEVELS).default("info"),
});

const ldapSection = z
  .strictObject({
    urls: z.array(ldapUrl()).default([]),
    starttls: z.boolean().default(false),
    ca_file: optionalAbsolutePath(),
    bind_dn: z.string().default(""),
    bind_password_file: optionalAbsolutePath(),
    base_dn: z.string().default(""),
    timeout: duration({ default: "5s", min: "100ms", max: "60s" }),
    connect_timeout: duration({ default: "3s", min: "100ms", max: "30s" }),
    page_size: integer({ default: 500, min: 1, max: 10_000 }),
    users: ldapUsersSection,
    groups: ldapGroupsSection,
  })
  .superRefine((ldap, context) => {
    const issue = (path: string, message: string, fix: string) =>
      context.addIssue({ code: "custom", path: [path], message, params: { fix } });
    if (ldap.urls.length > 0 && ldap.base_dn === "") {
      issue("base_dn", "is required when ldap.urls is set", 'set it, e.g. "dc=cs,dc=example,dc=org"');
    }
    if (ldap.bind_dn !== "" && ldap.bind_password_file === "") {
      issue(
        "bind_password_file",
        "is required when bind_dn is set",
        "point it at a file holding the bind password",
      );
    }
    if (ldap.bind_dn === "" && ldap.bind_password_file !== "") {
      issue(
        "bind_dn",
        "is required when bind_password_file is set",
        "set the DN to bind as, or remove the file",
      );
    }
    if (ldap.starttls && ldap.urls.some((url) => url.startsWith("ldaps:"))) {
      issue(
        "starttls",
        "cannot be used with ldaps:// URLs",
        "use ldap:// URLs with starttls, or drop starttls",
      );
    }
  })
  .prefault({});

const snapshotSection = section({
  path: absolutePath().default("/var/lib/emailng/snapshot.sqlite"),
  max_age: duration({ default: "1h", min: "1m", max: "30d" }),
});

export interface DaemonDefaults {
  /** Default listener: a UNIX socket at this path. */
  socket: string;
  requestTimeout: UnitBounds;
  idleTimeout: UnitBounds;
}

/**
 * The keys every daemon shares: where it listens, how many connections it
 * holds, its per-request budget, its idle timeout and its metrics endpoint.
 */
export function daemonSection<Extra extends z.core.$ZodLooseShape>(
  defaults: DaemonDefaults,
  extra: Extra,
  options: { emptyListenAllowed?: boolean } = {},
) {
  const listeners = z.array(listenerSchema);
  return section({
    // `listen = []` is allowed only where the daemon has other work (quotad
    // on a back-end: only the quota_clone feed); left out, the default socket.
    listen: (options.emptyListenAllowed === true
      ? listeners
      : listeners.min(1, { error: "needs at least one listener" })
    ).prefault([{ unix: defaults.socket }]),
    max_connections: integer({ default: 1000, min: 1, max: 100_000 }),
    request_timeout: duration(defaults.requestTimeout),
    idle_timeout: duration(defaults.idleTimeout),
    metrics: section({ listen: optionalTcpAddress() }),
    ...extra,
  });
}

// Policy delegation: replies must come well before Postfix's 100 s timeout
// (smtpd blocks the SMTP client meanwhile), and an idle connection must be
// closed by Postfix (300 s max_idle), never by us first.
const POLICY_REQUEST_TIMEOUT: UnitBounds = { default: "10s", min: "100ms", max: "60s" };
const POLICY_IDLE_TIMEOUT: UnitBounds = { default: "330s", min: "301s", max: "2h" };

export const configSchema = z
  .strictObject({
    log: logSection,
    ldap: ldapSection,
    snapshot: snapshotSection,
    directory: directorySection,
    sync: syncSection,
    cleanup: cleanupSection,
    verifyd: daemonSection(
      {
        socket: "/run/emailng/verifyd.sock",
        // Dovecot's dict client gives up after 30 s (compiled in); answer TEMP well before.
        requestTimeout: { default: "5s", min: "100ms", max: "25s" },
        // Postfix drops idle socketmap connections after 10 s; keep ours open longer.
        idleTimeout: { default: "30s", min: "11s", max: "1h" },
      },
      verifydSettings,
    ),
    policyd: daemonSection(
      {
        socket: "/run/emailng/policyd.sock",
        requestTimeout: POLICY_REQUEST_TIMEOUT,
        idleTimeout: POLICY_IDLE_TIMEOUT,
      },
      policydSettings,
    ),
    quotad: daemonSection(
      {
        socket: "/run/emailng/quotad.sock",
        requestTimeout: POLICY_REQUEST_TIMEOUT,
        idleTimeout: POLICY_IDLE_TIMEOUT,
      },
      quotadSettings,
      // A back-end's quotad only receives Dovecot's quota_clone writes.
      { emptyListenAllowed: true },
    ),
    redis: redisSection,
    sieve: sieveSection,
  })
  .superRefine((config, context) => {
    if (config.quotad.listen.length === 0 && config.quotad.feed.listen.length === 0) {
      context.addIssue({
        code: "custom",
        path: ["quotad", "listen"],
        message: "is empty and so is [quotad.feed] listen: quotad would have nothing to answer",
        params: {
          fix: "give [[quotad.listen]] a policy socket (relays) or [[quotad.feed.listen]] the quota_clone socket (back-ends)",
        },
      });
    }
  });

export type Config = z.output<typeof configSchema>;
export type DaemonName = "verifyd" | "policyd" | "quotad";
export type DaemonConfig = Config[DaemonName];
