/**
 * Which sockets emailng serves on this host, from the configuration: the
 * socketmap of verifyd, its Dovecot dict, the policy sockets of policyd and
 * quotad and quotad's quota_clone feed. A listener passed by systemd
 * (`systemd = "NAME"`) is found in the installed socket units by its
 * FileDescriptorName, so doctor can probe it like a plain UNIX socket and
 * compare it with what Postfix and Dovecot use.
 *
 * A daemon is checked only when its table ([verifyd], [policyd], [quotad])
 * is written in the file: every daemon has a default listener, and a host
 * runs only some of them (a back-end no policyd, for instance).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ListenerConfig } from "../core/config/listener-config.js";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";

export type EndpointKind = "verifyd" | "verifyd-dict" | "policyd" | "quotad" | "quotad-feed";
export type EndpointProtocol = "socketmap" | "dict" | "policy";

export const PROTOCOL_OF: Record<EndpointKind, EndpointProtocol> = {
  verifyd: "socketmap",
  "verifyd-dict": "dict",
  policyd: "policy",
  quotad: "policy",
  "quotad-feed": "dict",
};

/** The systemd service running each kind, for the fixes. */
export const SERVICE_OF: Record<EndpointKind, string> = {
  verifyd: "emailng-verifyd",
  "verifyd-dict": "emailng-verifyd",
  policyd: "emailng-policyd",
  quotad: "emailng-quotad",
  "quotad-feed": "emailng-quotad",
};

export type EndpointAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  /** A systemd listener whose socket unit was not found (or is not a UNIX path). */
  | { kind: "unresolved"; name: string };

export interface Endpoint {
  kind: EndpointKind;
  /** Where it is configured, e.g. "policyd.listen[0]". */
  key: string;
  address: EndpointAddress;
}

/** The top-level tables written in the file ("verifyd", "policyd", …). */
export type DeployedTables = ReadonlySet<string>;

/** FileDescriptorName → ListenStream values, from the installed socket units. */
export type SystemdSockets = ReadonlyMap<string, readonly string[]>;

/** Where systemd looks for units, most important first (/etc overrides the package's copy). */
export const SYSTEMD_UNIT_DIRECTORIES = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/local/lib/systemd/system",
  "/lib/systemd/system",
  "/usr/lib/systemd/system",
] as const;

/** FileDescriptorName (default: the unit's name) and ListenStream= lines of one .socket unit. */
export function parseSocketUnit(unitName: string, text: string): { name: string; listen: string[] } {
  let name = unitName.replace(/\.socket$/, "");
  const listen: string[] = [];
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("[")) section = line;
    if (section !== "[Socket]") continue;
    const match = /^(FileDescriptorName|ListenStream)\s*=\s*(.*)$/.exec(line);
    if (match === null) continue;
    if (match[1] === "FileDescriptorName" && match[2] !== undefined && match[2] !== "") name = match[2];
    if (match[1] === "ListenStream" && match[2] !== undefined && match[2] !== "") listen.push(match[2]);
  }
  return { name, listen };
}

/** Reads every *.socket unit in `directories`; a unit found twice counts once, the first copy wins. */
export function readSystemdSockets(
  directories: readonly string[] = SYSTEMD_UNIT_DIRECTORIES,
): SystemdSockets {
  const seen = new Set<string>();
  const sockets = new Map<string, string[]>();
  for (const directory of directories) {
    let files: string[];
    try {
      files = readdirSync(directory).filter((file) => file.endsWith(".socket"));
    } catch {
      continue;
    }
    for (const file of files.sort()) {
      if (seen.has(file)) continue;
      seen.add(file);
      let text: string;
      try {
        text = readFileSync(join(directory, file), "utf8");
      } catch {
        continue;
      }
      const unit = parseSocketUnit(file, text);
      sockets.set(unit.name, [...(sockets.get(unit.name) ?? []), ...unit.listen]);
    }
  }
  return sockets;
}

function address(listener: DeepReadonly<ListenerConfig>, systemd: SystemdSockets): EndpointAddress {
  switch (listener.kind) {
    case "unix":
      return { kind: "unix", path: listener.path };
    case "tcp":
      return { kind: "tcp", host: listener.host, port: listener.port };
    case "systemd": {
      const path = systemd.get(listener.name)?.find((listen) => listen.startsWith("/"));
      return path === undefined ? { kind: "unresolved", name: listener.name } : { kind: "unix", path };
    }
    default: {
      const unexpected: never = listener;
      throw new Error(`unknown listener ${JSON.stringify(unexpected)}`);
    }
  }
}

export function servedEndpoints(
  config: DeepReadonly<Config>,
  deployed: DeployedTables,
  systemd: SystemdSockets,
): Endpoint[] {
  const endpoints: Endpoint[] = [];
  const add = (kind: EndpointKind, key: string, listeners: readonly DeepReadonly<ListenerConfig>[]) => {
    listeners.forEach((listener, index) => {
      endpoints.push({ kind, key: `${key}[${index}]`, address: address(listener, systemd) });
    });
  };
  if (deployed.has("verifyd")) {
    add("verifyd", "verifyd.listen", config.verifyd.listen);
    add("verifyd-dict", "verifyd.dovecot.listen", config.verifyd.dovecot.listen);
  }
  if (deployed.has("policyd")) add("policyd", "policyd.listen", config.policyd.listen);
  if (deployed.has("quotad")) {
    add("quotad", "quotad.listen", config.quotad.listen);
    add("quotad-feed", "quotad.feed.listen", config.quotad.feed.listen);
  }
  return endpoints;
}

export function describeAddress(address: EndpointAddress): string {
  switch (address.kind) {
    case "unix":
      return address.path;
    case "tcp":
      return `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
    case "unresolved":
      return `systemd socket "${address.name}"`;
    default: {
      const unexpected: never = address;
      throw new Error(`unknown address ${JSON.stringify(unexpected)}`);
    }
  }
}
