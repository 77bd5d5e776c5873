/**
 * Snapshot replication to the relays, which have no LDAP access. The
 * internal host serves the relay view of its snapshot (no password hashes,
 * homes, uid/gid or storage paths) over HTTP(S) with a bearer token; a relay
 * pulls it, verifies it and swaps it in atomically.
 *
 * Server: GET /snapshot answers with the relay view as an SQLite file, built
 * into a private temporary directory and rebuilt whenever the internal
 * snapshot's metadata changes (read per request: one small SQLite query).
 * `ETag` is the quoted relay content hash, so `If-None-Match` gives 304;
 * `Repr-Digest` (RFC 9530) is the SHA-256 of the file bytes, so a client can
 * tell a damaged transfer from a bad snapshot. No snapshot yet: 503. GET
 * /health: 200 without a token, for monitoring.
 *
 * Client: the download goes to a temporary file beside the snapshot, bounded
 * in size and time, and must match the digest, open as a snapshot whose
 * content hash verifies, be the relay view and carry the ETag's hash before
 * it is renamed over the old one. Anything else throws and leaves the old
 * snapshot exactly as it was, so a relay keeps answering from its last good
 * copy while the internal host is down.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import {
  closeSync,
  createReadStream,
  fsyncSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import {
  readSnapshot,
  readSnapshotMeta,
  type SnapshotMeta,
  touchSnapshot,
  writeSnapshot,
} from "../core/directory/snapshot-store.js";
import { type Logger, sanitizePeerString } from "../core/log/logger.js";

export interface SnapshotServerOptions {
  /** The internal snapshot (config.snapshot.path). */
  snapshotPath: string;
  listen: { host: string; port: number };
  token: string;
  /** Certificate and key files; plain HTTP when absent (loopback or a trusted network only). */
  tls?: { cert: string; key: string };
  log: Logger;
}

export interface SnapshotServer {
  /** The snapshot URL clients pull from, e.g. https://127.0.0.1:8443/snapshot. */
  url: string;
  close(): Promise<void>;
}

export interface PullOptions {
  /** The server's snapshot URL (config.sync.pull.from). */
  from: string;
  token: string;
  /** PEM file of the CA (or self-signed certificate) to trust for https; the system CAs when absent. */
  caFile?: string;
  /** For the whole transfer, connection to last byte. */
  timeoutMs: number;
  snapshotPath: string;
  /** Largest snapshot accepted; default 2 GiB. */
  maxBytes?: number;
}

export interface PullResult {
  status: "updated" | "unchanged";
  meta: SnapshotMeta;
}

const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;
export const VERSION_HEADER = "x-emailng-version";
/** When the internal snapshot was last confirmed by its sources; relays take it as their own freshness. */
export const CREATED_AT_HEADER = "x-emailng-created-at";

export function sha256(data: string | Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

/**
 * Constant-time check of an Authorization header against the SHA-256 of the
 * token: both sides are hashed first, so their lengths never differ and the
 * comparison time tells nothing about the token.
 */
export function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? "");
  return timingSafeEqual(sha256(match?.[1] ?? ""), expected) && match !== null;
}

/** True when an If-None-Match list names the ETag (weak or strong) or is "*". */
export function etagListed(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((item) => {
    const tag = item.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}

interface RelayFile {
  /** What the internal snapshot's meta said when this file was built. */
  sourceKey: string;
  path: string;
  meta: SnapshotMeta;
  size: number;
  digest: string;
}

interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body?: string;
  /** The relay file to send as the body. */
  file?: string;
  version?: number;
}

/** SHA-256 of a file's bytes (base64), read in chunks. */
function fileDigest(path: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(1024 * 1024);
  const fd = openSync(path, "r");
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer))
      hash.update(buffer.subarray(0, read));
  } finally {
    closeSync(fd);
  }
  return hash.digest("base64");
}

