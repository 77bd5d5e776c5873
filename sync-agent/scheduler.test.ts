import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfigText } from "../core/config/load.js";
import { createLogger } from "../core/log/logger.js";
import { startScheduler } from "./scheduler.js";

let dir: string;
let lines: string[];
const log = () =>
  createLogger({
    program: "test",
    level: "info",
    destination: new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    }),
  });

function config(schedule: string) {
  const result = parseConfigText(
    `[sync]\nlock_file = "${join(dir, "sync.lock")}"\n[sync.schedule]\n${schedule}\n`,
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.config;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "emailng-scheduler-"));
  lines = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const noJob = async () => {};

describe("the sync daemon scheduler", () => {
  it("runs a job on its cron schedule and leaves empty schedules off", async () => {
    let runs = 0;
    const scheduler = startScheduler({
      config: config('full = "* * * * * *"\nincremental = ""\npull = ""\ncleanup = ""'),
      log: log(),
      jobs: { full: async () => void runs++, incremental: noJob, pull: noJob, cleanup: noJob },
    });
    expect(scheduler.scheduled).toEqual(["full"]);
    const deadline = Date.now() + 5_000;
    while (runs < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await scheduler.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    const after = runs;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(runs).toBe(after);
  });

  it("never runs two jobs at once, skips while another process holds the lock, survives a failing job", async () => {
    let release: () => void = () => {};
    const scheduler = startScheduler({
      config: config('full = ""\nincremental = ""\npull = ""\ncleanup = ""'),
      log: log(),
      jobs: {
        full: () => new Promise<void>((resolve) => (release = resolve)),
        incremental: noJob,
        pull: noJob,
        cleanup: async () => Promise.reject(new Error("doveadm exploded")),
      },
    });
    const slow = scheduler.runNow("full");
    expect(await scheduler.runNow("incremental")).toBe("skipped");
    release();
    expect(await slow).toBe("done");
    expect(await scheduler.runNow("cleanup")).toBe("failed");
    expect(lines.join("")).toContain("doveadm exploded");
    writeFileSync(join(dir, "sync.lock"), "1\n");
    expect(await scheduler.runNow("incremental")).toBe("skipped");
    expect(lines.join("")).toContain("the lock is held by another process");
    rmSync(join(dir, "sync.lock"));
    expect(await scheduler.runNow("incremental")).toBe("done");
    await scheduler.stop();
  });
});
