import { describe, expect, it } from "vitest";
import { redisSection } from "./redis-schema.js";

describe("[redis]", () => {
  it.each([
    { name: "empty means unused", input: {}, ok: true },
    { name: "one server", input: { url: "redis://127.0.0.1:6379/0" }, ok: true },
    {
      name: "a sentinel group",
      input: { sentinels: ["192.0.2.1:26379", "192.0.2.2:26379"], sentinel_master: "emailng" },
      ok: true,
    },
    { name: "not a redis URL", input: { url: "http://127.0.0.1" }, ok: false },
    {
      name: "url and sentinels together",
      input: { url: "redis://127.0.0.1", sentinels: ["192.0.2.1:26379"], sentinel_master: "m" },
      ok: false,
    },
    { name: "sentinels without a master name", input: { sentinels: ["192.0.2.1:26379"] }, ok: false },
    { name: "command timeout above 10 s", input: { command_timeout: "30s" }, ok: false },
  ])("$name", ({ input, ok }) => {
    expect(redisSection.safeParse(input).success).toBe(ok);
  });

  it("parses durations to milliseconds and sentinels to host and port", () => {
    const parsed = redisSection.parse({ sentinels: ["[2001:db8::1]:26379"], sentinel_master: "m" });
    expect(parsed.command_timeout).toBe(500);
    expect(parsed.sentinels).toEqual([{ host: "2001:db8::1", port: 26379 }]);
  });
});
