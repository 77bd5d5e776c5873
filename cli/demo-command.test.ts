import { describe, expect, it } from "vitest";
import { buildCli } from "./build-cli.js";

describe("emailng demo", () => {
  it("builds a snapshot from the sample directory and shows the resolver and verifyd answering", async () => {
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
  });
});
