import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { splitAddress } from "../core/directory/address.js";
import { testUser } from "../test/harness/directory-builders.js";
import { expandTemplate } from "./dovecot-auth.js";

/** The plain definition: every %u, %n, %d and %% replaced in one pass, any other % left as written. */
function reference(template: string, address: string, username: string): string {
  const { local, domain } = splitAddress(address);
  return template.replace(/%([und%])/g, (_match, letter: string) =>
    letter === "u" ? username : letter === "n" ? local : letter === "d" ? domain : "%",
  );
}

describe("expandTemplate", () => {
  it.each([
    { template: "/var/vmail/%d/%n", want: "/var/vmail/cs.example.org/jsmith" },
    { template: "maildir:~/Maildir", want: "maildir:~/Maildir" },
    { template: "%%u is %u", want: "%u is JS" },
    { template: "100%", want: "100%" },
    { template: "%x%", want: "%x%" },
    { template: "%%%n", want: "%jsmith" },
    { template: "", want: "" },
  ])("$template", ({ template, want }) => {
    expect(expandTemplate(template, testUser("jsmith"), "JS")).toBe(want);
    expect(expandTemplate(template, testUser("jsmith"), "JS")).toBe(want); // parsed once, then kept
  });

  it("agrees with the one-pass replacement for any template", () => {
    const template = fc
      .array(fc.oneof(fc.constantFrom("%", "u", "n", "d", "%%", "/", "x"), fc.string({ maxLength: 3 })), {
        maxLength: 12,
      })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(template, fc.string({ maxLength: 6 }), (text, username) => {
        const user = testUser("jsmith");
        expect(expandTemplate(text, user, username)).toBe(reference(text, user.primaryAddress, username));
      }),
      { numRuns: 1000 },
    );
  });
});
