/**
 * `emailng sync daemon`: the [sync.schedule] jobs run by node-cron, for hosts
 * without systemd timers. Jobs never overlap: inside this process one job
 * runs at a time (a tick that finds another job running is skipped and
 * logged), and every job takes the same lock file as the one-shot commands,
 * so a timer-started `sync run` and the daemon cannot both write either.
 * A failed job is logged and the next tick tries again; the daemon stays up.
 */
import cron, { type ScheduledTask } from "node-cron";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import type { Logger } from "../core/log/logger.js";
import { LockBusyError, withLock } from "./lock.js";

export type JobName = "full" | "incremental" | "pull" | "cleanup";

export interface SchedulerOptions {
  config: DeepReadonly<Config>;
  log: Logger;
  jobs: Record<JobName, () => Promise<unknown>>;
}

export interface Scheduler {
  /** Names of the jobs that have a schedule. */
  scheduled: JobName[];
  /** Runs one job now, as a tick would (used by tests and at start-up). */
  runNow(job: JobName): Promise<"done" | "failed" | "skipped">;
  /** Stops the schedule and waits for a running job to finish. */
  stop(): Promise<void>;
}

export function startScheduler(options: SchedulerOptions): Scheduler {
  const { config, log } = options;
  let running: { job: JobName; done: Promise<unknown> } | null = null;
  const tasks: ScheduledTask[] = [];

  async function runNow(job: JobName): Promise<"done" | "failed" | "skipped"> {
    if (running !== null) {
      log.info({ job, running: running.job }, "skipped: another job is still running");
      return "skipped";
    }
    const started = Date.now();
    const done = withLock(config.sync.lock_file, options.jobs[job]);
    running = { job, done };
    try {
      await done;
      log.info({ job, ms: Date.now() - started }, "job finished");
      return "done";
    } catch (error) {
      if (error instanceof LockBusyError) {
        log.info({ job, owner: error.ownerPid }, "skipped: the lock is held by another process");
        return "skipped";
      }
      log.error({ job, err: error }, "job failed; will try again at the next tick");
      return "failed";
    } finally {
      running = null;
    }
  }

  const schedule = config.sync.schedule;
  const scheduled = (["full", "incremental", "pull", "cleanup"] as const).filter(
    (job) => schedule[job] !== "",
  );
  for (const job of scheduled) {
    tasks.push(cron.schedule(schedule[job], () => runNow(job), { name: `emailng-${job}` }));
    log.info({ job, schedule: schedule[job] }, "job scheduled");
  }

  return {
    scheduled,
    runNow,
    async stop() {
      for (const task of tasks) await task.destroy();
      if (running !== null) await running.done.catch(() => undefined);
    },
  };
}
