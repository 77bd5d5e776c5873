/**
 * Snapshot replication over real HTTP(S) on 127.0.0.1: startSnapshotServer
 * serves the relay view of an internal snapshot built from the sample
 * directory, and pullSnapshot fetches it the way a relay does. Proven: a
 * full pull, 304 on the next pull, an update after the internal snapshot
 * changes, no secrets in the relay file, and every failure (wrong token,
 * server down, no snapshot, truncated, damaged, rewritten or mislabelled
 * body, oversized, stalled) throws and leaves the old file byte for byte.
 * HTTPS works with the self-signed certificate as CA and fails with a wrong
 * one or none.
 */
import { once } from "node:events";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Directory } from "../../core/directory/model.js";
import { Resolver } from "../../core/directory/resolver.js";
import { contentHash, readSnapshot, relayView, writeSnapshot } from "../../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../../core/ldap/ldif.js";
import { defaultMapping } from "../../core/ldap/mapping.js";
import { createLogger } from "../../core/log/logger.js";
import {
  pullSnapshot,
  type SnapshotServer,
  sha256,
  startSnapshotServer,
} from "../../sync-agent/replicate.js";
import { makeTempDir, removeTempDir } from "../harness/process.js";
import { generateSelfSignedCertificate } from "../harness/tls.js";

const TOKEN = "relay-token-4f1c9a";

function sampleDirectory(): Directory {
  const path = fileURLToPath(new URL("../../deploy/ldap/sample-directory.ldif", import.meta.url));
  return directoryFromLdif(readFileSync(path, "utf8"), defaultMapping("dc=cs,dc=example,dc=org"), {
    primary: "cs.example.org",
    aliasDomains: ["example.org"],
    virtualDomains: ["rise.example"],
  }).directory;
}

const sources = [{ name: "sample", users: 12, groups: 6, skipped: 0 }];

