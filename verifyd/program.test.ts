/**
 * Wire tests: the real verifyd (startVerifyd and the `emailng verifyd`
 * command) on a temporary UNIX socket, driven with netstring bytes the way
 * Postfix sends them, including the unhappy paths: no snapshot, a stale one,
 * a malformed request, an unknown map, a framing error, several requests on
 * one connection, SIGHUP and SIGTERM.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { buildCli } from "../cli/build-cli.js";
import { parseConfigText } from "../core/config/load.js";
import type { Directory } from "../core/directory/model.js";
import { writeSnapshot } from "../core/directory/snapshot-store.js";
import { encodeNetstring } from "../core/protocols/netstring.js";
import { startVerifyd, type Verifyd, verifydProgram } from "./program.js";

const root = mkdtempSync(join(tmpdir(), "emailng-verifyd-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const silent = pino({ level: "silent" });

const directory: Directory = {
  domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
  users: [
    {
      login: "jsmith",
      source: "uid=jsmith",
      primaryAddress: "jsmith@cs.example.org",
      alternateAddresses: ["smith.john@cs.example.org"],
      forwardingAddresses: [],
      quotaBytes: null,
      status: "active",
    },
  ],
  groups: [],
};

function writeDirectory(path: string, version: number, createdAt = new Date()): void {
  writeSnapshot(path, directory, { version, view: "relay", sources: [], now: createdAt });
}

function configText(dir: string, extra = ""): string {
  return `
[log]
level = "error"
[snapshot]
path = "${join(dir, "snapshot.sqlite")}"
max_age = "1h"
[verifyd]
snapshot_check_interval = "1m"
[[verifyd.listen]]
unix = "${join(dir, "verifyd.sock")}"
${extra}
`;
}

function loadConfig(dir: string, extra = "") {
  const result = parseConfigText(configText(dir, extra));
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.config;
}

/** A socketmap client that reads whole netstring replies in order. */
class Client {
  private buffered = Buffer.alloc(0);
  private waiting: Array<(payload: string) => void> = [];
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on("data", (chunk) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      for (;;) {
        const colon = this.buffered.indexOf(0x3a);
        if (colon < 0) return;
        const length = Number(this.buffered.subarray(0, colon).toString());
        if (this.buffered.length < colon + length + 2) return;
        const payload = this.buffered.subarray(colon + 1, colon + 1 + length).toString();
        this.buffered = this.buffered.subarray(colon + length + 2);
        this.waiting.shift()?.(payload);
      }
    });
    this.closed = new Promise((resolve) => socket.on("close", () => resolve()));
  }

  static open(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new Client(socket)));
      socket.once("error", reject);
    });
  }

  ask(map: string, key: string): Promise<string> {
    return this.raw(encodeNetstring(`${map} ${key}`));
  }

  /** One request; a reply that never comes fails after 15 s, naming the request. */
  raw(bytes: Uint8Array | string): Promise<string> {
    const reply = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply within 15 s to ${JSON.stringify(bytes.toString())}`)),
        15_000,
      );
      this.waiting.push((payload) => {
        clearTimeout(timer);
        resolve(payload);
      });
    });
    this.socket.write(bytes);
    return reply;
  }

  end(): void {
    this.socket.end();
  }
}

describe("startVerifyd on a UNIX socket", () => {
  let verifyd: Verifyd | undefined;
  afterEach(async () => {
    await verifyd?.close();
    verifyd = undefined;
  });

  it("answers many requests on one connection, in order", async () => {
    const dir = mkdtempSync(join(root, "many-"));
    writeDirectory(join(dir, "snapshot.sqlite"), 1);
    verifyd = await startVerifyd(loadConfig(dir), silent, { processMetrics: false });
    const client = await Client.open(join(dir, "verifyd.sock"));
    const replies = await Promise.all([
      client.ask("recipient", "jsmith@cs.example.org"),
      client.ask("alias", "smith.john@cs.example.org"),
      client.ask("login", "smith.john@cs.example.org"),
      client.ask("domain", "cs.example.org"),
      client.ask("recipient", "nobody@cs.example.org"),
    ]);
    expect(replies).toEqual([
      "OK DUNNO",
      "OK jsmith@cs.example.org",
      "OK jsmith",
      "OK cs.example.org",
      "NOTFOUND ",
    ]);
    client.end();
  });

  it("answers PERM to a malformed request and an unknown map, and goes on serving", async () => {
    const dir = mkdtempSync(join(root, "perm-"));
    writeDirectory(join(dir, "snapshot.sqlite"), 1);
    verifyd = await startVerifyd(loadConfig(dir), silent, { processMetrics: false });
    const client = await Client.open(join(dir, "verifyd.sock"));
    expect(await client.raw(encodeNetstring("recipient"))).toBe("PERM socketmap request without a key");
    expect(await client.ask("mailbox", "jsmith@cs.example.org")).toMatch(/^PERM unknown map name/);
    expect(await client.ask("recipient", "jsmith@cs.example.org")).toBe("OK DUNNO");
    client.end();
  });

  it("closes a connection that breaks the framing, and keeps serving others", async () => {
    const dir = mkdtempSync(join(root, "framing-"));
    writeDirectory(join(dir, "snapshot.sqlite"), 1);
    verifyd = await startVerifyd(loadConfig(dir), silent, { processMetrics: false });
    const bad = await Client.open(join(dir, "verifyd.sock"));
    bad.socket.write("hello, this is not a netstring");
    await bad.closed;
    const good = await Client.open(join(dir, "verifyd.sock"));
    expect(await good.ask("recipient", "jsmith@cs.example.org")).toBe("OK DUNNO");
    good.end();
  });

  it("answers TEMP without a snapshot, then answers from one after reload", async () => {
    const dir = mkdtempSync(join(root, "missing-"));
    verifyd = await startVerifyd(loadConfig(dir), silent, { processMetrics: false });
    const client = await Client.open(join(dir, "verifyd.sock"));
    expect(await client.ask("recipient", "nobody@cs.example.org")).toBe("TEMP no directory snapshot loaded");
    writeDirectory(join(dir, "snapshot.sqlite"), 3);
    await verifyd.reload();
    expect(await client.ask("recipient", "nobody@cs.example.org")).toBe("NOTFOUND ");
    client.end();
  });

  it("answers TEMP, never NOTFOUND, from a stale snapshot", async () => {
    const dir = mkdtempSync(join(root, "stale-"));
    writeDirectory(join(dir, "snapshot.sqlite"), 5, new Date(Date.now() - 2 * 3_600_000));
    verifyd = await startVerifyd(loadConfig(dir), silent, { processMetrics: false });
    const client = await Client.open(join(dir, "verifyd.sock"));
    for (const [map, key] of [
      ["recipient", "nobody@cs.example.org"],
      ["recipient", "jsmith@cs.example.org"],
      ["alias", "smith.john@cs.example.org"],
      ["login", "jsmith@cs.example.org"],
      ["domain", "cs.example.org"],
    ] as const) {
      expect(await client.ask(map, key)).toBe("TEMP directory snapshot v5 is older than its maximum age");
    }
    client.end();
  });

  it("counts lookups by map and result on its metrics endpoint", async () => {
    const dir = mkdtempSync(join(root, "metrics-"));
    writeDirectory(join(dir, "snapshot.sqlite"), 9);
    verifyd = await startVerifyd(loadConfig(dir, '[verifyd.metrics]\nlisten = "127.0.0.1:0"'), silent, {
      processMetrics: false,
    });
    const client = await Client.open(join(dir, "verifyd.sock"));
    await client.ask("recipient", "jsmith@cs.example.org");
    await client.ask("recipient", "nobody@cs.example.org");
    await client.ask("bogus", "x");
    client.end();
    const address = verifyd.metricsAddress;
    if (address === null) throw new Error("metrics endpoint not started");
    const base = `http://${address.host}:${address.port}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/emailng_verifyd_lookups_total\{map="recipient",result="OK",program="verifyd"\} 1/);
    expect(text).toMatch(
      /emailng_verifyd_lookups_total\{map="recipient",result="NOTFOUND",program="verifyd"\} 1/,
    );
    expect(text).toMatch(/emailng_verifyd_lookups_total\{map="other",result="PERM",program="verifyd"\} 1/);
    expect(text).toMatch(/emailng_snapshot_version\{program="verifyd"\} 9/);
    expect(text).toMatch(/emailng_snapshot_fresh\{program="verifyd"\} 1/);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
  });
});

