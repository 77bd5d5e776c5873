/**
 * quotad's usage feed on the wire: the real daemon's dict listener on a
 * temporary UNIX socket, driven with the exact client bytes Dovecot 2.3.19's
 * quota_clone sent (vectors dict-09, dict-10) and with the 2.4 (protocol v4)
 * form, including quota_clone_unset's U before each S. Every malformed
 * transaction is answered F<id> and leaves the stored usage exactly as it
 * was; so does a commit while the store is down. Lookups of the two keys
 * read the store; pipelined transactions on one connection each get their
 * reply; an oversized line closes the connection; usage survives a restart.
 */
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../core/config/load.js";
import { writeSnapshot } from "../../core/directory/snapshot-store.js";
import { type Quotad, startQuotad } from "../../quotad/program.js";
import type { UsageRecord } from "../../quotad/usage-store.js";
import { testUser } from "../harness/directory-builders.js";
import { freePort, makeTempDir, removeTempDir } from "../harness/process.js";
import { loadVectorFile } from "../harness/vectors.js";
import { connectLineClient, type LineClient } from "./net-fixtures.js";

let dir: string;
const clock = Date.parse("2026-03-01T12:00:00Z");
const now = () => clock;
const daemons: Quotad[] = [];
const clients: LineClient[] = [];

function config(name: string, extra = "", tables = "") {
  const parsed = parseConfigText(`
[snapshot]
path = "${join(dir, "snapshot.sqlite")}"
[quotad]
dovecot_username = "primary_address"
[[quotad.listen]]
tcp = "127.0.0.1:0"
[quotad.usage]
path = "${join(dir, `${name}.sqlite`)}"
${extra}
[[quotad.feed.listen]]
unix = "${join(dir, `${name}.sock`)}"
${tables}
`);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.config;
}

async function start(name: string, extra = "", tables = ""): Promise<Quotad> {
  const quotad = await startQuotad(config(name, extra, tables), pino({ level: "silent" }), {
    processMetrics: false,
    now,
  });
  daemons.push(quotad);
  return quotad;
}

async function dict(quotad: Quotad): Promise<LineClient> {
  const bound = quotad.feedAddresses()[0];
  if (bound?.kind !== "unix") throw new Error("expected a UNIX feed listener");
  const client = await connectLineClient({ path: bound.path });
  clients.push(client);
  return client;
}

/** Sends lines (LF added to each) and reads `replies` reply lines. */
async function send(client: LineClient, lines: string[], replies: number): Promise<string[]> {
  client.send(lines.map((line) => `${line}\n`).join(""));
  const got: string[] = [];
  for (let i = 0; i < replies; i++) got.push(await client.nextLine(5000));
  return got;
}

async function usageOf(quotad: Quotad, username: string): Promise<UsageRecord | undefined> {
  return (await quotad.usage.store.read([username])).get(username);
}

const HELLO = "H3\t2\t0\t\tquotaclone";

beforeAll(() => {
  dir = makeTempDir("quotad-feed");
  writeSnapshot(
    join(dir, "snapshot.sqlite"),
    {
      domains: { primary: "example.test", aliasDomains: [], virtualDomains: [] },
      users: [testUser("alice")],
      groups: [],
    },
    {
      version: 1,
      view: "relay",
      sources: [],
    },
  );
});

afterAll(async () => {
  for (const client of clients) client.socket.destroy();
  await Promise.all(daemons.map((quotad) => quotad.close()));
  removeTempDir(dir);
});

