/**
 * The [sieve] table used by `emailng sieve …`: which Sieve extensions the
 * checker accepts, where included scripts live, the global spam-filing
 * policy that `sieve render-global` turns into a script, and the
 * ManageSieve client defaults. Documented in deploy/emailng.example.toml.
 */
import { z } from "zod";
import { optionalAbsolutePath } from "./fields.js";
import { section } from "./section.js";
import { duration, integer } from "./units.js";

/** A header field name (RFC 5322 ftext), as Sieve's addheader and header tests need. */
function headerName(defaultValue: string) {
  return z
    .string()
    .refine((text) => /^[\x21-\x39\x3b-\x7e]+$/.test(text), {
      message: "is not a header field name",
      params: { fix: 'use printable ASCII without spaces or ":", e.g. "X-Spam-Flag"' },
    })
    .default(defaultValue);
}

/** Text placed inside a quoted Sieve string: one line, no control characters. */
const oneLine = z.string().refine((text) => !/[\x00-\x1f\x7f]/.test(text), {
  message: "contains a control character or line break",
  params: { fix: "write it on one line" },
});

const spamSection = section({
  folder: oneLine.min(1).max(255).default("Junk"),
  subject_tags: z.array(oneLine.min(1).max(64)).max(32).default(["[SPAM]", "[.SPAM.]", "[..SPAM..]"]),
  flag_header: headerName("X-Spam-Flag"),
  flag_value: oneLine.max(64).default("YES"),
  create_folder: z.boolean().default(true),
  mark_seen: z.boolean().default(false),
  info_header: z
    .string()
    .refine((text) => text === "" || /^[\x21-\x39\x3b-\x7e]+$/.test(text), {
      message: "is not a header field name",
      params: { fix: 'use e.g. "X-Spam-Filed", or "" for none' },
    })
    .default(""),
  info_value: oneLine.max(200).default("filed by the global spam rule"),
});

const managesieveSection = section({
  host: z
    .string()
    .min(1)
    .max(253)
    .refine((text) => !/[\s/]/.test(text), {
      message: "is not a host name or address",
      params: { fix: 'e.g. "mail.example.org" or "127.0.0.1"' },
    })
    .default("127.0.0.1"),
  port: integer({ default: 4190, min: 1, max: 65535 }),
  starttls: z.boolean().default(true),
  ca_file: optionalAbsolutePath(),
  tls_server_name: z.string().max(253).default(""),
  credentials_file: optionalAbsolutePath(),
  timeout: duration({ default: "30s", min: "1s", max: "10m" }),
});

export const sieveSection = section({
  extensions: z.array(z.string().min(1).max(64)).max(64).default([]),
  include_dir: optionalAbsolutePath(),
  global_dir: optionalAbsolutePath(),
  max_script_size: integer({ default: 1_048_576, min: 1024, max: 16 * 1_048_576 }),
  spam: spamSection,
  managesieve: managesieveSection,
});
