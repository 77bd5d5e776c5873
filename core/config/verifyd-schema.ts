/**
 * verifyd's own keys under [verifyd], beside the listener keys every daemon
 * shares (schema.ts daemonSection): how often the snapshot is checked, the
 * Dovecot userdb/passdb dict ([verifyd.dovecot]) and the live LDAP lookup
 * for addresses created since the last sync ([verifyd.live_ldap]).
 * Documented in deploy/emailng.example.toml.
 */
import { z } from "zod";
import { listenerSchema } from "./listener-config.js";
import { section } from "./section.js";
import { duration, integer } from "./units.js";

/** A home or mail location template: %u (user name), %n (local part), %d (domain), %% (a percent sign). */
function pathTemplate() {
  return z
    .string()
    .max(1024)
    .refine((text) => !/%[^und%]/.test(text) && !/%$/.test(text), {
      message: "knows only %u, %n, %d and %%",
      params: { fix: 'write e.g. "/var/vmail/%d/%n"' },
    })
    .default("");
}

const dovecotSection = section({
  // Dovecot dict listeners; [] = no userdb/passdb service (relays).
  listen: z.array(listenerSchema).default([]),
  // The user name Dovecot continues with ("user" field): the login or the primary address.
  username: z.enum(["login", "address"]).default("login"),
  // Used when the directory has no uidNumber/gidNumber; 0 = leave it to Dovecot's mail_uid/mail_gid.
  uid: integer({ default: 0, min: 0, max: 4_294_967_294 }),
  gid: integer({ default: 0, min: 0, max: 4_294_967_294 }),
  home: pathTemplate(),
  mail_location: pathTemplate(),
  // Front-end IMAP/ManageSieve proxies (dict name "proxy"): back-ends for users without a mail host.
  proxy_backends: z.array(z.string().min(1).max(255)).default([]),
});

const liveLdapSection = section({
  enabled: z.boolean().default(false),
  // How long an address LDAP did not know is answered NOTFOUND without asking again.
  negative_ttl: duration({ default: "60s", min: "1s", max: "1h" }),
  // How long a user found live is answered without asking again (until the next snapshot has it).
  positive_ttl: duration({ default: "5m", min: "1s", max: "1d" }),
  cache_entries: integer({ default: 10_000, min: 100, max: 1_000_000 }),
  // Live lookups in flight at once; more wait for the snapshot answer (TEMP) instead of piling onto LDAP.
  max_concurrent: integer({ default: 8, min: 1, max: 256 }),
});

export const verifydSettings = {
  // How often the snapshot's metadata is read to notice a new version.
  snapshot_check_interval: duration({ default: "2s", min: "100ms", max: "5m" }),
  dovecot: dovecotSection,
  live_ldap: liveLdapSection,
} satisfies z.core.$ZodLooseShape;
