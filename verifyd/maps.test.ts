import { describe, expect, it } from "vitest";
import type { CurrentSnapshot } from "../core/directory/live-snapshot.js";
import type { Directory } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import type { SnapshotMeta } from "../core/directory/snapshot-store.js";
import { encodeSocketmapRequest, type SocketmapReply } from "../core/protocols/socketmap.js";
import { testGroup, testUser } from "../test/harness/directory-builders.js";
import { answerRequest, lookup, lookupMap, RECIPIENT_AMBIGUOUS, RECIPIENT_DELIVERABLE } from "./maps.js";

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: ["example.org"], virtualDomains: ["rise.example"] },
  users: [
    testUser("gpapadop", {
      alternateAddresses: ["papadopoulos.georgios@cs.example.org", "georgios.papadopoulos@rise.example"],
    }),
    testUser("jsmith", { alternateAddresses: ["smith.john@cs.example.org"] }),
    testUser("ekaragia"),
    testUser("dvlachos", {
      alternateAddresses: ["vlachos.dimitrios@cs.example.org"],
      forwardingAddresses: ["dimitris.vlachos@gmail.example"],
    }),
    testUser("keeper", { forwardingAddresses: ["keeper@cs.example.org", "elsewhere@gmail.example"] }),
    testUser("csd4713", { status: "inactive" }),
    testUser("homonym1", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
    testUser("homonym2", { alternateAddresses: ["papadopoulou.maria@cs.example.org"] }),
  ],
  groups: [
    testGroup("csstaff", { memberLogins: ["jsmith", "ekaragia"] }),
    testGroup("cspg", { memberLogins: ["dvlachos", "ekaragia", "csd4713"] }),
    testGroup("csall", {
      addresses: ["csall@cs.example.org", "everyone@cs.example.org"],
      memberGroups: ["csstaff", "cspg"],
      memberAddresses: ["alumni@lists.example"],
      posting: { logins: ["gpapadop"], groups: ["csstaff"] },
    }),
    testGroup("rise", { addresses: ["info@rise.example"], memberLogins: ["gpapadop"] }),
    testGroup("ghosts", { memberLogins: ["csd4713", "nobody"] }),
    testGroup("old", { status: "inactive", memberLogins: ["jsmith"] }),
  ],
};

const meta: SnapshotMeta = {
  format: 1,
  version: 42,
  contentHash: "sha256:test",
  createdAt: "2025-03-01T12:00:00.000Z",
  view: "relay",
  sources: [],
};

const fresh: CurrentSnapshot = { resolver: new Resolver(directory), meta, fresh: true };

const ok = (data: string): SocketmapReply => ({ status: "OK", data });
const NOTFOUND: SocketmapReply = { status: "NOTFOUND" };
const DELIVERABLE = ok(RECIPIENT_DELIVERABLE);

describe("recipient map", () => {
  it.each([
    { name: "primary address", key: "gpapadop@cs.example.org", want: DELIVERABLE },
    { name: "alternate address", key: "papadopoulos.georgios@cs.example.org", want: DELIVERABLE },
    { name: "alias domain form", key: "papadopoulos.georgios@example.org", want: DELIVERABLE },
    { name: "extension", key: "gpapadop+lists@cs.example.org", want: DELIVERABLE },
    { name: "as smtpd sends it (lower case)", key: "Gpapadop@CS.example.org", want: DELIVERABLE },
    { name: "forward", key: "dvlachos@cs.example.org", want: DELIVERABLE },
    { name: "group", key: "csall@cs.example.org", want: DELIVERABLE },
    { name: "group's second address", key: "everyone@cs.example.org", want: DELIVERABLE },
    { name: "virtual-domain member", key: "georgios.papadopoulos@rise.example", want: DELIVERABLE },
    { name: "virtual-domain group", key: "info@rise.example", want: DELIVERABLE },
    { name: "virtual-domain non-member", key: "jsmith@rise.example", want: NOTFOUND },
    { name: "unknown", key: "nobody@cs.example.org", want: NOTFOUND },
    { name: "inactive user", key: "csd4713@cs.example.org", want: NOTFOUND },
    { name: "inactive group", key: "old@cs.example.org", want: NOTFOUND },
    { name: "group without a deliverable member", key: "ghosts@cs.example.org", want: NOTFOUND },
    { name: "not ours", key: "someone@gmail.example", want: NOTFOUND },
    { name: "not an address", key: "just-a-word", want: NOTFOUND },
    { name: "two claimants", key: "papadopoulou.maria@cs.example.org", want: ok(RECIPIENT_AMBIGUOUS) },
  ])("$name: $key", ({ key, want }) => {
    expect(lookup("recipient", key, fresh)).toEqual(want);
  });

  it("names the claimants of an ambiguous address for the log", () => {
    expect(lookupMap("recipient", "papadopoulou.maria@cs.example.org", fresh).problem).toBe(
      "address claimed by user homonym1 and user homonym2",
    );
  });
});