describe("quota_clone as Dovecot sends it", () => {
  let quotad: Quotad;
  beforeAll(async () => {
    quotad = await start("vectors");
  });

  it("takes every dict-09 transaction and keeps the last values per user", async () => {
    const vector = loadVectorFile("dict-09-quota-clone.txt");
    for (const connection of vector.connections) {
      const client = await dict(quotad);
      client.send(Buffer.from(connection.clientBytes).toString("latin1"));
      // The recording server answered O1 to each; so do we.
      expect(`${await client.nextLine()}\n`).toBe(Buffer.from(connection.serverBytes).toString("latin1"));
      client.socket.end();
      if (connection.id === 3) {
        expect(await usageOf(quotad, "alice@example.test")).toEqual({
          storageBytes: 4365,
          messages: 2,
          updatedAt: clock,
        });
      }
    }
    // Connection 4 (after the expunge) set alice back to 0; bob's write (connection 2) was 0 too.
    expect(await usageOf(quotad, "alice@example.test")).toMatchObject({ storageBytes: 0, messages: 0 });
    expect(await usageOf(quotad, "bob@example.test")).toMatchObject({ storageBytes: 0, messages: 0 });
  });

  it("accepts the dict-10 transaction that the scripted server there refused", async () => {
    const vector = loadVectorFile("dict-10-quota-clone-errors.txt");
    const client = await dict(quotad);
    client.send(Buffer.from(vector.connections[0]!.clientBytes).toString("latin1"));
    expect(await client.nextLine()).toBe("O1");
    expect(await usageOf(quotad, "bob@example.test")).toMatchObject({ storageBytes: 1199, messages: 1 });
  });

  it("speaks the 2.4 (v4) form, with quota_clone_unset's unsets before the sets", async () => {
    const client = await dict(quotad);
    const reply = await send(
      client,
      [
        "H4\t0\t0\t\tquotaclone",
        "B1\tcarol@example.test",
        "U1\tpriv/quota/storage",
        "U1\tpriv/quota/messages",
        "S1\tpriv/quota/storage\t777",
        "S1\tpriv/quota/messages\t7",
        "C1",
      ],
      1,
    );
    expect(reply).toEqual(["O1"]);
    expect(await usageOf(quotad, "carol@example.test")).toMatchObject({ storageBytes: 777, messages: 7 });
  });

  it("answers pipelined transactions and lookups in order on one connection", async () => {
    const client = await dict(quotad);
    const replies = await send(
      client,
      [
        HELLO,
        "B1\tdave@example.test",
        "S1\tpriv/quota/storage\t100",
        "C1",
        "B2\tDave@Example.TEST",
        "S2\tpriv/quota/storage\t200",
        "S2\tpriv/quota/messages\t2",
        "T2\t1700000000\t0",
        "C2",
        "Lpriv/quota/storage\tdave@example.test",
        "Lpriv/quota/messages\tdave@example.test",
        "Lpriv/quota/storage\tnobody@example.test",
        "Lshared/anything\t",
        "I0\t0\tpriv/quota/\tdave@example.test",
        "B3\tdave@example.test",
        "S3\tpriv/quota/storage\t999",
        "R3",
        "C3",
      ],
      8,
    );
    expect(replies).toEqual([
      "O1",
      "O2",
      "O200",
      "O2",
      "N",
      "N",
      "Fiteration is not supported",
      "F3\tunknown transaction 3",
    ]);
    expect(await usageOf(quotad, "dave@example.test")).toMatchObject({ storageBytes: 200, messages: 2 });
  });
});

describe("malformed transactions are refused and change nothing", () => {
  let quotad: Quotad;
  const before = { storageBytes: 5000, messages: 5 };
  beforeAll(async () => {
    quotad = await start("malformed");
    const client = await dict(quotad);
    expect(
      await send(
        client,
        [
          HELLO,
          "B1\tvictim@example.test",
          "S1\tpriv/quota/storage\t5000",
          "S1\tpriv/quota/messages\t5",
          "C1",
        ],
        1,
      ),
    ).toEqual(["O1"]);
  });

  it.each([
    { name: "value not a number", lines: ["B1\tvictim@example.test", "S1\tpriv/quota/storage\t12x", "C1"] },
    { name: "negative value", lines: ["B1\tvictim@example.test", "S1\tpriv/quota/storage\t-5", "C1"] },
    {
      name: "value too long",
      lines: ["B1\tvictim@example.test", `S1\tpriv/quota/storage\t${"9".repeat(20)}`, "C1"],
    },
    {
      name: "unexpected key after a good one",
      lines: ["B1\tvictim@example.test", "S1\tpriv/quota/storage\t1", "S1\tpriv/quota/other\t1", "C1"],
    },
    { name: "shared key", lines: ["B1\tvictim@example.test", "S1\tshared/quota/storage\t1", "C1"] },
    { name: "atomic increment", lines: ["B1\tvictim@example.test", "A1\tpriv/quota/storage\t-5000", "C1"] },
    { name: "no user", lines: ["B1\t", "S1\tpriv/quota/storage\t1", "C1"] },
    {
      name: "user with a line break",
      lines: ["B1\tvictim@example.test\u0001nx", "S1\tpriv/quota/storage\t1", "C1"],
    },
    { name: "set outside the transaction", lines: ["S1\tpriv/quota/storage\t1", "C1"] },
    { name: "malformed set line", lines: ["B1\tvictim@example.test", "S1\tpriv/quota/storage", "C1"] },
    {
      name: "begun twice",
      lines: ["B1\tvictim@example.test", "B1\tvictim@example.test", "S1\tpriv/quota/storage\t1", "C1"],
    },
    {
      name: "too many changes",
      lines: [
        "B1\tvictim@example.test",
        ...Array.from({ length: 17 }, () => "S1\tpriv/quota/storage\t1"),
        "C1",
      ],
    },
    {
      name: "unset, then a bad set",
      lines: ["B1\tvictim@example.test", "U1\tpriv/quota/storage", "S1\tpriv/quota/storage\tx", "C1"],
    },
  ])("$name → F1", async ({ lines }) => {
    const client = await dict(quotad);
    const [reply] = await send(client, [HELLO, ...lines], 1);
    expect(reply).toMatch(/^F1\t/);
    expect(await usageOf(quotad, "victim@example.test")).toMatchObject(before);
  });

  it("refuses the commands of a hello for another dict", async () => {
    const client = await dict(quotad);
    const replies = await send(
      client,
      [
        "H3\t2\t0\t\tacl",
        "B1\tvictim@example.test",
        "S1\tpriv/quota/storage\t1",
        "C1",
        "Lpriv/quota/storage\tvictim@example.test",
      ],
      2,
    );
    expect(replies[0]).toBe("F1\tunknown dict name acl");
    expect(replies[1]).toBe("O5000");
    expect(await usageOf(quotad, "victim@example.test")).toMatchObject(before);
  });

  it("refuses everything after a hello it cannot accept", async () => {
    const client = await dict(quotad);
    const replies = await send(
      client,
      [
        "H2\t0\t0\tvictim@example.test\tquotaclone",
        "B1\tvictim@example.test",
        "S1\tpriv/quota/storage\t1",
        "C1",
      ],
      1,
    );
    expect(replies[0]).toMatch(/^F0\t/);
    expect(await usageOf(quotad, "victim@example.test")).toMatchObject(before);
  });

  it("closes the connection on a line over 64 KiB, the transaction lost", async () => {
    const client = await dict(quotad);
    client.send(`${HELLO}\nB1\tvictim@example.test\nS1\tpriv/quota/storage\t${"1".repeat(70 * 1024)}\nC1\n`);
    await client.closed(3000);
    expect(await usageOf(quotad, "victim@example.test")).toMatchObject(before);
  });

  it("still takes a good transaction afterwards", async () => {
    const client = await dict(quotad);
    expect(
      await send(client, [HELLO, "B1\tvictim@example.test", "S1\tpriv/quota/storage\t6000", "C1"], 1),
    ).toEqual(["O1"]);
    // Only storage was sent: the message count stays.
    expect(await usageOf(quotad, "victim@example.test")).toMatchObject({ storageBytes: 6000, messages: 5 });
  });
});

