/**
 * The SQLite usage store on a real file: writes survive reopening, a
 * partial update keeps the other value, an update that removes both
 * values removes the record, a failed transaction changes neither the file
 * nor memory, a second writer's commit is picked up by refresh(), and a
 * read-only handle (reports) opens a file no daemon holds and refuses a
 * missing one.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir } from "../test/harness/process.js";
import { SqliteUsageStore } from "./usage-sqlite.js";

let dir: string;
let path: string;
const open: SqliteUsageStore[] = [];
const store = (readonly = false) => {
  const opened = new SqliteUsageStore(path, { readonly });
  open.push(opened);
  return opened;
};

beforeEach(() => {
  dir = makeTempDir("quotad-sqlite");
  path = join(dir, "usage.sqlite");
});

afterEach(async () => {
  for (const opened of open.splice(0)) await opened.close();
  removeTempDir(dir);
});

describe("SqliteUsageStore", () => {
  it("keeps what was written across a reopen, with mode 0640", async () => {
    const first = store();
    first.write([{ username: "alice", storageBytes: 1205, messages: 1 }], 1000);
    first.write([{ username: "alice", storageBytes: 4365 }], 2000);
    expect(first.read(["alice", "nobody"])).toEqual(
      new Map([["alice", { storageBytes: 4365, messages: 1, updatedAt: 2000 }]]),
    );
    await first.close();
    expect(statSync(path).mode & 0o777).toBe(0o640);
    const second = store();
    expect(await second.list()).toEqual([
      { username: "alice", storageBytes: 4365, messages: 1, updatedAt: 2000 },
    ]);
  });

  it("removes a record whose values were both unset", () => {
    const usage = store();
    usage.write([{ username: "bob", storageBytes: 1, messages: 1 }], 1);
    usage.write([{ username: "bob", storageBytes: null, messages: null }], 2);
    expect(usage.size).toBe(0);
  });

  it("changes nothing when a write fails half way", () => {
    const usage = store();
    usage.write([{ username: "carol", storageBytes: 10, messages: 1 }], 1);
    // An object is not a value SQLite can bind: the second update throws inside the transaction.
    expect(() =>
      usage.write(
        [
          { username: "carol", storageBytes: 20 },
          { username: "dave", storageBytes: { bad: true } as unknown as number },
        ],
        2,
      ),
    ).toThrow();
    expect(usage.read(["carol", "dave"])).toEqual(
      new Map([["carol", { storageBytes: 10, messages: 1, updatedAt: 1 }]]),
    );
  });

  it("sees another writer's commits after refresh()", () => {
    const daemon = store();
    const importer = store();
    expect(daemon.refresh()).toBe(false);
    importer.write([{ username: "erin", storageBytes: 99, messages: 2 }], 5);
    expect(daemon.read(["erin"]).size).toBe(0);
    expect(daemon.refresh()).toBe(true);
    expect(daemon.read(["erin"]).get("erin")).toEqual({ storageBytes: 99, messages: 2, updatedAt: 5 });
    expect(daemon.refresh()).toBe(false);
  });

  it("opens read-only for reports, and refuses a file that does not exist", async () => {
    const writer = store();
    writer.write([{ username: "frank", storageBytes: 7, messages: 1 }], 9);
    await writer.close();
    expect(await store(true).list()).toEqual([
      { username: "frank", storageBytes: 7, messages: 1, updatedAt: 9 },
    ]);
    path = join(dir, "absent.sqlite");
    expect(() => store(true)).toThrow(/no usage file at .*absent\.sqlite/);
  });
});