describe("alias map", () => {
  it.each([
    { name: "primary address: nothing to rewrite", key: "gpapadop@cs.example.org", want: NOTFOUND },
    { name: "primary with extension", key: "gpapadop+lists@cs.example.org", want: NOTFOUND },
    {
      name: "alternate → primary",
      key: "papadopoulos.georgios@cs.example.org",
      want: ok("gpapadop@cs.example.org"),
    },
    {
      name: "alternate keeps its extension",
      key: "papadopoulos.georgios+lists@example.org",
      want: ok("gpapadop+lists@cs.example.org"),
    },
    {
      name: "virtual-domain member → primary",
      key: "georgios.papadopoulos@rise.example",
      want: ok("gpapadop@cs.example.org"),
    },
    { name: "forward", key: "dvlachos@cs.example.org", want: ok("dimitris.vlachos@gmail.example") },
    {
      name: "forward's alternate goes to the primary first",
      key: "vlachos.dimitrios@cs.example.org",
      want: ok("dvlachos@cs.example.org"),
    },
    {
      name: "forward with a local copy maps to itself too",
      key: "keeper@cs.example.org",
      want: ok("elsewhere@gmail.example,keeper@cs.example.org"),
    },
    {
      name: "local copy keeps the extension asked",
      key: "keeper+x@cs.example.org",
      want: ok("elsewhere@gmail.example,keeper+x@cs.example.org"),
    },
    {
      name: "nested group: members once, inactive left out, outside addresses kept",
      key: "csall@cs.example.org",
      want: ok("jsmith@cs.example.org,ekaragia@cs.example.org,dvlachos@cs.example.org,alumni@lists.example"),
    },
    { name: "virtual-domain group", key: "info@rise.example", want: ok("gpapadop@cs.example.org") },
    { name: "group without a deliverable member", key: "ghosts@cs.example.org", want: NOTFOUND },
    { name: "unknown", key: "nobody@cs.example.org", want: NOTFOUND },
    { name: "inactive", key: "csd4713@cs.example.org", want: NOTFOUND },
    { name: "not ours", key: "someone@gmail.example", want: NOTFOUND },
  ])("$name: $key", ({ key, want }) => {
    expect(lookup("alias", key, fresh)).toEqual(want);
  });

  it("defers an address two entries claim instead of delivering to both", () => {
    const answer = lookupMap("alias", "papadopoulou.maria@cs.example.org", fresh);
    expect(answer.reply).toEqual({
      status: "TEMP",
      reason: "address claimed by more than one directory entry",
    });
    expect(answer.problem).toMatch(/homonym1 and user homonym2/);
  });

  it("defers a group whose expansion hit the limit, never a truncated list", () => {
    const limited: CurrentSnapshot = { ...fresh, resolver: new Resolver(directory, { maxExpansion: 2 }) };
    const answer = lookupMap("alias", "csall@cs.example.org", limited);
    expect(answer.reply.status).toBe("TEMP");
    expect(answer.detail).toBe("limit_exceeded");
    expect(answer.problem).toMatch(/group csall stopped at the expansion limit/);
  });

  it("defers an expansion larger than a socketmap reply", () => {
    const many = Array.from({ length: 5000 }, (_, index) => `member-number-${index}@lists.example`);
    const big: Directory = { ...directory, groups: [testGroup("huge", { memberAddresses: many })] };
    const answer = lookupMap("alias", "huge@cs.example.org", { ...fresh, resolver: new Resolver(big) });
    expect(answer.reply).toEqual({ status: "TEMP", reason: "expansion too large for a socketmap reply" });
    expect(answer.problem).toMatch(/exceeds Postfix's 100000/);
  });
});

describe("login map", () => {
  it.each([
    { name: "user's primary address", key: "gpapadop@cs.example.org", want: ok("gpapadop") },
    { name: "user's alternate address", key: "papadopoulos.georgios@example.org", want: ok("gpapadop") },
    { name: "with extension", key: "gpapadop+x@cs.example.org", want: ok("gpapadop") },
    { name: "forwarding user", key: "dvlachos@cs.example.org", want: ok("dvlachos") },
    { name: "inactive user still owns it", key: "csd4713@cs.example.org", want: ok("csd4713") },
    {
      name: "list: posting logins and the posting groups' members",
      key: "everyone@cs.example.org",
      want: ok("gpapadop,jsmith,ekaragia"),
    },
    { name: "list anyone may post to: no owner", key: "info@rise.example", want: NOTFOUND },
    { name: "both claimants", key: "papadopoulou.maria@cs.example.org", want: ok("homonym1,homonym2") },
    { name: "unknown", key: "nobody@cs.example.org", want: NOTFOUND },
    { name: "not ours", key: "someone@gmail.example", want: NOTFOUND },
  ])("$name: $key", ({ key, want }) => {
    expect(lookup("login", key, fresh)).toEqual(want);
  });
});

describe("domain map", () => {
  it.each([
    { key: "cs.example.org", want: ok("cs.example.org") },
    { key: "Example.ORG", want: ok("example.org") },
    { key: "rise.example.", want: ok("rise.example") },
    { key: "sub.cs.example.org", want: NOTFOUND },
    { key: "gmail.example", want: NOTFOUND },
    { key: "user@cs.example.org", want: NOTFOUND },
    { key: "", want: NOTFOUND },
  ])("$key", ({ key, want }) => {
    expect(lookup("domain", key, fresh)).toEqual(want);
  });
});

describe("failure semantics", () => {
  const maps = ["recipient", "alias", "login", "domain"];
  const keys = ["gpapadop@cs.example.org", "nobody@cs.example.org", "cs.example.org"];

  it.each(maps)("%s: no snapshot → TEMP for every key", (map) => {
    for (const key of keys) {
      expect(lookup(map, key, null)).toEqual({ status: "TEMP", reason: "no directory snapshot loaded" });
    }
  });

  it.each(maps)("%s: stale snapshot → TEMP for every key, never NOTFOUND", (map) => {
    for (const key of keys) {
      expect(lookup(map, key, { ...fresh, fresh: false })).toEqual({
        status: "TEMP",
        reason: "directory snapshot v42 is older than its maximum age",
      });
    }
  });

  it("unknown map name → PERM, with or without a snapshot", () => {
    expect(lookup("mailbox", "gpapadop@cs.example.org", fresh).status).toBe("PERM");
    expect(lookup("mailbox", "gpapadop@cs.example.org", null).status).toBe("PERM");
  });

  it("an exception → TEMP, the message kept for the log only", () => {
    const broken = {
      ...fresh,
      resolver: {
        resolve() {
          throw new Error("index corrupted");
        },
      } as unknown as Resolver,
    };
    const answer = lookupMap("recipient", "gpapadop@cs.example.org", broken);
    expect(answer.reply).toEqual({ status: "TEMP", reason: "internal error" });
    expect(answer.problem).toBe("lookup failed: index corrupted");
  });

  it.each([
    { name: "no key", payload: new TextEncoder().encode("recipient") },
    { name: "no map name", payload: new TextEncoder().encode(" gpapadop@cs.example.org") },
    { name: "not UTF-8", payload: Uint8Array.from([0x72, 0x20, 0xff, 0xfe]) },
  ])("malformed request ($name) → PERM", ({ payload }) => {
    const answer = answerRequest(payload, fresh);
    expect(answer.reply.status).toBe("PERM");
    expect(answer.detail).toBe("malformed");
  });

  it("a well-formed request payload is answered by its map", () => {
    const frame = encodeSocketmapRequest("alias", "smith.john@cs.example.org");
    // Strip the netstring framing: the server hands sessions the payload.
    const payload = frame.subarray(frame.indexOf(0x3a) + 1, frame.length - 1);
    expect(answerRequest(payload, fresh)).toMatchObject({ map: "alias", reply: ok("jsmith@cs.example.org") });
  });
});
