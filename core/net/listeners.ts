/**
 * Where a daemon listens: UNIX sockets (the usual way Postfix and Dovecot on
 * the same host reach us), TCP with a client allow-list (a relay reaching a
 * shared daemon), and sockets inherited from systemd socket activation. This
 * module opens and closes listening sockets and nothing more; what happens
 * on a connection is server.ts's business.
 *
 * UNIX sockets get the requested mode and group right after bind, because
 * Postfix and Dovecot run as their own users and reach us only through group
 * permissions. A socket file left by a crashed run is replaced, but only if
 * nothing answers on it: two daemons on one path would split the traffic.
 */
import { execFile } from "node:child_process";
import { chmod, chown, lstat, readFile, unlink } from "node:fs/promises";
import net from "node:net";
import { type AllowList, createAllowList } from "./allow-list.js";

export type ListenerSpec =
  /** mode e.g. 0o660; group is a group NAME (or a numeric gid) to chgrp the socket to. */
  | { kind: "unix"; path: string; mode: number; group?: string }
  /** allow: CIDRs or addresses that may connect; an empty list allows nobody. */
  | { kind: "tcp"; host: string; port: number; allow: string[] }
  /**
   * A socket systemd passed us, picked by its FileDescriptorName=. allow is
   * checked for TCP peers when given; without it the unit's IPAddressAllow=
   * is what restricts clients.
   */
  | { kind: "systemd"; name: string; allow?: string[] }
  | InheritedSocket;

/** A listening fd inherited from systemd, as returned by listenersFromSystemd(). */
export interface InheritedSocket {
  kind: "inherited";
  fd: number;
  name: string;
  allow?: string[];
}

export type BoundAddress =
  | { kind: "unix"; label: string; path: string }
  | { kind: "tcp"; label: string; address: string; port: number; family: string };

export interface OpenListener {
  /** Stable name for logs and metrics labels. */
  readonly label: string;
  readonly transport: "unix" | "tcp";
  readonly server: net.Server;
  /** Present when peers must be checked before anything is read. */
  readonly allow: AllowList | undefined;
  address(): BoundAddress;
  /** Stop accepting and remove the socket file we created. Established connections are not touched. */
  close(): Promise<void>;
}

const SYSTEMD_FIRST_FD = 3;
let processInheritedSockets: InheritedSocket[] | undefined;

/**
 * Read systemd's socket activation variables (sd_listen_fds(3)): LISTEN_PID
 * must be our pid, LISTEN_FDS counts fds from 3, LISTEN_FDNAMES names them.
 * The variables are removed afterwards so child processes do not take the
 * sockets for theirs; reading process.env again returns the same result.
 */
export function listenersFromSystemd(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): InheritedSocket[] {
  if (env === process.env && processInheritedSockets !== undefined) return processInheritedSockets;
  const listenPid = env["LISTEN_PID"];
  const listenFds = env["LISTEN_FDS"];
  const listenNames = env["LISTEN_FDNAMES"];
  delete env["LISTEN_PID"];
  delete env["LISTEN_FDS"];
  delete env["LISTEN_FDNAMES"];
  let sockets: InheritedSocket[] = [];
  const count = listenFds !== undefined && /^\d{1,4}$/.test(listenFds) ? Number(listenFds) : 0;
  if (listenPid === String(pid) && count > 0) {
    const names = listenNames === undefined ? [] : listenNames.split(":");
    sockets = Array.from({ length: count }, (_, index) => ({
      kind: "inherited" as const,
      fd: SYSTEMD_FIRST_FD + index,
      // systemd's own default when a name is missing.
      name: names[index] || "unknown",
    }));
  }
  if (env === process.env) processInheritedSockets = sockets;
  return sockets;
}

/** Find the inherited socket a `{ kind: "systemd", name }` spec asks for. */
function resolveSystemdSpec(spec: { name: string; allow?: string[] }): InheritedSocket {
  const inherited = listenersFromSystemd();
  const found = inherited.find((socket) => socket.name === spec.name);
  if (found === undefined) {
    const known = inherited.map((socket) => socket.name).join(", ") || "none";
    throw new Error(`no socket named "${spec.name}" was passed by systemd (got: ${known})`);
  }
  return spec.allow === undefined ? found : { ...found, allow: spec.allow };
}

/** Resolve a group name to its gid via /etc/group, then NSS (`getent`) for LDAP/SSSD groups. */
export async function resolveGroupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const lines = (await readFile("/etc/group", "utf8").catch(() => "")).split("\n");
  const lookup = (line: string): number | undefined => {
    const [name, , gid] = line.split(":");
    return name === group && gid !== undefined && /^\d+$/.test(gid) ? Number(gid) : undefined;
  };
  for (const line of lines) {
    const gid = lookup(line);
    if (gid !== undefined) return gid;
  }
  const fromNss = await new Promise<string>((resolve) => {
    execFile("getent", ["group", group], { timeout: 5000 }, (error, stdout) => resolve(error ? "" : stdout));
  });
  const gid = lookup(fromNss.trim());
  if (gid === undefined) throw new Error(`unknown group "${group}" for the socket`);
  return gid;
}

