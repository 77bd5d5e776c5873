/**
 * One sync-agent job at a time: `sync run`, `sync pull` and `cleanup run`
 * take the same lock file, whether started by systemd timers, by the
 * built-in scheduler or by hand. The file is created exclusively (O_EXCL)
 * and holds the owner's PID; a lock whose owner is gone (killed, host
 * rebooted without a tmpfs) is taken over, a lock held by a live process is
 * refused with a message naming it.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";

export interface HeldLock {
  path: string;
  release(): void;
}

export class LockBusyError extends Error {
  constructor(
    readonly path: string,
    readonly ownerPid: number,
  ) {
    super(`${path} is held by process ${ownerPid}: another sync-agent job is running`);
    this.name = "LockBusyError";
  }
}

function ownerOf(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock or throws LockBusyError; other failures (a missing directory) are thrown as they are. */
export function acquireLock(path: string): HeldLock {
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = ownerOf(path);
      if (owner !== null && owner !== process.pid && isRunning(owner)) throw new LockBusyError(path, owner);
      // Stale (owner gone) or unreadable (a writer died between create and write): take it over.
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      path,
      release() {
        if (released) return;
        released = true;
        if (ownerOf(path) === process.pid) rmSync(path, { force: true });
      },
    };
  }
  throw new LockBusyError(path, ownerOf(path) ?? 0);
}

/** Runs `job` holding the lock; the lock is released however the job ends. */
export async function withLock<T>(path: string, job: () => Promise<T>): Promise<T> {
  const lock = acquireLock(path);
  try {
    return await job();
  } finally {
    lock.release();
  }
}
