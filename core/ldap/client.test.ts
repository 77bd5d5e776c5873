import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BusyError,
  InsufficientAccessError,
  InvalidCredentialsError,
  NoSuchObjectError,
  TimeLimitExceededError,
  UnavailableError,
} from "ldapts";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../config/load.js";
import { SecretFileError } from "../config/secrets.js";
import { TransientError } from "../errors.js";
import { connectLdap, LdapRefusedError, ldapConnectOptionsFromConfig, wrapLdapError } from "./client.js";

const URL = "ldap://127.0.0.1:389";

function systemError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe("wrapLdapError", () => {
  it.each([
    {
      name: "invalid credentials",
      input: new InvalidCredentialsError(),
      want: {
        type: LdapRefusedError,
        code: "config.invalid",
        text: "bind as cn=x refused: invalid credentials",
      },
    },
    {
      name: "no such object",
      input: new NoSuchObjectError(),
      want: { type: LdapRefusedError, code: "config.invalid", text: "refused: no such object" },
    },
    {
      name: "insufficient access",
      input: new InsufficientAccessError(),
      want: { type: LdapRefusedError, code: "config.invalid", text: "insufficient access" },
    },
    {
      name: "server busy",
      input: new BusyError(),
      want: { type: TransientError, code: "transient.backend_down", text: "bind as cn=x failed" },
    },
    {
      name: "server unavailable",
      input: new UnavailableError(),
      want: { type: TransientError, code: "transient.backend_down", text: "failed" },
    },
    {
      name: "server time limit",
      input: new TimeLimitExceededError(),
      want: { type: TransientError, code: "transient.timeout", text: "failed" },
    },
    {
      name: "ldapts connect timeout",
      input: new Error("Connection timeout"),
      want: { type: TransientError, code: "transient.timeout", text: "failed: Connection timeout" },
    },
    {
      name: "ldapts operation timeout",
      input: new Error("SearchRequest: Operation timed out"),
      want: { type: TransientError, code: "transient.timeout", text: "Operation timed out" },
    },
    {
      name: "connection refused",
      input: systemError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:389"),
      want: { type: TransientError, code: "transient.backend_down", text: "ECONNREFUSED" },
    },
    {
      name: "connection closed mid-search, message on two lines",
      input: new Error(
        "Connection closed before message response was received.\nMessage type: SearchRequest",
      ),
      want: {
        type: TransientError,
        code: "transient.backend_down",
        text: "received. Message type: SearchRequest",
      },
    },
    {
      name: "untrusted certificate",
      input: systemError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
      want: {
        type: TransientError,
        code: "transient.backend_down",
        text: "TLS certificate not accepted (SELF_SIGNED_CERT_IN_CHAIN)",
      },
    },
  ])("$name", ({ input, want }) => {
    const wrapped = wrapLdapError(input, URL, "bind as cn=x");
    expect(wrapped).toBeInstanceOf(want.type);
    expect(wrapped.code).toBe(want.code);
    expect(wrapped.message).toContain(want.text);
    expect(wrapped.message).toMatch(/^LDAP ldap:\/\/127\.0\.0\.1:389: bind as cn=x /);
    expect(wrapped.cause).toBe(input);
  });

  it("wraps only once", () => {
    const first = wrapLdapError(new Error("Connection timeout"), URL, "search");
    expect(wrapLdapError(first, "ldap://other", "bind")).toBe(first);
  });

  it("keeps the LDAP result code of a refusal", () => {
    const wrapped = wrapLdapError(new InvalidCredentialsError(), URL, "bind as cn=x");
    expect((wrapped as LdapRefusedError).resultCode).toBe(49);
  });
});

describe("connectLdap without servers", () => {
  it("refuses an empty URL list as configuration", async () => {
    await expect(
      connectLdap({
        urls: [],
        startTls: false,
        caPem: undefined,
        bindDn: "",
        bindPassword: "",
        timeoutMs: 1000,
        connectTimeoutMs: 1000,
        pageSize: 10,
      }),
    ).rejects.toBeInstanceOf(LdapRefusedError);
  });
});

describe("ldapConnectOptionsFromConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "emailng-ldap-options-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function config(lines: string[]) {
    const result = parseConfigText(lines.join("\n"));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    return result.config;
  }

  it("reads the bind password and the CA once, with timeouts in ms and the page size", async () => {
    const passwordFile = join(dir, "bind.pw");
    writeFileSync(passwordFile, "s3cret\n");
    chmodSync(passwordFile, 0o600);
    const caFile = join(dir, "ca.pem");
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    writeFileSync(caFile, pem);
    const options = await ldapConnectOptionsFromConfig(
      config([
        "[ldap]",
        'urls = ["ldap://127.0.0.1:1389", "ldap://127.0.0.1:2389"]',
        "starttls = true",
        `ca_file = "${caFile}"`,
        'base_dn = "dc=cs,dc=example,dc=org"',
        'bind_dn = "cn=mail-reader,ou=services,dc=cs,dc=example,dc=org"',
        `bind_password_file = "${passwordFile}"`,
        'timeout = "2s"',
        'connect_timeout = "500ms"',
        "page_size = 250",
      ]),
    );
    expect(options).toEqual({
      urls: ["ldap://127.0.0.1:1389", "ldap://127.0.0.1:2389"],
      startTls: true,
      caPem: pem,
      bindDn: "cn=mail-reader,ou=services,dc=cs,dc=example,dc=org",
      bindPassword: "s3cret",
      timeoutMs: 2000,
      connectTimeoutMs: 500,
      pageSize: 250,
    });
  });

  it("binds anonymously without a bind DN and trusts the default CAs without ca_file", async () => {
    const options = await ldapConnectOptionsFromConfig(
      config(["[ldap]", 'urls = ["ldaps://127.0.0.1"]', 'base_dn = "dc=x"']),
    );
    expect(options).toMatchObject({ bindDn: "", bindPassword: "", caPem: undefined, timeoutMs: 5000 });
    expect(options.connectTimeoutMs).toBe(3000);
  });

  it("refuses a password file others can read (from core/config/secrets)", async () => {
    const passwordFile = join(dir, "open.pw");
    writeFileSync(passwordFile, "s3cret\n");
    chmodSync(passwordFile, 0o644);
    const loaded = config([
      "[ldap]",
      'urls = ["ldap://127.0.0.1"]',
      'base_dn = "dc=x"',
      'bind_dn = "cn=r,dc=x"',
      `bind_password_file = "${passwordFile}"`,
    ]);
    await expect(ldapConnectOptionsFromConfig(loaded)).rejects.toBeInstanceOf(SecretFileError);
  });

  it.each([
    { name: "a missing CA file", content: null, text: "cannot read" },
    { name: "a CA file without a certificate", content: "not a pem\n", text: "holds no PEM certificate" },
  ])("names $name", async ({ content, text }) => {
    const caFile = join(dir, `ca-${text.length}.pem`);
    if (content !== null) writeFileSync(caFile, content);
    const loaded = config([
      "[ldap]",
      'urls = ["ldaps://127.0.0.1"]',
      'base_dn = "dc=x"',
      `ca_file = "${caFile}"`,
    ]);
    const error = await ldapConnectOptionsFromConfig(loaded).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LdapRefusedError);
    expect((error as Error).message).toContain(`ldap.ca_file: `);
    expect((error as Error).message).toContain(text);
  });
});
