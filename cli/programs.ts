/**
 * How a daemon or tool becomes an `emailng <program> --config FILE` command.
 *
 * A program describes itself with a ProgramDefinition (from its own folder,
 * e.g. `policyd/program.ts`) and is added to PROGRAMS below; buildCli turns
 * each into a command that loads and validates the configuration with the
 * same code as `emailng config check` (printing every problem and exiting 2
 * when it is invalid) and then calls `run` with the frozen configuration.
 * The list is explicit rather than filled by import side effects, so what the
 * CLI offers is visible in one place and tests can pass their own list.
 */
import type { Command } from "commander";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { DOCTOR_PROGRAMS } from "../doctor/program.js";
import { POLICYD_PROGRAMS } from "../policyd/program.js";
import { QUOTAD_PROGRAMS } from "../quotad/program.js";
import { SIEVE_PROGRAMS } from "../sieve-tools/program.js";
import { SYNC_AGENT_PROGRAMS } from "../sync-agent/program.js";
import { verifydProgram } from "../verifyd/program.js";
import {
  CONFIG_OPTION_DESCRIPTION,
  CONFIG_OPTION_FLAGS,
  DEFAULT_CONFIG_PATH,
  loadConfigOrExit,
} from "./config-command.js";
import type { CliIo } from "./io.js";

export interface ProgramContext {
  /** Validated and frozen; durations in milliseconds, sizes in bytes. */
  config: DeepReadonly<Config>;
  configPath: string;
  /** Options the program declared in `configure`, as commander parsed them. */
  options: Readonly<Record<string, unknown>>;
  io: CliIo;
}

export interface ProgramDefinition {
  /**
   * Command name: "verifyd", "policyd", … A two-word name ("sync run") makes a
   * subcommand of a parent command created on first use ("sync").
   */
  name: string;
  /** One line for `emailng --help`. */
  summary: string;
  /** Declares options beyond --config (e.g. `--dry-run`). */
  configure?(command: Command): void;
  /**
   * Starts the program. A daemon resolves once it has shut down after a
   * signal; a tool when its work is done. Throw a CommanderError (see
   * cli/io.ts exitWith) to end with a specific status.
   */
  run(context: ProgramContext): Promise<void>;
}

/** The programs the emailng command offers, in help order. Programs add themselves here. */
export const PROGRAMS: readonly ProgramDefinition[] = [
  verifydProgram,
  ...POLICYD_PROGRAMS,
  ...QUOTAD_PROGRAMS,
  ...SIEVE_PROGRAMS,
  ...SYNC_AGENT_PROGRAMS,
  ...DOCTOR_PROGRAMS,
];

/** Adds `emailng <name> --config FILE` for one program. */
export function addProgramCommand(cli: Command, program: ProgramDefinition, io: CliIo): Command {
  const words = program.name.split(" ");
  let parent = cli;
  for (const word of words.slice(0, -1)) {
    parent = parent.commands.find((command) => command.name() === word) ?? parent.command(word);
  }
  const command = parent
    .command(words.at(-1) ?? program.name)
    .description(program.summary)
    .option(CONFIG_OPTION_FLAGS, CONFIG_OPTION_DESCRIPTION, DEFAULT_CONFIG_PATH);
  program.configure?.(command);
  command.action(async (options: { config: string } & Record<string, unknown>) => {
    const config = await loadConfigOrExit(options.config, io);
    await program.run({ config, configPath: options.config, options, io });
  });
  return command;
}