describe("emailng verifyd", () => {
  it("runs from the command line, reloads on SIGHUP and stops on SIGTERM", async () => {
    const dir = mkdtempSync(join(root, "cli-"));
    const configPath = join(dir, "emailng.toml");
    writeFileSync(configPath, configText(dir));
    const output: string[] = [];
    const cli = buildCli({
      programs: [verifydProgram],
      io: { out: (text) => output.push(text), err: (text) => output.push(text) },
    });
    const running = cli.parseAsync(["node", "emailng", "verifyd", "--config", configPath]);
    const socketPath = join(dir, "verifyd.sock");
    let client: Client | undefined;
    let failed: unknown;
    running.catch((error: unknown) => {
      failed = error;
    });
    const started = Date.now() + 20_000;
    while (client === undefined) {
      if (failed !== undefined || Date.now() > started) {
        throw new Error(
          `verifyd did not start: ${String(failed ?? "no socket after 20 s")}\n${output.join("")}`,
        );
      }
      client = await Client.open(socketPath).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return undefined;
      });
    }
    expect(await client.ask("recipient", "jsmith@cs.example.org")).toBe("TEMP no directory snapshot loaded");
    writeDirectory(join(dir, "snapshot.sqlite"), 1);
    // SIGHUP until the new snapshot answers: a signal sent before the daemon
    // installed its handlers (it listens first) must not hang the test.
    let reply = "";
    const deadline = Date.now() + 20_000;
    while (reply !== "OK DUNNO") {
      if (Date.now() > deadline) throw new Error(`still answering "${reply}" 20 s after SIGHUP`);
      process.kill(process.pid, "SIGHUP");
      await new Promise((resolve) => setTimeout(resolve, 50));
      reply = await client.ask("recipient", "jsmith@cs.example.org");
    }
    client.end();
    process.kill(process.pid, "SIGTERM");
    await running;
    await expect(Client.open(socketPath)).rejects.toThrow();
  });
});