/** True when a process accepts connections on the UNIX socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    const finish = (answered: boolean) => {
      clearTimeout(guard);
      probe.destroy();
      resolve(answered);
    };
    // A listener whose backlog is full does not refuse; treat slowness as "in use".
    const guard = setTimeout(() => finish(true), 2000);
    probe.once("connect", () => finish(true));
    probe.once("error", (error: NodeJS.ErrnoException) =>
      finish(error.code !== "ECONNREFUSED" && error.code !== "ENOENT"),
    );
  });
}

async function removeStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (stats === undefined) return;
  if (!stats.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  if (await socketAnswers(path)) throw new Error(`${path} is in use by another running process`);
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
}

function listenAsync(server: net.Server, options: net.ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Node accepts { fd } (a listening handle) at runtime; @types/node 20 types it as `handle: any`.
    server.listen(options as net.ListenOptions, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function stopAccepting(server: net.Server): void {
  // server.close() closes the listening handle at once; its callback would
  // wait for every connection to end, and the caller drains those itself.
  if (server.listening) server.close();
}

function describeBound(server: net.Server, label: string): BoundAddress {
  const bound = server.address();
  if (typeof bound === "string") return { kind: "unix", label, path: bound };
  if (bound === null) throw new Error(`listener ${label} is not listening`);
  return { kind: "tcp", label, address: bound.address, port: bound.port, family: bound.family };
}

/** Bind one listener. `onConnection` gets every accepted socket with this listener. */
export async function openListener(
  spec: ListenerSpec,
  onConnection: (socket: net.Socket, listener: OpenListener) => void,
): Promise<OpenListener> {
  const resolved = spec.kind === "systemd" ? resolveSystemdSpec(spec) : spec;
  // allowHalfOpen: a client may send its request and shut its write side; it still gets the reply.
  const server = net.createServer({ allowHalfOpen: true });
  // Connections can arrive as soon as the socket listens, before its mode,
  // group and inode are settled below (a client polling for the socket file,
  // Postfix during a restart): hold them and hand them over once the
  // listener is complete, instead of leaving them unread.
  let ready: OpenListener | undefined;
  const early: net.Socket[] = [];
  server.on("connection", (socket) => {
    if (ready === undefined) early.push(socket);
    else onConnection(socket, ready);
  });
  let allow: AllowList | undefined;
  let label: string;
  let createdSocket: { path: string; inode: number } | undefined;

  try {
    switch (resolved.kind) {
      case "unix": {
        label = `unix:${resolved.path}`;
        const gid = resolved.group === undefined ? undefined : await resolveGroupId(resolved.group);
        await removeStaleSocket(resolved.path);
        await listenAsync(server, { path: resolved.path });
        await chmod(resolved.path, resolved.mode);
        if (gid !== undefined) await chown(resolved.path, -1, gid);
        createdSocket = { path: resolved.path, inode: (await lstat(resolved.path)).ino };
        break;
      }
      case "tcp": {
        allow = createAllowList(resolved.allow);
        await listenAsync(server, { host: resolved.host, port: resolved.port });
        const bound = describeBound(server, "");
        label = `tcp:${resolved.host}:${bound.kind === "tcp" ? bound.port : resolved.port}`;
        break;
      }
      case "inherited": {
        label = `systemd:${resolved.name}`;
        if (resolved.allow !== undefined) allow = createAllowList(resolved.allow);
        await listenAsync(server, { fd: resolved.fd });
        break;
      }
      default: {
        const unknown: never = resolved;
        throw new Error(`unknown listener kind ${JSON.stringify(unknown)}`);
      }
    }
  } catch (error) {
    for (const socket of early.splice(0)) socket.destroy();
    stopAccepting(server);
    throw error;
  }

  const transport = typeof server.address() === "string" ? "unix" : "tcp";
  const listener: OpenListener = {
    label,
    transport,
    server,
    // Allow-lists only mean something for IP peers.
    allow: transport === "tcp" ? allow : undefined,
    address: () => describeBound(server, label),
    async close() {
      stopAccepting(server);
      if (createdSocket === undefined) return;
      // Remove the file only if it is still ours: a new instance may already have replaced it.
      const current = await lstat(createdSocket.path).catch(() => undefined);
      if (current?.isSocket() && current.ino === createdSocket.inode) {
        await unlink(createdSocket.path).catch(() => undefined);
      }
    },
  };
  ready = listener;
  for (const socket of early.splice(0)) onConnection(socket, listener);
  return listener;
}
