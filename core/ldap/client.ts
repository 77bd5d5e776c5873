/**
 * The one file in emailng that talks to an LDAP server. It opens a connection
 * to the first of the configured servers that answers (LDAPS or StartTLS with
 * the certificate checked against the configured CA), binds, runs paged
 * searches (RFC 2696) and closes. Every failure leaves here wrapped once:
 * a server or network that is down or slow becomes a TransientError (the
 * caller retries later or answers temporarily), and a server that refuses
 * what the configuration asks for (wrong bind password, a filter it cannot
 * parse, a base that does not exist) becomes an LdapRefusedError, because
 * retrying will not help until an administrator fixes the configuration.
 * Neither ever comes with part of a result.
 *
 * Deadlines: each server gets `connectTimeoutMs` to accept the connection and
 * finish the TLS handshake, and every request (bind, StartTLS, each page of a
 * search) gets `timeoutMs`. ldapts applies neither unless told, so both are
 * required here.
 *
 * ldapts reconnects by itself when a request finds the connection closed,
 * without the bind and without StartTLS. A connection here is therefore used
 * only while the socket it opened is up: once it is lost, every request fails
 * with a TransientError and the caller opens a new connection.
 */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import tls from "node:tls";
import { Client, FilterParser, type ResultCodeError } from "ldapts";
import type { DeepReadonly } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { readSecretFile } from "../config/secrets.js";
import { EmailngError, TransientError } from "../errors.js";
import type { RawEntry } from "./mapping.js";

export interface LdapConnectOptions {
  /** Tried in order; the first that connects and binds is used. */
  urls: readonly string[];
  /** Upgrade ldap:// connections with StartTLS before binding. */
  startTls: boolean;
  /** PEM text of the CA certificate(s) that signed the servers' certificates; undefined trusts Node's default CAs. */
  caPem: string | undefined;
  /** DN to bind as; empty for an anonymous bind. */
  bindDn: string;
  bindPassword: string;
  /** Bound on each request (bind, StartTLS, each page of a search), in ms. */
  timeoutMs: number;
  /** Bound on connecting to one server, TLS handshake included, in ms. */
  connectTimeoutMs: number;
  /** Entries per page of a paged search, unless a search says otherwise. */
  pageSize: number;
}

export interface LdapConnection {
  /** The URL of the server this connection is bound to. */
  readonly url: string;
  /** The configured page size (LdapConnectOptions.pageSize). */
  readonly pageSize: number;
  /**
   * A subtree search fetched in pages of `pageSize` entries. Attribute values
   * come back as arrays of strings (UTF-8); `dn` is kept. All pages or an
   * error: never a part of the result. ldapts sends the paging control as
   * non-critical, so a server without paging answers in one piece or with
   * its size limit (an LdapRefusedError). Referrals are not followed.
   */
  pagedSearch(
    base: string,
    filter: string,
    attributes: readonly string[],
    pageSize: number,
  ): Promise<RawEntry[]>;
  /** Unbinds and closes; never throws. */
  close(): Promise<void>;
}

/**
 * The server refused what the configuration asks (credentials, filter, base,
 * access rights, a size limit): not transient, an administrator must act.
 */
export class LdapRefusedError extends EmailngError {
  readonly code = "config.invalid" as const;
  constructor(
    message: string,
    /** LDAP result code when the server sent one (49 invalid credentials, 32 no such object, ...). */
    readonly resultCode: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "LdapRefusedError";
  }
}

/**
 * LDAP result codes that mean "fix the configuration" rather than "try
 * again": retrying the same request gives the same answer.
 */
const REFUSED_RESULT_CODES: ReadonlyMap<number, string> = new Map([
  [4, "size limit exceeded: raise the limit for the bind DN on the server"],
  [8, "strong authentication required: use TLS (ldaps:// or starttls)"],
  [11, "administrative limit exceeded: raise the limit for the bind DN on the server"],
  [12, "a critical control is not supported by the server"],
  [13, "confidentiality required: use TLS (ldaps:// or starttls)"],
  [32, "no such object: check the search base (or the bind DN may not read it)"],
  [34, "invalid DN syntax"],
  [48, "inappropriate authentication"],
  [49, "invalid credentials"],
  [50, "insufficient access rights for the bind DN"],
]);

