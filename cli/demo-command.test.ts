import { describe, expect, it } from "vitest";
import { buildCli } from "./build-cli.js";

describe("emailng demo", () => {
  it("builds a snapshot from the sample directory and shows verifyd, quotad and policyd answering", async () => {
    let out = "";
    let err = "";
    const cli = buildCli({
      io: { out: (text) => (out += text), err: (text) => (err += text) },
      programs: [],
    });
    await cli.parseAsync(["node", "emailng", "demo"]);
    expect(err).toBe("");
    expect(out).toMatch(/snapshot v1 sha256:[0-9a-f]{12}…: 12 users, 6 groups\n/);
    expect(out).toMatch(/george\.papadopoulos@cs\.example\.org +→ {2}mailbox of gpapadop/);
    expect(out).toMatch(/csd4713@cs\.example\.org +→ {2}inactive \(user csd4713\)/);
    expect(out).toMatch(/everyone@cs\.example\.org +→ {2}group csall: 11 members/);
    expect(out).toMatch(/someone@gmail\.example +→ {2}not one of our domains/);
    // The same addresses asked of a running verifyd over the socketmap protocol.
    expect(out).toMatch(/verifyd answering Postfix socketmap lookups on \/\S+\/verifyd\.sock:/);
    expect(out).toMatch(/csd4713@cs\.example\.org +recipient: NOTFOUND +alias: NOTFOUND/);
    expect(out).toMatch(
      /papadopoulos\.georgios@example\.org +recipient: OK DUNNO +alias: OK gpapadop@cs\.example\.org/,
    );
    expect(out).toMatch(
      /team@rise\.example +recipient: OK DUNNO +alias: OK gpapadop@cs\.example\.org,mnikolai@/,
    );
    expect(out).toMatch(/someone@gmail\.example +recipient: NOTFOUND/);
    // Dovecot's userdb from the same snapshot, over the dict protocol.
    expect(out).toMatch(/userdb\/gpapadop {2}→ {2}O\{"user":"gpapadop","uid":"5001"/);
    // quotad fed like quota_clone, answering at RCPT for the user and her alternate address.
    expect(out).toMatch(/csd4714 uses 1,100,000 of 1,048,576 bytes → commit O1/);
    expect(out).toMatch(
      /RCPT TO:<makri\.eirini@cs\.example\.org> SIZE=20000 {2}→ {2}action=552 5\.2\.2 Mailbox is full/,
    );
    expect(out).toMatch(/RCPT TO:<gpapadop@cs\.example\.org> SIZE=20000 {2}→ {2}action=DUNNO/);
    // policyd: the protected list and the rate limit.
    expect(out).toMatch(
      /a student \(csd4711\) → csall@cs\.example\.org {2}→ {2}action=550 5\.7\.1 csall is a protected list/,
    );
    expect(out).toMatch(/staff \(jsmith\) → csall@cs\.example\.org {2}→ {2}action=DUNNO/);
    expect(out).toMatch(/message 3 from dvlachos: RCPT action=DUNNO, END-OF-MESSAGE action=DUNNO/);
    expect(out).toMatch(/message 4 from dvlachos: RCPT action=450 4\.7\.1 Rate limit exceeded/);
  });
});
