/**
 * Small zod schemas for the kinds of value the configuration holds besides
 * durations and sizes: absolute paths, LDAP URLs, IP:port addresses, CIDR
 * networks and octal file modes. Each one checks the value the way the program
 * will use it, so a mistake is reported at start with the key path instead of
 * surfacing later as a failed bind or a socket nobody can reach. Failures
 * carry a `fix` in the issue params, like the unit schemas.
 */
import ipaddr from "ipaddr.js";
import { z } from "zod";

type IssueSink = { addIssue(issue: { code: "custom"; message: string; params: { fix: string } }): void };

function fail(context: IssueSink, message: string, fix: string): never {
  context.addIssue({ code: "custom", message, params: { fix } });
  return z.NEVER;
}

/**
 * An absolute path. Daemons run with `/` as working directory under systemd,
 * so a relative path would silently point somewhere unexpected.
 */
export function absolutePath() {
  return z.string().transform((text, context) => {
    if (!text.startsWith("/")) {
      return fail(context, `${JSON.stringify(text)} is not an absolute path`, "start the path with /");
    }
    if (text.includes("\0")) return fail(context, "the path contains a NUL character", "remove it");
    return text;
  });
}

/** An absolute path, or "" for "not set". */
export function optionalAbsolutePath() {
  return z
    .string()
    .transform((text, context) => {
      if (text === "") return text;
      if (!text.startsWith("/")) {
        return fail(
          context,
          `${JSON.stringify(text)} is not an absolute path`,
          'start the path with /, or write "" to unset',
        );
      }
      if (text.includes("\0")) return fail(context, "the path contains a NUL character", "remove it");
      return text;
    })
    .prefault("");
}

export interface TcpAddress {
  host: string;
  port: number;
}

/** Checks an IP literal; IPv4 only in dotted-quad form (ipaddr.js also takes "127.1" and hex). */
export function isIpLiteral(host: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(host) || (host.includes(":") && ipaddr.IPv6.isValid(host));
}

/** Splits "127.0.0.1:10040" or "[::1]:10040"; reports what is wrong otherwise. */
export function parseTcpAddress(
  text: string,
): { ok: true; address: TcpAddress } | { ok: false; message: string } {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = /^([^:[\]]+):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) {
    return { ok: false, message: `${JSON.stringify(text)} is not an address:port` };
  }
  const host = match[1]!;
  const port = Number(match[2]);
  if (!isIpLiteral(host)) return { ok: false, message: `${JSON.stringify(host)} is not an IP address` };
  if (port > 65535) return { ok: false, message: `port ${port} is above the maximum 65535` };
  return { ok: true, address: { host, port } };
}

const TCP_FIX = 'write an IP address and a port, e.g. "127.0.0.1:10040" or "[::1]:10040"';

/** An IP:port to listen on. Port 0 asks the kernel for a free port (tests). */
export function tcpAddress() {
  return z.string().transform((text, context): TcpAddress => {
    const parsed = parseTcpAddress(text.trim());
    if (!parsed.ok) return fail(context, parsed.message, TCP_FIX);
    return parsed.address;
  });
}

/** An IP:port, or "" meaning disabled; parsed to null when disabled. */
export function optionalTcpAddress() {
  return z
    .string()
    .transform((text, context): TcpAddress | null => {
      if (text.trim() === "") return null;
      const parsed = parseTcpAddress(text.trim());
      if (!parsed.ok) return fail(context, parsed.message, `${TCP_FIX}, or "" to disable`);
      return parsed.address;
    })
    .prefault("");
}

/**
 * A network in CIDR notation, or a single address (taken as /32 or /128).
 * Normalised to "network/prefix" so the listener gets one form. Host bits set
 * below the prefix ("10.1.2.3/8") are refused: it usually means the prefix
 * length is wrong, and the fix names the network it would have matched.
 */
export function cidr() {
  return z.string().transform((text, context): string => {
    const value = text.trim();
    if (!value.includes("/")) {
      if (!isIpLiteral(value)) {
        return fail(context, `${JSON.stringify(value)} is not an IP address or CIDR network`, CIDR_FIX);
      }
      const address = ipaddr.parse(value);
      return `${address.toString()}/${address.kind() === "ipv4" ? 32 : 128}`;
    }
    const [host = "", prefixText = ""] = value.split("/", 2);
    if (!isIpLiteral(host) || !/^\d{1,3}$/.test(prefixText) || !ipaddr.isValidCIDR(value)) {
      return fail(context, `${JSON.stringify(value)} is not a CIDR network`, CIDR_FIX);
    }
    const [address, prefix] = ipaddr.parseCIDR(value);
    const network =
      address.kind() === "ipv4"
        ? ipaddr.IPv4.networkAddressFromCIDR(value).toString()
        : ipaddr.IPv6.networkAddressFromCIDR(value).toString();
    if (network !== address.toString()) {
      return fail(
        context,
        `${value} has host bits set below the /${prefix} prefix`,
        `write the network address, ${network}/${prefix}, or check the prefix length`,
      );
    }
    return `${network}/${prefix}`;
  });
}

const CIDR_FIX = 'write an address or network such as "127.0.0.0/8", "192.0.2.10" or "::1"';

/**
 * A UNIX socket mode as an octal string ("0660"). Modes letting every local
 * user write are refused: on a socket, write permission is permission to
 * connect, and these sockets answer questions about every mailbox.
 */
export function octalMode() {
  return z.string().transform((text, context): number => {
    if (!/^0?[0-7]{3}$/.test(text)) {
      return fail(
        context,
        `${JSON.stringify(text)} is not an octal mode`,
        'write it as a string, e.g. "0660"',
      );
    }
    const mode = Number.parseInt(text, 8);
    if (mode & 0o002) {
      return fail(
        context,
        `${text} lets every local user connect`,
        'use "0660" and set group to the peer\'s group, e.g. "postfix"',
      );
    }
    return mode;
  });
}

/** A URL of an LDAP server; other schemes (ldapi) are not supported by the LDAP client. */
export function ldapUrl() {
  return z.string().transform((text, context): string => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return fail(
        context,
        `${JSON.stringify(text)} is not a URL`,
        'write it as "ldap://host:389" or "ldaps://host:636"',
      );
    }
    if (url.protocol !== "ldap:" && url.protocol !== "ldaps:") {
      return fail(
        context,
        `${url.protocol}// is not supported`,
        'use "ldap://" (with starttls = true) or "ldaps://"',
      );
    }
    if (url.hostname === "")
      return fail(context, `${JSON.stringify(text)} has no host`, "add the server's host name");
    return text;
  });
}

/** A POSIX group or user name, as `chown` accepts it. */
export function accountName() {
  return namePattern(
    /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/,
    "a group name",
    'write the group name, e.g. "postfix"',
  );
}

/** A string matching a pattern, with an administrator-friendly message. */
export function namePattern(pattern: RegExp, what: string, fix: string) {
  return z.string().transform((text, context) => {
    if (!pattern.test(text)) return fail(context, `${JSON.stringify(text)} is not ${what}`, fix);
    return text;
  });
}