function resultCodeOf(error: unknown): number | undefined {
  if (!(error instanceof Error) || typeof (error as ResultCodeError).code !== "number") return undefined;
  // ldapts' result-code errors carry the numeric LDAP code; Node's system errors carry strings.
  return (error as ResultCodeError).code;
}

function isTimeout(error: unknown): boolean {
  if (resultCodeOf(error) === 3) return true; // timeLimitExceeded
  const message = error instanceof Error ? error.message : String(error);
  return /timed out|timeout/i.test(message) || (error as NodeJS.ErrnoException)?.code === "ETIMEDOUT";
}

/** Node's certificate check failures (SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ...). */
function isCertificateError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return typeof code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_/.test(code);
}

function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // ldapts appends the code as " Code: 0x31" and socket errors span lines.
  const text = message.replace(/\s+/g, " ").trim();
  return isCertificateError(error)
    ? `TLS certificate not accepted (${(error as NodeJS.ErrnoException).code}): ${text}; check ldap.ca_file and the server's certificate`
    : text;
}

/**
 * Wraps an ldapts or network error once, naming the server and the
 * operation; errors already wrapped pass through unchanged.
 */
export function wrapLdapError(error: unknown, url: string, operation: string): EmailngError {
  if (error instanceof EmailngError) return error;
  const resultCode = resultCodeOf(error);
  const refused = resultCode === undefined ? undefined : REFUSED_RESULT_CODES.get(resultCode);
  if (refused !== undefined) {
    return new LdapRefusedError(`LDAP ${url}: ${operation} refused: ${refused}`, resultCode, {
      cause: error,
    });
  }
  const code = isTimeout(error) ? "transient.timeout" : "transient.backend_down";
  return new TransientError(code, `LDAP ${url}: ${operation} failed: ${describeError(error)}`, {
    cause: error,
  });
}

/** Parses the filter before any I/O so a bad one is reported as configuration, not as a server failure. */
function parseFilter(filter: string, url: string) {
  try {
    return FilterParser.parseString(filter);
  } catch (error) {
    throw new LdapRefusedError(
      `LDAP ${url}: filter ${filter.slice(0, 200)} is not a valid LDAP filter: ${describeError(error)}`,
      undefined,
      { cause: error },
    );
  }
}

/** Attribute values as strings; ldapts gives a string, a Buffer or an array of either. */
function toRawEntry(entry: Record<string, unknown> & { dn: string }): RawEntry {
  const raw: RawEntry = { dn: entry.dn };
  for (const [name, value] of Object.entries(entry)) {
    if (name === "dn") continue;
    const list = Array.isArray(value) ? value : [value];
    raw[name] = list.map((item) => (Buffer.isBuffer(item) ? item.toString("utf8") : String(item)));
  }
  return raw;
}

function tlsOptionsFor(url: URL, caPem: string | undefined): tls.ConnectionOptions {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    // The host is what the certificate is checked against; for StartTLS Node
    // would otherwise check against "localhost".
    host,
    // SNI carries names only (RFC 6066); Node warns when given an address.
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(caPem === undefined ? {} : { ca: caPem }),
    rejectUnauthorized: true,
  };
}

/**
 * ldapts bounds the LDAPS handshake by its connect timeout, but not the
 * handshake after StartTLS; this bounds both.
 */
function boundedTlsConnect(timeoutMs: number): typeof tls.connect {
  const connect = (...args: unknown[]): tls.TLSSocket => {
    const socket = (tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args);
    const timer = setTimeout(() => socket.destroy(new Error("TLS handshake timed out")), timeoutMs);
    // ldapts drops our listeners when a handshake fails; the timer must not hold the process then.
    timer.unref();
    const clear = () => clearTimeout(timer);
    socket.once("secureConnect", clear);
    socket.once("close", clear);
    return socket;
  };
  return connect as typeof tls.connect;
}

class Connection implements LdapConnection {
  private lost = false;

  constructor(
    readonly url: string,
    readonly pageSize: number,
    private readonly client: Client,
  ) {}

  /** Refuses to let ldapts reconnect silently (without bind or TLS) once the socket we opened has gone. */
  private ensureUp(operation: string): void {
    if (this.lost || !this.client.isConnected) {
      this.lost = true;
      throw new TransientError(
        "transient.backend_down",
        `LDAP ${this.url}: ${operation} failed: connection lost`,
      );
    }
  }

