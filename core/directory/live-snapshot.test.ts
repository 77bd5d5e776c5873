import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import pino from "pino";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { testUser } from "../../test/harness/directory-builders.js";
import { LiveSnapshot, type LiveSnapshotOptions } from "./live-snapshot.js";
import type { Directory } from "./model.js";
import { touchSnapshot, writeSnapshot } from "./snapshot-store.js";

const root = mkdtempSync(join(tmpdir(), "emailng-live-snapshot-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function directoryWith(...logins: string[]): Directory {
  return {
    domains: { primary: "cs.example.org", aliasDomains: [], virtualDomains: [] },
    users: logins.map((login) => testUser(login)),
    groups: [],
  };
}

const HOUR = 3_600_000;
const T0 = Date.parse("2025-03-01T12:00:00.000Z");

function write(path: string, version: number, logins: string[], createdAt = T0): void {
  writeSnapshot(path, directoryWith(...logins), {
    version,
    view: "relay",
    sources: [{ name: "test", users: logins.length, groups: 0, skipped: 0 }],
    now: new Date(createdAt),
  });
}

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      for (const text of String(chunk).split("\n")) if (text) lines.push(JSON.parse(text));
      callback();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

describe("LiveSnapshot", () => {
  let dir: string;
  let path: string;
  let clock: number;
  let live: LiveSnapshot | undefined;
  let logged: ReturnType<typeof capture>;

  beforeEach(() => {
    dir = mkdtempSync(join(root, "case-"));
    path = join(dir, "snapshot.sqlite");
    clock = T0 + 60_000;
    logged = capture();
  });
  afterEach(() => live?.stop());

  function open(extra: Partial<LiveSnapshotOptions> = {}): LiveSnapshot {
    live = new LiveSnapshot({ path, maxAgeMs: HOUR, log: logged.log, now: () => clock, ...extra });
    live.start();
    return live;
  }

  it("loads the snapshot at start and answers from it", () => {
    write(path, 7, ["gpapadop"]);
    const current = open().current();
    expect(current?.meta.version).toBe(7);
    expect(current?.fresh).toBe(true);
    expect(current?.resolver.resolve("gpapadop@cs.example.org").kind).toBe("mailbox");
  });

  it("starts without a snapshot, answers null, and picks one up on reload", async () => {
    const snapshot = open();
    expect(snapshot.current()).toBeNull();
    expect(logged.lines.some((line) => line["msg"] === "no snapshot file (or no metadata in it)")).toBe(true);
    write(path, 1, ["jsmith"]);
    await snapshot.reload();
    expect(snapshot.current()?.resolver.resolve("jsmith@cs.example.org").kind).toBe("mailbox");
  });

  it("reload rejects while there is still no snapshot", async () => {
    const snapshot = open();
    await expect(snapshot.reload()).rejects.toThrow(/no snapshot file/);
    expect(snapshot.current()).toBeNull();
  });

  it("swaps in a new version; a request holding the old one keeps it", async () => {
    write(path, 1, ["gpapadop"]);
    const snapshot = open();
    const inFlight = snapshot.current();
    write(path, 2, ["jsmith"]);
    await snapshot.reload();
    const now = snapshot.current();
    expect(now?.meta.version).toBe(2);
    expect(now?.resolver.resolve("jsmith@cs.example.org").kind).toBe("mailbox");
    expect(now?.resolver.resolve("gpapadop@cs.example.org").kind).toBe("unknown");
    // The old object is untouched: what a request in flight still reads.
    expect(inFlight?.meta.version).toBe(1);
    expect(inFlight?.resolver.resolve("gpapadop@cs.example.org").kind).toBe("mailbox");
  });

  it("notices a new version on its own, at the check interval", async () => {
    write(path, 1, ["gpapadop"]);
    const swaps: number[] = [];
    const snapshot = open({ checkIntervalMs: 20, onSwap: (meta) => swaps.push(meta.version) });
    write(path, 2, ["jsmith"]);
    while (snapshot.current()?.meta.version !== 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(swaps).toEqual([1, 2]);
  });

  it("keeps the version in use when a new file cannot be loaded, and says so", async () => {
    write(path, 1, ["gpapadop"]);
    const snapshot = open();
    write(path, 2, ["jsmith"]);
    // Tamper with the content behind the recorded hash: readSnapshot refuses it.
    const db = new Database(path);
    db.prepare("UPDATE users SET primary_address = 'intruder@cs.example.org'").run();
    db.close();
    await expect(snapshot.reload()).rejects.toThrow(/content hash/);
    expect(snapshot.current()?.meta.version).toBe(1);
    expect(snapshot.current()?.resolver.resolve("gpapadop@cs.example.org").kind).toBe("mailbox");
    const line = logged.lines.find(
      (entry) => entry["msg"] === "snapshot could not be loaded; keeping the version in use",
    );
    expect(line).toMatchObject({ level: 50, version: 2, inUse: 1 });
  });

  it("keeps the version in use when the file is replaced by garbage", async () => {
    write(path, 1, ["gpapadop"]);
    const snapshot = open();
    writeFileSync(path, "this is not a database");
    await expect(snapshot.reload()).rejects.toThrow();
    expect(snapshot.current()?.meta.version).toBe(1);
  });

  it("keeps the version in use when the file disappears", async () => {
    write(path, 1, ["gpapadop"]);
    const snapshot = open();
    rmSync(path);
    await expect(snapshot.reload()).rejects.toThrow(/no snapshot file/);
    expect(snapshot.current()?.meta.version).toBe(1);
  });

  it("is fresh up to max age and stale after, by the snapshot's own createdAt", () => {
    write(path, 1, ["gpapadop"], T0);
    const snapshot = open();
    clock = T0 + HOUR;
    expect(snapshot.current()?.fresh).toBe(true);
    clock = T0 + HOUR + 1;
    expect(snapshot.current()?.fresh).toBe(false);
    expect(snapshot.ageMs()).toBe(HOUR + 1);
  });

  it("a snapshot written with a time in the past is stale from the start", () => {
    write(path, 1, ["gpapadop"], T0 - 2 * HOUR);
    expect(open().current()?.fresh).toBe(false);
  });

  it("an unchanged file is not loaded again", async () => {
    write(path, 1, ["gpapadop"]);
    const swaps: number[] = [];
    const snapshot = open({ onSwap: (meta) => swaps.push(meta.version) });
    const first = snapshot.current();
    await snapshot.reload();
    await snapshot.reload();
    expect(swaps).toEqual([1]);
    expect(snapshot.current()?.resolver).toBe(first?.resolver);
  });

  it("takes a confirmation (touchSnapshot) as fresh again without reloading the content", async () => {
    write(path, 3, ["gpapadop"], T0);
    const swaps: number[] = [];
    const snapshot = open({ onSwap: (meta) => swaps.push(meta.version) });
    const resolver = snapshot.current()?.resolver;
    clock = T0 + 2 * HOUR;
    expect(snapshot.current()?.fresh).toBe(false);
    touchSnapshot(path, { createdAt: new Date(T0 + 2 * HOUR - 1_000) });
    await snapshot.reload();
    expect(snapshot.current()?.fresh).toBe(true);
    expect(snapshot.current()?.meta.createdAt).toBe(new Date(T0 + 2 * HOUR - 1_000).toISOString());
    expect(snapshot.current()?.resolver).toBe(resolver);
    expect(swaps).toEqual([3]);
  });
});