/** A loopback HTTP server whose handler the test chooses. */
async function startHttp(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  url: string;
  server: Server;
  close(): Promise<void>;
}> {
  const server = createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/snapshot`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A proxy to `upstream` that hands the body (and headers) to `damage` before answering. */
function damagingProxy(
  upstream: () => string,
  damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => void,
) {
  return startHttp((req, res) => {
    void (async () => {
      const answer = await fetch(upstream(), { headers: { authorization: req.headers.authorization ?? "" } });
      const body = Buffer.from(await answer.arrayBuffer());
      const headers: Record<string, string> = {};
      answer.headers.forEach((value, key) => {
        headers[key] = value;
      });
      delete headers["transfer-encoding"];
      delete headers["connection"];
      delete headers["keep-alive"];
      damage(body, headers, res);
    })().catch((error: unknown) => res.destroy(error as Error));
  });
}

describe("snapshot replication over HTTP", () => {
  const directory = sampleDirectory();
  const logLines: string[] = [];
  const log = createLogger({
    program: "test",
    level: "debug",
    destination: { write: (line) => logLines.push(line) },
  });
  let dir: string;
  let internalPath: string;
  let relayDir: string;
  let relayPath: string;
  let server: SnapshotServer;

  const pull = (overrides: Partial<Parameters<typeof pullSnapshot>[0]> = {}) =>
    pullSnapshot({ from: server.url, token: TOKEN, timeoutMs: 5_000, snapshotPath: relayPath, ...overrides });

  /** Runs a pull that must fail and checks the relay file and its directory are exactly as before. */
  const expectRejected = async (attempt: Promise<unknown>, reason: RegExp): Promise<void> => {
    const before = readFileSync(relayPath);
    const entries = readdirSync(relayDir).sort();
    await expect(attempt).rejects.toThrow(reason);
    expect(readFileSync(relayPath).equals(before)).toBe(true);
    expect(readdirSync(relayDir).sort()).toEqual(entries);
  };

  beforeAll(async () => {
    dir = makeTempDir("sync-replicate");
    internalPath = join(dir, "internal.sqlite");
    relayDir = join(dir, "relay");
    mkdirSync(relayDir);
    relayPath = join(relayDir, "snapshot.sqlite");
    writeSnapshot(internalPath, directory, { version: 1, view: "internal", sources });
    server = await startSnapshotServer({
      snapshotPath: internalPath,
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      log,
    });
  });

  afterAll(async () => {
    await server?.close();
    if (dir !== undefined) removeTempDir(dir);
  });

  it("answers /health without a token, 404 elsewhere, 405 for other methods, 401 without the token", async () => {
    const base = server.url.replace(/\/snapshot$/, "");
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/other`)).status).toBe(404);
    const post = await fetch(server.url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const anonymous = await fetch(server.url);
    expect([anonymous.status, anonymous.headers.get("www-authenticate")]).toEqual([
      401,
      'Bearer realm="emailng"',
    ]);
  });

  it("a first pull downloads the relay view: no password hashes, homes, uid/gid or storage", async () => {
    const result = await pull();
    expect(result.status).toBe("updated");
    expect(result.meta).toMatchObject({
      version: 1,
      view: "relay",
      contentHash: contentHash(relayView(directory)),
    });
    const copy = readSnapshot(relayPath);
    expect(copy.directory.users).toHaveLength(directory.users.length);
    for (const user of copy.directory.users) {
      expect(user.passwordHash ?? user.home ?? user.uidNumber ?? user.gidNumber).toBeUndefined();
    }
    expect(readFileSync(relayPath).includes("{SSHA}")).toBe(false);
    expect(new Resolver(copy.directory).resolve("everyone@cs.example.org").kind).toBe("group");
  });

  it("sends ETag and X-Emailng-Version, and answers 304 to If-None-Match", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const full = await fetch(server.url, { headers: auth });
    const etag = full.headers.get("etag");
    expect(etag).toBe(`"${contentHash(relayView(directory))}"`);
    expect(full.headers.get("x-emailng-version")).toBe("1");
    await full.arrayBuffer();
    const again = await fetch(server.url, { headers: { ...auth, "if-none-match": `W/${etag}` } });
    expect([again.status, again.headers.get("etag")]).toEqual([304, etag]);
  });

  it("a second pull is unchanged and leaves the file alone", async () => {
    const before = readFileSync(relayPath);
    const result = await pull();
    expect([result.status, result.meta.version]).toEqual(["unchanged", 1]);
    expect(readFileSync(relayPath).equals(before)).toBe(true);
  });

  it("pulls the update after the internal snapshot changes", async () => {
    const grown: Directory = {
      ...directory,
      users: [
        ...directory.users,
        {
          login: "newcomer",
          source: "test",
          primaryAddress: "newcomer@cs.example.org",
          alternateAddresses: [],
          forwardingAddresses: [],
          quotaBytes: null,
          status: "active",
          passwordHash: "{SSHA}secret",
          home: "/home/newcomer",
        },
      ],
    };
    writeSnapshot(internalPath, grown, { version: 2, view: "internal", sources });
    const result = await pull();
    expect([result.status, result.meta.version]).toEqual(["updated", 2]);
    const copy = readSnapshot(relayPath);
    expect(new Resolver(copy.directory).resolve("newcomer@cs.example.org").kind).toBe("mailbox");
    expect(copy.directory.users.find((u) => u.login === "newcomer")?.passwordHash).toBeUndefined();
    expect((await pull()).status).toBe("unchanged");
  });

  it("a wrong token fails with 401 and the old file stays", async () => {
    await expectRejected(pull({ token: "not-the-token" }), /refused the token \(401\)/);
    await expectRejected(pull({ token: "" }), /401/);
  });

  it("never logs the token", () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join("")).not.toContain(TOKEN);
  });

  it("a server with no snapshot yet answers 503", async () => {
    const empty = await startSnapshotServer({
      snapshotPath: join(dir, "missing.sqlite"),
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      log,
    });
    try {
      await expectRejected(pull({ from: empty.url }), /no snapshot to give \(503\)/);
    } finally {
      await empty.close();
    }
  });

  it.each([
    {
      name: "a truncated body",
      reason: /the transfer broke off after \d+ bytes/,
      damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => {
        res.writeHead(200, headers);
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => res.socket?.destroy(), 50);
      },
    },
    {
      name: "a flipped byte",
      reason: /damaged in transfer \(digest mismatch\)/,
      damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => {
        const copy = Buffer.from(body);
        copy[copy.length >> 1] = (copy[copy.length >> 1] ?? 0) ^ 0xff;
        res.writeHead(200, headers);
        res.end(copy);
      },
    },
    {
      name: "rewritten content with a digest to match",
      reason: /content hash .* does not match/,
      damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => {
        const copy = Buffer.from(body.toString("latin1").replaceAll("gpapadop", "gpapadoq"), "latin1");
        res.writeHead(200, { ...headers, "repr-digest": `sha-256=:${sha256(copy).toString("base64")}:` });
        res.end(copy);
      },
    },
    {
      name: "an ETag naming another snapshot",
      reason: /ETag "sha256:0+" does not match/,
      damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => {
        res.writeHead(200, { ...headers, etag: `"sha256:${"0".repeat(64)}"` });
        res.end(body);
      },
    },
    {
      name: "a body without a digest",
      reason: /no ETag or Repr-Digest/,
      damage: (body: Buffer, headers: Record<string, string>, res: ServerResponse) => {
        const { "repr-digest": _, ...rest } = headers;
        res.writeHead(200, rest);
        res.end(body);
      },
    },
  ])("rejects $name and keeps the old file", async ({ damage, reason }) => {
    // Force a download: the pull must not be answered 304 by the real server.
    writeSnapshot(internalPath, directory, { version: 3, view: "internal", sources });
    const proxy = await damagingProxy(() => server.url, damage);
    try {
      await expectRejected(pull({ from: proxy.url }), reason);
    } finally {
      await proxy.close();
    }
  });

  it("rejects a snapshot above the size limit", async () => {
    await expectRejected(pull({ maxBytes: 1024 }), /above the 1024 byte limit/);
  });

  it("gives up on a server that never answers, within the timeout", async () => {
    const stalled = await startHttp(() => {});
    try {
      const started = Date.now();
      await expectRejected(pull({ from: stalled.url, timeoutMs: 300 }), /no complete answer within 300 ms/);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await stalled.close();
    }
  });

  it("with the server stopped the pull fails and the relay keeps answering from its last snapshot", async () => {
    const url = server.url;
    await server.close();
    await expectRejected(pull({ from: url }), /ECONNREFUSED/);
    const copy = readSnapshot(relayPath);
    expect(new Resolver(copy.directory).resolve("george.papadopoulos@cs.example.org").kind).toBe("mailbox");
  });
});