  async pagedSearch(
    base: string,
    filter: string,
    attributes: readonly string[],
    pageSize: number,
  ): Promise<RawEntry[]> {
    const operation = `search ${base} ${filter.slice(0, 200)}`;
    const parsed = parseFilter(filter, this.url);
    this.ensureUp(operation);
    const entries: RawEntry[] = [];
    try {
      const pages = this.client.searchPaginated(base, {
        scope: "sub",
        filter: parsed,
        attributes: [...attributes],
        paged: { pageSize },
      });
      for await (const page of pages) {
        for (const entry of page.searchEntries) entries.push(toRawEntry(entry));
      }
    } catch (error) {
      const wrapped = wrapLdapError(error, this.url, operation);
      // After a timeout or a network error the socket is gone or in an unknown
      // state; a refusal (bad base, no access) leaves the session usable.
      if (wrapped instanceof TransientError || !this.client.isConnected) this.lost = true;
      throw wrapped;
    }
    return entries;
  }

  async close(): Promise<void> {
    this.lost = true;
    try {
      await this.client.unbind();
    } catch {
      // The server may be gone already; the socket is destroyed either way.
    }
  }
}

async function connectOne(url: string, options: LdapConnectOptions): Promise<Connection> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new LdapRefusedError(`LDAP ${url}: not a URL`, undefined, { cause: error });
  }
  const secure = parsed.protocol === "ldaps:";
  const tlsOptions = tlsOptionsFor(parsed, options.caPem);
  const client = new Client({
    url,
    timeout: options.timeoutMs,
    connectTimeout: options.connectTimeoutMs,
    // Given to the constructor only for ldaps://: ldapts would otherwise
    // speak TLS from the first byte on an ldap:// port.
    ...(secure ? { tlsOptions } : {}),
    createSecureConnection: boundedTlsConnect(options.connectTimeoutMs),
  });
  // The first request opens the connection, so its name says so.
  let operation = "connect and ";
  try {
    if (options.startTls && !secure) {
      operation += "StartTLS";
      await client.startTLS(tlsOptions);
      operation = "";
    }
    if (options.bindDn === "") {
      // An anonymous bind opens the connection now, so a dead server is
      // found here and the next URL is tried.
      operation += "anonymous bind";
      await client.bind("", "");
    } else {
      operation += `bind as ${options.bindDn}`;
      await client.bind(options.bindDn, options.bindPassword);
    }
  } catch (error) {
    await client.unbind().catch(() => {});
    throw wrapLdapError(error, url, operation);
  }
  return new Connection(url, options.pageSize, client);
}

/**
 * Connects to the first URL that answers and binds. A refusal (wrong
 * credentials, ...) stops at once with LdapRefusedError; when every server is
 * down or slow the TransientError lists each one's failure.
 */
export async function connectLdap(options: LdapConnectOptions): Promise<LdapConnection> {
  if (options.urls.length === 0) throw new LdapRefusedError("LDAP: no server URL configured", undefined);
  const failures: TransientError[] = [];
  for (const url of options.urls) {
    try {
      return await connectOne(url, options);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      failures.push(error);
    }
  }
  if (failures.length === 1 && failures[0] !== undefined) throw failures[0];
  const code = failures.every((failure) => failure.code === "transient.timeout")
    ? "transient.timeout"
    : "transient.backend_down";
  throw new TransientError(code, `no LDAP server answered: ${failures.map((f) => f.message).join("; ")}`, {
    cause: failures,
  });
}

/** Connection options from [ldap]: the bind password and the CA file are read here, once. */
export async function ldapConnectOptionsFromConfig(
  config: DeepReadonly<Config>,
): Promise<LdapConnectOptions> {
  const ldap = config.ldap;
  const bindPassword = ldap.bind_dn === "" ? "" : await readSecretFile(ldap.bind_password_file);
  let caPem: string | undefined;
  if (ldap.ca_file !== "") {
    try {
      caPem = await readFile(ldap.ca_file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      throw new LdapRefusedError(`ldap.ca_file: cannot read ${ldap.ca_file} (${code})`, undefined, {
        cause: error,
      });
    }
    if (!caPem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new LdapRefusedError(`ldap.ca_file: ${ldap.ca_file} holds no PEM certificate`, undefined);
    }
  }
  return {
    urls: [...ldap.urls],
    startTls: ldap.starttls,
    caPem,
    bindDn: ldap.bind_dn,
    bindPassword,
    timeoutMs: ldap.timeout,
    connectTimeoutMs: ldap.connect_timeout,
    pageSize: ldap.page_size,
  };
}
