import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock, LockBusyError, withLock } from "./lock.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "emailng-lock-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the sync lock", () => {
  it("is exclusive while held and free again after release", () => {
    const path = join(dir, "sync.lock");
    const lock = acquireLock(path);
    expect(readFileSync(path, "utf8")).toBe(`${process.pid}\n`);
    writeFileSync(path, "1\n"); // PID 1 is always alive: another holder
    expect(() => acquireLock(path)).toThrow(LockBusyError);
    expect(() => acquireLock(path)).toThrow(/held by process 1/);
    writeFileSync(path, `${process.pid}\n`);
    lock.release();
    expect(existsSync(path)).toBe(false);
    acquireLock(path).release();
  });

  it("takes over a lock whose owner has exited", async () => {
    const path = join(dir, "sync.lock");
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid ?? 0;
    await new Promise((resolve) => child.on("exit", resolve));
    writeFileSync(path, `${pid}\n`);
    const lock = acquireLock(path);
    expect(readFileSync(path, "utf8")).toBe(`${process.pid}\n`);
    lock.release();
  });

  it("takes over an empty lock file (a writer that died before writing its PID)", () => {
    const path = join(dir, "sync.lock");
    writeFileSync(path, "");
    acquireLock(path).release();
    expect(existsSync(path)).toBe(false);
  });

  it("withLock releases when the job fails", async () => {
    const path = join(dir, "sync.lock");
    await expect(withLock(path, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(existsSync(path)).toBe(false);
    expect(await withLock(path, async () => 42)).toBe(42);
  });

  it("does not remove a lock another process took over", () => {
    const path = join(dir, "sync.lock");
    const lock = acquireLock(path);
    writeFileSync(path, "1\n");
    lock.release();
    expect(readFileSync(path, "utf8")).toBe("1\n");
  });
});
