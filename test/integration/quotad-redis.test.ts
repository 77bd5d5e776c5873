/**
 * Several back-ends and relays sharing usage in a real redis-server.
 *
 * Back-end A: Dovecot 2.3 whose quota_clone writes to Redis itself
 *     quota_clone_dict = redis:host=127.0.0.1:port=<p>:prefix=quota/:expire_secs=604800
 * Back-end B: Dovecot 2.3 whose quota_clone writes to a quotad there
 *     quota_clone_dict = proxy:<dir>/quotad-dict.sock:quotaclone
 * and that quotad stores into the same Redis. Two relay quotad instances
 * (no feed) answer from Redis alone.
 *
 * Mail is delivered over LMTP until each back-end refuses a message; then
 * the keys Dovecot wrote and the keys quotad wrote are the same form
 * (`quota/<user>/quota/storage`, plain decimal, with an expiry) and match
 * what doveadm reports; both relays refuse the full mailboxes of both
 * back-ends and accept the others; a value written without an expiry is of
 * unknown age and never refuses; and when Redis stops, the relays give the
 * temporary answer, never a refusal.
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import type { Directory } from "../../core/directory/model.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { encodePolicyRequest } from "../../core/protocols/policy.js";
import { type Quotad, startQuotad } from "../../quotad/program.js";
import { testUser } from "../harness/directory-builders.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { makeTempDir, removeTempDir, runCommand, waitFor } from "../harness/process.js";
import { type Redis, startRedis } from "../harness/redis.js";
import { connectLineClient } from "../wire/net-fixtures.js";

const LIMIT = 2500;
const SEVEN_DAYS_SECONDS = 7 * 86_400;

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    testUser("alice", { quotaBytes: LIMIT }), // on back-end A
    testUser("bob", { quotaBytes: LIMIT }), // on back-end B
    testUser("carol", { quotaBytes: 1000 }), // written by hand without expiry
    testUser("dave", { quotaBytes: 1_000_000 }), // on back-end A, plenty of room
  ],
  groups: [],
};

describe("usage in Redis, written by Dovecot and by quotad, read by every relay", () => {
  let dir: string;
  let redis: Redis;
  let dovecotA: Dovecot;
  let dovecotB: Dovecot;
  let backendQuotad: Quotad;
  const relays: Quotad[] = [];

  const configFor = (name: string, feed: boolean) => {
    const parsed = parseConfigText(`
[snapshot]
path = "${join(dir, "snapshot.sqlite")}"
[quotad]
grace = "10%"
[[quotad.listen]]
tcp = "127.0.0.1:0"
[quotad.usage]
backend = "redis"
redis_key_prefix = "quota/"
path = "${join(dir, `${name}-unused.sqlite`)}"
${feed ? `[[quotad.feed.listen]]\nunix = "${join(dir, "quotad-dict.sock")}"\nmode = "0660"\ngroup = "nogroup"` : ""}
[redis]
url = "${redis.url}"
connect_timeout = "500ms"
command_timeout = "500ms"
`);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    return parsed.config;
  };

  const dovecotConf = (cloneDict: string) => `mail_plugins = $mail_plugins quota quota_clone
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_grace = 10%%
  quota_clone_dict = ${cloneDict}
}
`;

  const deliverUntilRefused = async (dovecot: Dovecot, user: string) => {
    for (let i = 0; i < 12; i++) {
      const result = await runCommand(
        "/usr/bin/swaks",
        [
          "--server",
          "127.0.0.1",
          "--port",
          String(dovecot.ports.lmtp),
          "--protocol",
          "LMTP",
          "--from",
          "s@client.test",
          "--to",
          user,
          "--body",
          `${"z".repeat(76)}\n`.repeat(8),
        ],
        { timeoutMs: 30_000 },
      );
      if (/552 5\.2\.2/.test(result.stdout)) return;
    }
    throw new Error(`Dovecot never refused a message for ${user}`);
  };

  const ask = async (quotad: Quotad, recipient: string, size = 0): Promise<string> => {
    const bound = quotad.addresses()[0];
    if (bound?.kind !== "tcp") throw new Error("expected TCP");
    const client = await connectLineClient({ host: "127.0.0.1", port: bound.port });
    try {
      client.send(
        Buffer.from(
          encodePolicyRequest({
            request: "smtpd_access_policy",
            protocol_state: "RCPT",
            recipient,
            size: String(size),
          }),
        ).toString(),
      );
      return await client.nextLine(5000);
    } finally {
      client.socket.destroy();
    }
  };

  const storageKiB = async (dovecot: Dovecot, user: string) => {
    const result = await dovecot.doveadm(["-f", "tab", "quota", "get", "-u", user]);
    const row = result.stdout.split("\n").find((line) => line.split("\t")[1] === "STORAGE");
    return Number(row?.split("\t")[2]);
  };

  beforeAll(async () => {
    dir = makeTempDir("quotad-redis");
    chmodSync(dir, 0o755);
    writeSnapshot(join(dir, "snapshot.sqlite"), directory, { version: 1, view: "relay", sources: [] });
    redis = await startRedis();
    backendQuotad = await startQuotad(configFor("backend", true), pino({ level: "silent" }), {
      processMetrics: false,
    });
    for (const name of ["relay1", "relay2"]) {
      relays.push(
        await startQuotad(configFor(name, false), pino({ level: "silent" }), { processMetrics: false }),
      );
    }
    dovecotA = await startDovecot({
      protocols: ["lmtp"],
      users: [
        { name: "alice", password: "pw", fields: { quota_rule: `*:bytes=${LIMIT}` } },
        { name: "dave", password: "pw", fields: { quota_rule: "*:bytes=1000000" } },
      ],
      conf: dovecotConf(
        `redis:host=127.0.0.1:port=${redis.port}:prefix=quota/:expire_secs=${SEVEN_DAYS_SECONDS}`,
      ),
    });
    dovecotB = await startDovecot({
      protocols: ["lmtp"],
      users: [{ name: "bob", password: "pw", fields: { quota_rule: `*:bytes=${LIMIT}` } }],
      conf: dovecotConf(`proxy:${join(dir, "quotad-dict.sock")}:quotaclone`),
    });
  });

  afterAll(async () => {
    await dovecotA?.destroy();
    await dovecotB?.destroy();
    await Promise.all([backendQuotad, ...relays].filter(Boolean).map((quotad) => quotad.close()));
    await redis?.destroy();
    if (dir) removeTempDir(dir);
  });

  it("both writers leave the same keys, with an expiry, matching doveadm", async () => {
    await deliverUntilRefused(dovecotA, "alice");
    await deliverUntilRefused(dovecotB, "bob");
    const small = await runCommand(
      "/usr/bin/swaks",
      [
        "--server",
        "127.0.0.1",
        "--port",
        String(dovecotA.ports.lmtp),
        "--protocol",
        "LMTP",
        "--from",
        "s@client.test",
        "--to",
        "dave",
      ],
      { timeoutMs: 30_000 },
    );
    expect(small.stdout).toMatch(/250 2\.0\.0 <dave>/);

    for (const [dovecot, user] of [
      [dovecotA, "alice"],
      [dovecotB, "bob"],
    ] as const) {
      const kib = await storageKiB(dovecot, user);
      await waitFor(
        async () =>
          Math.ceil(
            Number((await redis.cli(["GET", `quota/${user}/quota/storage`])).stdout.trim()) / 1024,
          ) === kib,
        { timeoutMs: 15_000, what: `Redis to hold ${user}'s usage (${kib} KiB)` },
      );
      const ttl = Number((await redis.cli(["TTL", `quota/${user}/quota/storage`])).stdout.trim());
      expect(ttl).toBeGreaterThan(SEVEN_DAYS_SECONDS - 120);
      expect(ttl).toBeLessThanOrEqual(SEVEN_DAYS_SECONDS);
      expect((await redis.cli(["GET", `quota/${user}/quota/messages`])).stdout.trim()).toMatch(
        /^[1-9][0-9]*$/,
      );
    }
    const keys = (await redis.cli(["--scan", "--pattern", "quota/*"])).stdout.trim().split("\n").sort();
    expect(keys).toEqual([
      "quota/alice/quota/messages",
      "quota/alice/quota/storage",
      "quota/bob/quota/messages",
      "quota/bob/quota/storage",
      "quota/dave/quota/messages",
      "quota/dave/quota/storage",
    ]);
  });

  it("every quotad answers from Redis: full mailboxes of both back-ends refused, others accepted", async () => {
    for (const quotad of [...relays, backendQuotad]) {
      // A message the size Dovecot last refused (about 1 KiB) no longer fits anywhere.
      expect(await ask(quotad, "alice@cs.example.org", 1000)).toBe("action=552 5.2.2 Mailbox is full");
      expect(await ask(quotad, "bob@cs.example.org", 1000)).toBe("action=552 5.2.2 Mailbox is full");
      expect(await ask(quotad, "dave@cs.example.org", 5000)).toBe("action=DUNNO");
      expect(await ask(quotad, "dave@cs.example.org", 2_000_000)).toBe(
        "action=552 5.3.4 Message is too big for this mailbox",
      );
    }
  });

  it("never refuses on a value without expiry (its age is unknown)", async () => {
    await redis.cli(["SET", "quota/carol/quota/storage", "999999"]);
    expect(await ask(relays[0] as Quotad, "carol@cs.example.org")).toBe("action=DUNNO");
    const [reading] = (await (relays[0] as Quotad).usage.store.read(["carol"])).values();
    expect(reading).toEqual({ storageBytes: 999_999, messages: null, updatedAt: null });
  });

  it("answers the temporary reply, never a refusal, once Redis is gone", async () => {
    await redis.stop();
    for (const quotad of relays) {
      expect(await ask(quotad, "alice@cs.example.org", 1000)).toBe(
        "action=DEFER_IF_PERMIT Mailbox quota cannot be checked now",
      );
    }
  });
});
