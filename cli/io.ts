/**
 * Where the emailng command writes, and how it ends. Commands write through
 * a CliIo instead of process.stdout so tests can run the whole command line
 * in-process and read what it printed; they end with a non-zero status by
 * throwing a CommanderError (what commander itself throws under
 * exitOverride), never by calling process.exit, so a test survives it and
 * main.ts turns it into the process exit code.
 */
import { CommanderError } from "commander";

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Exit statuses of emailng commands. */
export const EXIT_OK = 0;
/** Commander's own status for usage errors (unknown option, missing argument). */
export const EXIT_USAGE = 1;
/** The configuration file is invalid or unreadable. */
export const EXIT_CONFIG = 2;

/** Ends the command with `status`; the message is for tests and is not printed. */
export function exitWith(status: number, code: string, message: string): never {
  throw new CommanderError(status, code, message);
}
