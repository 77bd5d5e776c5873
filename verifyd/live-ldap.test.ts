import pino from "pino";
import { describe, expect, it } from "vitest";
import type { DomainSet } from "../core/directory/model.js";
import { TransientError } from "../core/errors.js";
import type { LdapConnection } from "../core/ldap/client.js";
import { defaultMapping, type RawEntry } from "../core/ldap/mapping.js";
import { LiveLdap } from "./live-ldap.js";

const DOMAINS: DomainSet = { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] };
const BASE = "dc=cs,dc=example,dc=org";

/** An in-memory directory behind the LdapConnection interface, counting searches; `gate` holds answers back. */
function fakeLdap(entries: Record<string, RawEntry>) {
  const state = { searches: 0, connects: 0, failNext: false, gate: null as Promise<void> | null };
  const connection: LdapConnection = {
    url: "ldap://fake",
    pageSize: 100,
    async pagedSearch(_base, filter) {
      state.searches += 1;
      if (state.gate !== null) await state.gate;
      if (state.failNext) {
        state.failNext = false;
        throw new TransientError("transient.timeout", "slow server");
      }
      return Object.entries(entries)
        .filter(([name]) => filter.includes(`=${name})`))
        .map(([, entry]) => entry);
    },
    async close() {},
  };
  return {
    state,
    connect: async () => {
      state.connects += 1;
      return connection;
    },
  };
}

const newbie: RawEntry = {
  dn: `uid=newbie,ou=people,${BASE}`,
  objectClass: ["inetOrgPerson"],
  uid: ["newbie"],
  mail: ["newbie@cs.example.org"],
};

function live(
  ldap: ReturnType<typeof fakeLdap>,
  clock: { now: number },
  extra: { maxConcurrent?: number; maxEntries?: number } = {},
) {
  return new LiveLdap({
    connect: ldap.connect,
    mapping: defaultMapping(BASE),
    negativeTtlMs: 60_000,
    positiveTtlMs: 300_000,
    maxEntries: extra.maxEntries ?? 100,
    maxConcurrent: extra.maxConcurrent ?? 8,
    log: pino({ level: "silent" }),
    now: () => clock.now,
  });
}

describe("LiveLdap", () => {
  it("finds a user by login or address and remembers both answers for their TTL", async () => {
    const ldap = fakeLdap({ newbie, "newbie@cs.example.org": newbie });
    const clock = { now: 0 };
    const lookups = live(ldap, clock);
    expect((await lookups.lookup("newbie@cs.example.org", DOMAINS))?.login).toBe("newbie");
    expect(await lookups.lookup("ghost@cs.example.org", DOMAINS)).toBeNull();
    expect(ldap.state.searches).toBe(2);
    await lookups.lookup("NEWBIE@cs.example.org", DOMAINS);
    await lookups.lookup("ghost@cs.example.org", DOMAINS);
    expect(ldap.state.searches).toBe(2);
    clock.now = 61_000; // negative answer expired, positive not
    await lookups.lookup("ghost@cs.example.org", DOMAINS);
    await lookups.lookup("newbie@cs.example.org", DOMAINS);
    expect(ldap.state.searches).toBe(3);
    lookups.clear();
    await lookups.lookup("newbie@cs.example.org", DOMAINS);
    expect(ldap.state.searches).toBe(4);
  });

  it("shares one search among concurrent lookups of the same name", async () => {
    const ldap = fakeLdap({ newbie });
    let open: () => void = () => {};
    ldap.state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const lookups = live(ldap, { now: 0 });
    const both = Promise.all([lookups.lookup("newbie", DOMAINS), lookups.lookup("newbie", DOMAINS)]);
    open();
    const [first, second] = await both;
    expect(first?.login).toBe("newbie");
    expect(second).toBe(first);
    expect(ldap.state.searches).toBe(1);
  });

  it("refuses (TransientError) beyond max_concurrent instead of piling onto LDAP", async () => {
    const ldap = fakeLdap({});
    let open: () => void = () => {};
    ldap.state.gate = new Promise((resolve) => {
      open = resolve;
    });
    const lookups = live(ldap, { now: 0 }, { maxConcurrent: 1 });
    const first = lookups.lookup("a@cs.example.org", DOMAINS);
    await expect(lookups.lookup("b@cs.example.org", DOMAINS)).rejects.toBeInstanceOf(TransientError);
    open();
    expect(await first).toBeNull();
  });

  it("never turns an LDAP error into 'not found', and reconnects on the next lookup", async () => {
    const ldap = fakeLdap({ newbie });
    const lookups = live(ldap, { now: 0 });
    ldap.state.failNext = true;
    await expect(lookups.lookup("newbie", DOMAINS)).rejects.toBeInstanceOf(TransientError);
    expect((await lookups.lookup("newbie", DOMAINS))?.login).toBe("newbie");
    expect(ldap.state.connects).toBe(2);
  });

  it("keeps at most cache_entries answers, dropping the least recently used", async () => {
    const ldap = fakeLdap({});
    const lookups = live(ldap, { now: 0 }, { maxEntries: 2 });
    await lookups.lookup("a@cs.example.org", DOMAINS);
    await lookups.lookup("b@cs.example.org", DOMAINS);
    await lookups.lookup("a@cs.example.org", DOMAINS); // a is now the most recent
    await lookups.lookup("c@cs.example.org", DOMAINS); // evicts b
    expect(lookups.size).toBe(2);
    const before = ldap.state.searches;
    await lookups.lookup("a@cs.example.org", DOMAINS);
    expect(ldap.state.searches).toBe(before);
    await lookups.lookup("b@cs.example.org", DOMAINS);
    expect(ldap.state.searches).toBe(before + 1);
  });
});
