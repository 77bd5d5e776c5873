/**
 * The "Postfix asks LDAP directly" anchor, driven like the other targets:
 * each connection is one ldapts client bound as the mail reader, sending one
 * search at a time — what Postfix's ldap_table does for relay_recipient_maps
 * with `query_filter = (|(mail=%s)(mailAlternateAddress=%s))` and
 * `result_attribute = mail` (one connection per Postfix process, one query
 * per lookup). Found or not found are both answers; an LDAP error is an
 * error. Filters are built with ldapts' filter classes, never by string
 * concatenation. ldapts encodes and decodes BER in JavaScript, so this
 * client costs the generator more than libldap costs Postfix: the
 * `postmap -q -` measurement beside it is the C client's figure.
 */
import { Client, EqualityFilter, OrFilter } from "ldapts";
import type { ConnectionFactory } from "./driver.js";

export interface LdapLoadOptions {
  url: string;
  bindDn: string;
  password: string;
  baseDn: string;
  /** Attributes compared with the key, OR-ed (default mail, mailAlternateAddress). */
  attributes?: string[];
  /** Attribute returned (default mail). */
  resultAttribute?: string;
  requestTimeoutMs: number;
}

export function ldapConnectionFactory(keys: readonly string[], options: LdapLoadOptions): ConnectionFactory {
  const attributes = options.attributes ?? ["mail", "mailAlternateAddress"];
  const filters = keys.map(
    (key) =>
      new OrFilter({ filters: attributes.map((attribute) => new EqualityFilter({ attribute, value: key })) }),
  );
  return async () => {
    const client = new Client({
      url: options.url,
      timeout: options.requestTimeoutMs,
      connectTimeout: options.requestTimeoutMs,
    });
    await client.bind(options.bindDn, options.password);
    return {
      async request(index) {
        const { searchEntries } = await client.search(options.baseDn, {
          scope: "sub",
          filter: filters[index % filters.length]!,
          attributes: [options.resultAttribute ?? "mail"],
        });
        return { status: searchEntries.length > 0 ? "found" : "not-found", ok: true };
      },
      close() {
        void client.unbind().catch(() => {});
      },
    };
  };
}
