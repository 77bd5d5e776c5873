#!/usr/bin/env node
/**
 * NAME
 *   emailng — command line of the emailng mail sidecars
 *
 * SUMMARY
 *   emailng --help
 *   emailng version
 *   emailng config check [--config FILE] [--json]
 *   emailng <program> [--config FILE]      (programs are listed by --help)
 *
 * CONFIGURATION
 *   One TOML file for every program, /etc/emailng/emailng.toml unless
 *   --config says otherwise; deploy/emailng.example.toml documents each key.
 *
 * DIAGNOSTICS
 *   Exit status 0 on success, 1 for usage errors, 2 when the configuration
 *   file is invalid or unreadable (each problem printed on standard error as
 *   `key.path: message (fix: …)`).
 *
 * This file only runs the CLI that cli/command-line.ts assembles, with the
 * programs the command line names (the rest are never imported: a one-shot
 * tool such as `emailng sieve check` starts without the daemons' libraries),
 * and turns its outcome into the process exit status.
 */
import { CommanderError } from "commander";
import { createCli } from "./command-line.js";
import { processIo } from "./io.js";
import { loadPrograms } from "./programs.js";

try {
  const programs = await loadPrograms(process.argv.slice(2));
  await createCli(processIo, programs).parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(
      `emailng: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 70; // EX_SOFTWARE: an internal error, not a user mistake
  }
}