export async function startSnapshotServer(options: SnapshotServerOptions): Promise<SnapshotServer> {
  if (options.token === "") throw new Error("the snapshot server needs a non-empty token");
  const expectedToken = sha256(options.token);
  const cacheDir = mkdtempSync(join(tmpdir(), "emailng-relay-snapshot-"));
  const log = options.log;
  let relay: RelayFile | null = null;
  /** createdAt of the internal snapshot as last read: when the sources last confirmed it. */
  let confirmedAt = "";

  /** The relay file for the current internal snapshot, rebuilt when its meta changed; null when there is none. */
  const currentRelay = (): RelayFile | null => {
    const meta = readSnapshotMeta(options.snapshotPath);
    if (meta === null) return null;
    // createdAt is not part of the key: a sync that only confirms the content
    // (touchSnapshot) must not rebuild the relay file; CREATED_AT_HEADER carries it.
    const keyOf = (m: SnapshotMeta): string => `${m.version}|${m.contentHash}`;
    confirmedAt = meta.createdAt;
    if (relay?.sourceKey === keyOf(meta)) return relay;
    // The key comes from the full read: the file may have been replaced since the meta query.
    const snapshot = readSnapshot(options.snapshotPath);
    const path = join(cacheDir, "relay.sqlite");
    const relayMeta = writeSnapshot(path, snapshot.directory, {
      version: snapshot.meta.version,
      view: "relay",
      sources: snapshot.meta.sources,
      now: new Date(snapshot.meta.createdAt),
    });
    relay = {
      sourceKey: keyOf(snapshot.meta),
      path,
      meta: relayMeta,
      size: statSync(path).size,
      digest: fileDigest(path),
    };
    log.info({ version: relayMeta.version, contentHash: relayMeta.contentHash }, "relay snapshot built");
    return relay;
  };

  /** Decides the answer to one request; only `handle` writes to the socket. */
  const answer = (request: IncomingMessage, path: string): Answer => {
    const text = (status: number, body: string, headers: Record<string, string | number> = {}): Answer => ({
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...headers },
      body,
    });
    if (path !== "/snapshot" && path !== "/health") return text(404, "not found\n");
    if (request.method !== "GET" && request.method !== "HEAD")
      return text(405, "use GET\n", { allow: "GET, HEAD" });
    if (path === "/health") return text(200, "ok\n");
    if (!tokenMatches(request.headers.authorization, expectedToken))
      return text(401, "a valid bearer token is required\n", {
        "www-authenticate": 'Bearer realm="emailng"',
      });
    let current: RelayFile | null;
    try {
      current = currentRelay();
    } catch (error) {
      log.error({ err: error }, "cannot build the relay snapshot");
      return text(503, "snapshot unavailable\n", { "retry-after": 60 });
    }
    if (current === null) return text(503, "no snapshot yet\n", { "retry-after": 60 });
    const etag = `"${current.meta.contentHash}"`;
    const headers = {
      etag,
      [VERSION_HEADER]: current.meta.version,
      [CREATED_AT_HEADER]: confirmedAt,
      "cache-control": "no-cache",
    };
    if (etagListed(request.headers["if-none-match"], etag))
      return { status: 304, headers, version: current.meta.version };
    return {
      status: 200,
      headers: {
        ...headers,
        "content-type": "application/vnd.sqlite3",
        "content-length": current.size,
        "repr-digest": `sha-256=:${current.digest}:`,
      },
      file: current.path,
      version: current.meta.version,
    };
  };

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const path = (request.url ?? "").split("?")[0] ?? "";
    const reply = answer(request, path);
    response.writeHead(reply.status, reply.headers);
    log.info(
      {
        peer: sanitizePeerString(`${request.socket.remoteAddress}:${request.socket.remotePort}`),
        method: sanitizePeerString(request.method ?? ""),
        path: sanitizePeerString(path),
        status: reply.status,
        ...(reply.version === undefined ? {} : { version: reply.version }),
      },
      "snapshot request",
    );
    if (request.method === "HEAD" || reply.file === undefined) {
      response.end(request.method === "HEAD" ? undefined : reply.body);
      return;
    }
    // Opened now, before any other request can rebuild (rename over) the
    // file, so the body is the file the headers describe.
    let fd: number;
    try {
      fd = openSync(reply.file, "r");
    } catch (error) {
      log.error({ err: error }, "cannot open the relay snapshot");
      response.destroy();
      return;
    }
    const stream = createReadStream(reply.file, { fd });
    stream.on("error", (error) => {
      log.error({ err: error }, "cannot send the relay snapshot");
      response.destroy(error);
    });
    stream.pipe(response);
  };

  const server =
    options.tls === undefined
      ? createHttpServer(handle)
      : createHttpsServer(
          { cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) },
          handle,
        );
  server.keepAliveTimeout = 5_000;
  try {
    server.listen(options.listen.port, options.listen.host);
    await once(server, "listening");
  } catch (error) {
    rmSync(cacheDir, { recursive: true, force: true });
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = options.listen.host.includes(":") ? `[${options.listen.host}]` : options.listen.host;
  return {
    url: `${options.tls === undefined ? "http" : "https"}://${host}:${port}/snapshot`,
    async close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

/** A readable reason: Node's connection errors may carry only a code, or several errors at once. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0)
    return error.errors.map(describeError).join("; ");
  const failure = error as NodeJS.ErrnoException;
  return failure.message || failure.code || String(error);
}

/**
 * Takes over the internal host's confirmation time when it is later than the
 * local one, so a relay whose content did not change stays fresh exactly as
 * long as the internal host keeps confirming its snapshot.
 */
function confirm(path: string, meta: SnapshotMeta, header: string | string[] | undefined): SnapshotMeta {
  const confirmed = typeof header === "string" ? Date.parse(header) : Number.NaN;
  if (!Number.isFinite(confirmed) || confirmed <= Date.parse(meta.createdAt)) return meta;
  // Never from the future: a wrong clock on the internal host must not make stale data look fresh.
  return touchSnapshot(path, { createdAt: new Date(Math.min(confirmed, Date.now())) });
}

function localMeta(path: string): SnapshotMeta | null {
  try {
    return readSnapshotMeta(path);
  } catch {
    // A damaged local file is replaced by a full download.
    return null;
  }
}

/** Sends the request and resolves with the response, or rejects with a readable reason. */
function send(
  url: URL,
  headers: Record<string, string>,
  caFile: string | undefined,
): {
  response: Promise<IncomingMessage>;
  abort(reason: Error): void;
} {
  const tls = url.protocol === "https:";
  if (!tls && url.protocol !== "http:") throw new Error(`${url.href} is not an http:// or https:// URL`);
  const ca = tls && caFile !== undefined ? readFileSync(caFile) : undefined;
  const request = (tls ? httpsRequest : httpRequest)(url, {
    method: "GET",
    headers,
    // A fresh connection per pull: pulls are minutes apart, and a pooled
    // socket the server has since closed would fail as "socket hang up".
    agent: false,
    ...(ca === undefined ? {} : { ca }),
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.on("response", resolve);
    request.on("error", reject);
  });
  request.end();
  return { response, abort: (reason) => request.destroy(reason) };
}

/** Streams the body into `path`, bounded, and returns its byte count and SHA-256 (base64). */
async function download(response: IncomingMessage, path: string, maxBytes: number) {
  const declared = response.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes)
    throw new Error(`the snapshot is ${declared} bytes, above the ${maxBytes} byte limit`);
  const fd = openSync(path, "wx", 0o644);
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    let tooLarge = false;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        tooLarge = bytes > maxBytes;
        if (tooLarge) break;
        hash.update(chunk);
        writeSync(fd, chunk);
      }
    } catch (error) {
      throw new Error(`the transfer broke off after ${bytes} bytes (${describeError(error)})`);
    }
    if (tooLarge) throw new Error(`the snapshot is larger than the ${maxBytes} byte limit`);
    if (!response.complete) throw new Error(`the transfer broke off after ${bytes} bytes`);
    if (declared !== undefined && Number(declared) !== bytes)
      throw new Error(`received ${bytes} of ${declared} bytes`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { bytes, digest: hash.digest("base64") };
}