describe("snapshot replication over HTTPS", () => {
  let dir: string;
  let server: SnapshotServer;
  let caFile: string;
  let wrongCaFile: string;
  let relayPath: string;

  beforeAll(async () => {
    dir = makeTempDir("sync-replicate-tls");
    mkdirSync(join(dir, "server"));
    mkdirSync(join(dir, "other"));
    const certificate = await generateSelfSignedCertificate(join(dir, "server"), "localhost");
    caFile = certificate.certPath;
    wrongCaFile = (await generateSelfSignedCertificate(join(dir, "other"), "localhost")).certPath;
    const internalPath = join(dir, "internal.sqlite");
    relayPath = join(dir, "relay.sqlite");
    writeSnapshot(internalPath, sampleDirectory(), { version: 5, view: "internal", sources });
    server = await startSnapshotServer({
      snapshotPath: internalPath,
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      tls: { cert: certificate.certPath, key: certificate.keyPath },
      log: createLogger({ program: "test", level: "fatal" }),
    });
  });

  afterAll(async () => {
    await server?.close();
    if (dir !== undefined) removeTempDir(dir);
  });

  it("serves https:// and a pull trusting the certificate works", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/snapshot$/);
    const result = await pullSnapshot({
      from: server.url,
      token: TOKEN,
      caFile,
      timeoutMs: 5_000,
      snapshotPath: relayPath,
    });
    expect([result.status, result.meta.version, result.meta.view]).toEqual(["updated", 5, "relay"]);
    const again = await pullSnapshot({
      from: server.url,
      token: TOKEN,
      caFile,
      timeoutMs: 5_000,
      snapshotPath: relayPath,
    });
    expect(again.status).toBe("unchanged");
  });

  it.each([
    { name: "a different CA", ca: () => wrongCaFile },
    { name: "the system CAs only", ca: () => undefined },
  ])("fails with $name and keeps the old file", async ({ ca }) => {
    const before = readFileSync(relayPath);
    const caOption = ca();
    await expect(
      pullSnapshot({
        from: server.url,
        token: TOKEN,
        timeoutMs: 5_000,
        snapshotPath: relayPath,
        ...(caOption === undefined ? {} : { caFile: caOption }),
      }),
    ).rejects.toThrow(/certificate/i);
    expect(readFileSync(relayPath).equals(before)).toBe(true);
  });
});
