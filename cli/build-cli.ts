/**
 * The whole `emailng` command line, every program included, for tests and
 * in-process use: they build and run the CLI without a process of its own.
 * The `emailng` process itself (cli/main.ts) builds it with only the
 * programs its command line names.
 */
import type { Command } from "commander";
import { PROGRAMS } from "./all-programs.js";
import { createCli } from "./command-line.js";
import { type CliIo, processIo } from "./io.js";
import type { ProgramDefinition } from "./programs.js";

export interface CliOptions {
  io?: CliIo;
  /** Programs offered as commands; PROGRAMS by default. */
  programs?: readonly ProgramDefinition[];
}

export function buildCli(options: CliOptions = {}): Command {
  return createCli(options.io ?? processIo, options.programs ?? PROGRAMS);
}