/**
 * Fetches the relay snapshot from `from` into `snapshotPath` when it changed;
 * see the module comment for what is checked. Throws on any failure, with
 * the old snapshot untouched.
 */
export async function pullSnapshot(options: PullOptions): Promise<PullResult> {
  const url = new URL(options.from);
  const current = localMeta(options.snapshotPath);
  const headers: Record<string, string> = { accept: "application/vnd.sqlite3" };
  if (options.token !== "") headers["authorization"] = `Bearer ${options.token}`;
  if (current !== null) headers["if-none-match"] = `"${current.contentHash}"`;
  const temporary = join(
    dirname(options.snapshotPath),
    `.${basename(options.snapshotPath)}.pull-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
  let exchange: ReturnType<typeof send> | undefined;
  const timer = setTimeout(
    () => exchange?.abort(new Error(`no complete answer within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  try {
    exchange = send(url, headers, options.caFile);
    const response = await exchange.response;
    const status = response.statusCode ?? 0;
    if (status === 304) {
      response.resume();
      if (current === null)
        throw new Error("the server answered 304 Not Modified, but there is no local snapshot");
      return {
        status: "unchanged",
        meta: confirm(options.snapshotPath, current, response.headers[CREATED_AT_HEADER]),
      };
    }
    if (status !== 200) {
      response.resume();
      const reason =
        status === 401
          ? "the server refused the token (401)"
          : status === 503
            ? "the server has no snapshot to give (503)"
            : `unexpected HTTP status ${status}`;
      throw new Error(reason);
    }
    const etag = response.headers.etag;
    const digest = /^sha-256=:([A-Za-z0-9+/=]+):$/.exec(String(response.headers["repr-digest"] ?? ""))?.[1];
    if (etag === undefined || digest === undefined) {
      response.resume();
      throw new Error("the answer has no ETag or Repr-Digest; is this an emailng snapshot server?");
    }
    const received = await download(response, temporary, options.maxBytes ?? DEFAULT_MAX_BYTES);
    if (received.digest !== digest) throw new Error("the snapshot was damaged in transfer (digest mismatch)");
    const { meta } = readSnapshot(temporary);
    if (meta.view !== "relay")
      throw new Error(`the server sent the ${meta.view} view; relays take only the relay view`);
    if (etag !== `"${meta.contentHash}"`)
      throw new Error(`the ETag ${etag} does not match the snapshot's content hash ${meta.contentHash}`);
    renameSync(temporary, options.snapshotPath);
    const directoryFd = openSync(dirname(options.snapshotPath), "r");
    try {
      fsyncSync(directoryFd);
    } finally {
      closeSync(directoryFd);
    }
    return {
      status: "updated",
      meta: confirm(options.snapshotPath, meta, response.headers[CREATED_AT_HEADER]),
    };
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`pull from ${url.href} failed: ${describeError(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