describe("persistence and failures", () => {
  it("keeps usage across a restart", async () => {
    const first = await start("restart");
    const client = await dict(first);
    expect(
      await send(
        client,
        [HELLO, "B1\terin@example.test", "S1\tpriv/quota/storage\t4242", "S1\tpriv/quota/messages\t3", "C1"],
        1,
      ),
    ).toEqual(["O1"]);
    client.socket.destroy();
    await first.close();
    const second = await start("restart");
    expect(await usageOf(second, "erin@example.test")).toEqual({
      storageBytes: 4242,
      messages: 3,
      updatedAt: clock,
    });
  });

  it("counts applied and refused commits and decisions in its metrics", async () => {
    const quotad = await start("metrics", "", '[quotad.metrics]\nlisten = "127.0.0.1:0"');
    const client = await dict(quotad);
    await send(
      client,
      [
        HELLO,
        "B1\tgina@example.test",
        "S1\tpriv/quota/storage\t5",
        "C1",
        "B2\tgina@example.test",
        "A2\tpriv/quota/storage\t5",
        "C2",
      ],
      2,
    );
    const address = quotad.metricsAddress;
    if (address === null) throw new Error("no metrics endpoint");
    const text = await (await fetch(`http://${address.host}:${address.port}/metrics`)).text();
    expect(text).toMatch(/^emailng_quotad_usage_updates_total\{outcome="applied",program="quotad"\} 1$/m);
    expect(text).toMatch(/^emailng_quotad_usage_updates_total\{outcome="refused",program="quotad"\} 1$/m);
    expect(text).toMatch(/^emailng_quotad_usage_records\{program="quotad"\} 1$/m);
    expect(text).toMatch(/^emailng_quotad_usage_update_seconds_count\{program="quotad"\} 1$/m);
    expect(text).toMatch(/^emailng_quotad_decisions_total\{decision="over-quota",program="quotad"\} 0$/m);
    expect(text).toMatch(/^emailng_snapshot_version\{program="quotad"\} 1$/m);
  });

  it("answers a commit failure, not a success, when the store is down", async () => {
    const closedPort = await freePort();
    const quotad = await start(
      "redisdown",
      `backend = "redis"
[redis]
url = "redis://127.0.0.1:${closedPort}"
connect_timeout = "200ms"
command_timeout = "200ms"`,
    );
    const client = await dict(quotad);
    const replies = await send(
      client,
      [
        HELLO,
        "B1\terin@example.test",
        "S1\tpriv/quota/storage\t1",
        "C1",
        "Lpriv/quota/storage\terin@example.test",
      ],
      2,
    );
    expect(replies).toEqual(["F1\tusage store unavailable", "Fusage store unavailable"]);
  });
});
