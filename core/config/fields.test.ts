import { describe, expect, it } from "vitest";
import {
  cidr,
  ldapUrl,
  octalMode,
  optionalAbsolutePath,
  optionalTcpAddress,
  parseTcpAddress,
} from "./fields.js";

describe("parseTcpAddress", () => {
  it.each([
    { input: "127.0.0.1:10040", want: { ok: true, address: { host: "127.0.0.1", port: 10040 } } },
    { input: "[::1]:9301", want: { ok: true, address: { host: "::1", port: 9301 } } },
    { input: "0.0.0.0:0", want: { ok: true, address: { host: "0.0.0.0", port: 0 } } },
    { input: "127.0.0.1:70000", want: { ok: false, message: "port 70000 is above the maximum 65535" } },
    { input: "::1:9301", want: { ok: false, message: '"::1:9301" is not an address:port' } },
    { input: "localhost:25", want: { ok: false, message: '"localhost" is not an IP address' } },
    { input: "127.1:25", want: { ok: false, message: '"127.1" is not an IP address' } },
    { input: "127.0.0.1", want: { ok: false, message: '"127.0.0.1" is not an address:port' } },
  ])("$input", ({ input, want }) => {
    expect(parseTcpAddress(input)).toEqual(want);
  });
});

describe("field schemas", () => {
  it.each([
    { name: "metrics disabled", schema: optionalTcpAddress(), input: "", want: null },
    { name: "metrics default", schema: optionalTcpAddress(), input: undefined, want: null },
    { name: "cidr", schema: cidr(), input: "10.0.0.0/8", want: "10.0.0.0/8" },
    { name: "single IPv4", schema: cidr(), input: "192.0.2.7", want: "192.0.2.7/32" },
    { name: "single IPv6", schema: cidr(), input: "::1", want: "::1/128" },
    { name: "IPv6 network", schema: cidr(), input: "2001:db8::/32", want: "2001:db8::/32" },
    { name: "mode", schema: octalMode(), input: "0660", want: 0o660 },
    { name: "mode without 0", schema: octalMode(), input: "600", want: 0o600 },
    { name: "unset path", schema: optionalAbsolutePath(), input: undefined, want: "" },
    {
      name: "ldaps",
      schema: ldapUrl(),
      input: "ldaps://ldap.example.org:636",
      want: "ldaps://ldap.example.org:636",
    },
  ])("$name", ({ schema, input, want }) => {
    expect(schema.parse(input)).toEqual(want);
  });

  it.each([
    {
      name: "prefix too long",
      schema: cidr(),
      input: "10.0.0.0/33",
      message: '"10.0.0.0/33" is not a CIDR network',
    },
    {
      name: "host bits",
      schema: cidr(),
      input: "10.1.2.3/8",
      message: "10.1.2.3/8 has host bits set below the /8 prefix",
    },
    {
      name: "hostname",
      schema: cidr(),
      input: "mx.example.org",
      message: '"mx.example.org" is not an IP address or CIDR network',
    },
    {
      name: "world-writable mode",
      schema: octalMode(),
      input: "0666",
      message: "0666 lets every local user connect",
    },
    { name: "decimal mode", schema: octalMode(), input: "0968", message: '"0968" is not an octal mode' },
    {
      name: "relative path",
      schema: optionalAbsolutePath(),
      input: "etc/ca.pem",
      message: '"etc/ca.pem" is not an absolute path',
    },
    { name: "ldapi", schema: ldapUrl(), input: "ldapi:///", message: "ldapi:// is not supported" },
    {
      name: "not a url",
      schema: ldapUrl(),
      input: "ldap.example.org",
      message: '"ldap.example.org" is not a URL',
    },
  ])("$name is refused", ({ schema, input, message }) => {
    expect(schema.safeParse(input).error?.issues[0]?.message).toBe(message);
  });
});
