/**
 * The one alert raised when a login is put on hold after a burst: a warn
 * log line, a metric (counted by the caller) and, when configured, a
 * command run without a shell — `alert_command` followed by the login as
 * its last argument, with the details in EMAILNG_LOGIN, EMAILNG_REASON and
 * EMAILNG_SINCE. The command is bounded by `alert_timeout` and its failure
 * is only logged: a broken pager must never change a policy answer.
 */
import { execFile } from "node:child_process";
import type { Logger } from "pino";
import type { BurstTrigger, HoldRecord } from "./burst.js";

export interface AlertSettings {
  alertCommand: readonly string[];
  alertTimeoutMs: number;
}

export function raiseHoldAlert(
  hold: HoldRecord,
  trigger: BurstTrigger | null,
  settings: AlertSettings,
  log: Logger,
): Promise<void> {
  log.warn(
    {
      login: hold.login,
      reason: hold.reason,
      volume: trigger?.volume,
      distinct: trigger?.distinct,
      since: new Date(hold.since).toISOString(),
    },
    "login held: sending far above its usual volume (release with `emailng policy release LOGIN`)",
  );
  const [file, ...args] = settings.alertCommand;
  if (file === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    execFile(
      file,
      [...args, hold.login],
      {
        timeout: settings.alertTimeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024,
        env: {
          ...process.env,
          EMAILNG_LOGIN: hold.login,
          EMAILNG_REASON: hold.reason,
          EMAILNG_SINCE: new Date(hold.since).toISOString(),
        },
      },
      (error, _stdout, stderr) => {
        if (error !== null) {
          log.error(
            { command: file, login: hold.login, err: error, stderr: String(stderr).slice(0, 500) },
            "alert command failed",
          );
        } else {
          log.info({ command: file, login: hold.login }, "alert command ran");
        }
        resolve();
      },
    );
  });
}
