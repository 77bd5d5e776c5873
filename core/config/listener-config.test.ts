import { describe, expect, it } from "vitest";
import { type ListenerConfig, listenerSchema, toListenerSpec } from "./listener-config.js";
import { parseConfigText } from "./load.js";

describe("listener configuration", () => {
  it.each([
    {
      name: "unix with defaults",
      input: { unix: "/run/emailng/policyd.sock" },
      want: { kind: "unix", path: "/run/emailng/policyd.sock", mode: 0o660 },
    },
    {
      name: "unix with mode and group",
      input: { unix: "/run/emailng/policyd.sock", mode: "0600", group: "postfix" },
      want: { kind: "unix", path: "/run/emailng/policyd.sock", mode: 0o600, group: "postfix" },
    },
    {
      name: "tcp with loopback default",
      input: { tcp: "127.0.0.1:10040" },
      want: { kind: "tcp", host: "127.0.0.1", port: 10040, allow: ["127.0.0.0/8", "::1/128"] },
    },
    {
      name: "tcp over IPv6 with networks",
      input: { tcp: "[::]:10040", allow: ["192.0.2.0/24", "2001:db8::1"] },
      want: { kind: "tcp", host: "::", port: 10040, allow: ["192.0.2.0/24", "2001:db8::1/128"] },
    },
    { name: "systemd", input: { systemd: "policyd" }, want: { kind: "systemd", name: "policyd" } },
    {
      name: "systemd with allow",
      input: { systemd: "policyd", allow: ["192.0.2.0/24"] },
      want: { kind: "systemd", name: "policyd", allow: ["192.0.2.0/24"] },
    },
  ])("$name", ({ input, want }) => {
    const listener: ListenerConfig = listenerSchema.parse(input);
    const spec = toListenerSpec(Object.freeze(listener));
    expect(spec).toEqual(want);
    if (spec.kind === "tcp") spec.allow.push("10.0.0.0/8"); // the spec is a mutable copy
  });
});

it("converts the listeners of a loaded, frozen configuration", () => {
  const result = parseConfigText(
    '[[policyd.listen]]\ntcp = "[::1]:10040"\n[[policyd.listen]]\nsystemd = "policyd"',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  expect(result.config.policyd.listen.map(toListenerSpec)).toEqual([
    { kind: "tcp", host: "::1", port: 10040, allow: ["127.0.0.0/8", "::1/128"] },
    { kind: "systemd", name: "policyd" },
  ]);
});
