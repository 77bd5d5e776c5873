/**
 * The `listen` entries of a daemon section and their translation into the
 * listener specs core/net opens.
 *
 * In the file a listener is one small table with exactly one of `unix`, `tcp`
 * or `systemd`:
 *
 *     { unix = "/run/emailng/policyd.sock", mode = "0660", group = "postfix" }
 *     { tcp = "127.0.0.1:10040", allow = ["127.0.0.0/8", "::1"] }
 *     { systemd = "policyd" }     # a socket passed by systemd (FileDescriptorName)
 *
 * It is validated as one strict table rather than a union of three, so that a
 * typo inside it is reported as an unknown key at its own path instead of as
 * "matched none of three shapes".
 */
import { z } from "zod";
import type { ListenerSpec as NetListenerSpec } from "../net/listeners.js";
import {
  absolutePath,
  accountName,
  cidr,
  namePattern,
  octalMode,
  type TcpAddress,
  tcpAddress,
} from "./fields.js";

/**
 * The listener specs core/net/listeners.ts opens, minus sockets it inherits
 * by itself. Imported rather than restated so the two cannot drift apart.
 */
export type ListenerSpec = Exclude<NetListenerSpec, { kind: "inherited" }>;

/** A validated listener as it sits in the frozen configuration. */
export type ListenerConfig =
  | { readonly kind: "unix"; readonly path: string; readonly mode: number; readonly group?: string }
  | {
      readonly kind: "tcp";
      readonly host: string;
      readonly port: number;
      readonly allow: readonly string[];
    }
  | { readonly kind: "systemd"; readonly name: string; readonly allow?: readonly string[] };

/** Owner and group may use the socket, nobody else. */
export const DEFAULT_SOCKET_MODE = 0o660;

/** A TCP listener without `allow` accepts loopback only; opening it wider must be written down. */
export const DEFAULT_TCP_ALLOW: readonly string[] = ["127.0.0.0/8", "::1/128"];

/** systemd's FileDescriptorName: printable ASCII without ":", at most 255 characters. */
const systemdName = () =>
  namePattern(
    /^[A-Za-z0-9_.@-]{1,255}$/,
    "a systemd FileDescriptorName",
    "use the FileDescriptorName= of the .socket unit (letters, digits, _ . @ -)",
  );

const KINDS = ["unix", "tcp", "systemd"] as const;
const EXAMPLE =
  '{ unix = "/run/emailng/policyd.sock" } or { tcp = "127.0.0.1:10040" } or { systemd = "policyd" }';

export const listenerSchema = z
  .strictObject({
    unix: absolutePath().optional(),
    mode: octalMode().optional(),
    group: accountName().optional(),
    tcp: tcpAddress().optional(),
    allow: z.array(cidr()).optional(),
    systemd: systemdName().optional(),
  })
  .superRefine((table, context) => {
    const present = KINDS.filter((kind) => table[kind] !== undefined);
    if (present.length === 0) {
      context.addIssue({
        code: "custom",
        message: "a listener needs one of unix, tcp or systemd",
        params: { fix: `write e.g. ${EXAMPLE}` },
      });
    } else if (present.length > 1) {
      context.addIssue({
        code: "custom",
        message: `a listener takes only one of unix, tcp or systemd, not ${present.join(" and ")}`,
        params: { fix: "write one listener table for each" },
      });
    }
    for (const key of ["mode", "group"] as const) {
      if (table[key] !== undefined && table.unix === undefined) {
        context.addIssue({
          code: "custom",
          path: [key],
          message: `${key} only applies to unix listeners`,
          params: { fix: `remove ${key}` },
        });
      }
    }
    // A systemd socket may be TCP; its allow-list is optional because the
    // unit's IPAddressAllow= can restrict clients instead.
    if (table.allow !== undefined && table.unix !== undefined) {
      context.addIssue({
        code: "custom",
        path: ["allow"],
        message: "allow only applies to tcp and systemd listeners",
        params: { fix: "remove allow; restrict unix sockets with mode and group" },
      });
    }
  })
  .transform((table): ListenerConfig => {
    if (table.unix !== undefined) {
      const unix = { kind: "unix" as const, path: table.unix, mode: table.mode ?? DEFAULT_SOCKET_MODE };
      return table.group === undefined ? unix : { ...unix, group: table.group };
    }
    if (table.tcp !== undefined) {
      const address: TcpAddress = table.tcp;
      return {
        kind: "tcp",
        host: address.host,
        port: address.port,
        allow: table.allow ?? [...DEFAULT_TCP_ALLOW],
      };
    }
    // superRefine guarantees exactly one kind, so this is systemd.
    const name = table.systemd ?? "";
    return table.allow === undefined
      ? { kind: "systemd", name }
      : { kind: "systemd", name, allow: table.allow };
  });

/** Turns a validated listener into the (mutable, unfrozen) spec core/net opens. */
export function toListenerSpec(listener: ListenerConfig): ListenerSpec {
  switch (listener.kind) {
    case "unix":
      return listener.group === undefined
        ? { kind: "unix", path: listener.path, mode: listener.mode }
        : { kind: "unix", path: listener.path, mode: listener.mode, group: listener.group };
    case "tcp":
      return { kind: "tcp", host: listener.host, port: listener.port, allow: [...listener.allow] };
    case "systemd":
      return listener.allow === undefined
        ? { kind: "systemd", name: listener.name }
        : { kind: "systemd", name: listener.name, allow: [...listener.allow] };
    default: {
      const unexpected: never = listener;
      throw new Error(`unknown listener kind ${JSON.stringify(unexpected)}`);
    }
  }
}
