import { describe, expect, it } from "vitest";
import { etagListed, sha256, tokenMatches } from "./replicate.js";

describe("tokenMatches", () => {
  const expected = sha256("s3cret-token");
  it.each([
    { name: "right token", header: "Bearer s3cret-token", want: true },
    { name: "scheme in any case", header: "bearer s3cret-token", want: true },
    { name: "wrong token", header: "Bearer s3cret-tokem", want: false },
    { name: "prefix of the token", header: "Bearer s3cret", want: false },
    { name: "token with extra text", header: "Bearer s3cret-token x", want: false },
    { name: "basic scheme", header: "Basic s3cret-token", want: false },
    { name: "bare token", header: "s3cret-token", want: false },
    { name: "empty bearer", header: "Bearer ", want: false },
    { name: "no header", header: undefined, want: false },
  ])("$name", ({ header, want }) => {
    expect(tokenMatches(header, expected)).toBe(want);
  });

  it("an empty header never matches, even against the hash of an empty token", () => {
    expect(tokenMatches("", sha256(""))).toBe(false);
  });
});

describe("etagListed", () => {
  const etag = '"sha256:abc"';
  it.each([
    { name: "same tag", header: '"sha256:abc"', want: true },
    { name: "weak form", header: 'W/"sha256:abc"', want: true },
    { name: "in a list", header: '"sha256:old", "sha256:abc"', want: true },
    { name: "star", header: "*", want: true },
    { name: "other tag", header: '"sha256:abd"', want: false },
    { name: "unquoted", header: "sha256:abc", want: false },
    { name: "absent", header: undefined, want: false },
  ])("$name", ({ header, want }) => {
    expect(etagListed(header, etag)).toBe(want);
  });
});
