/**
 * Signal handling for the daemons: SIGTERM (systemd stop) and SIGINT (a
 * terminal) run the program's shutdown once — normally closing its servers
 * gracefully — and then exit; SIGHUP asks for a reload (new config or
 * snapshot) and never stops the process, even when the reload fails.
 */
import type { Logger } from "pino";

export interface ShutdownHandlerOptions {
  log: Logger;
  onTerminate: () => Promise<void>;
  onReload?: () => Promise<void>;
  /** How to leave the process; tests replace it. */
  exit?: (code: number) => void;
}

/** Install the handlers; returns a function that removes them again. */
export function installShutdownHandlers(options: ShutdownHandlerOptions): () => void {
  const { log, onTerminate, onReload } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let terminating = false;
  let reloading = false;

  const terminate = (signal: NodeJS.Signals) => {
    if (terminating) {
      // Shutdown is bounded by the servers' grace period; a second signal must not start another.
      log.warn({ signal }, "already shutting down");
      return;
    }
    terminating = true;
    log.info({ signal }, "shutting down");
    onTerminate().then(
      () => {
        log.info("stopped");
        exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        exit(1);
      },
    );
  };

  const reload = () => {
    if (onReload === undefined) {
      log.info({ signal: "SIGHUP" }, "nothing to reload");
      return;
    }
    if (terminating || reloading) {
      log.warn({ signal: "SIGHUP", terminating, reloading }, "reload skipped");
      return;
    }
    reloading = true;
    log.info({ signal: "SIGHUP" }, "reloading");
    onReload()
      .then(
        () => log.info("reloaded"),
        // The old configuration stays in force; the operator reads why here.
        (error: unknown) => log.error({ err: error }, "reload failed; keeping the running configuration"),
      )
      .finally(() => {
        reloading = false;
      });
  };

  process.on("SIGTERM", terminate);
  process.on("SIGINT", terminate);
  // Always take SIGHUP: its default action would kill the daemon.
  process.on("SIGHUP", reload);
  return () => {
    process.off("SIGTERM", terminate);
    process.off("SIGINT", terminate);
    process.off("SIGHUP", reload);
  };
}
