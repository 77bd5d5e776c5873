/**
 * How a daemon or tool becomes an `emailng <program> --config FILE` command.
 *
 * A program describes itself with a ProgramDefinition (from its own folder,
 * e.g. `policyd/program.ts`) and is added to PROGRAM_MODULES below; the CLI
 * turns each into a command that loads and validates the configuration with
 * the same code as `emailng config check` (printing every problem and
 * exiting 2 when it is invalid) and then calls `run` with the frozen
 * configuration. The list is explicit rather than filled by import side
 * effects, so what the CLI offers is visible in one place and tests can pass
 * their own list.
 *
 * Each program's modules are imported only when a command line names it
 * (loadPrograms): `emailng sieve check` loads the Sieve tools and not
 * verifyd, policyd, quotad or their libraries (prom-client, ioredis,
 * ldapts), which would cost a one-shot tool most of its running time.
 * cli/all-programs.ts is the eager list, for tests and in-process use.
 */
import type { Command } from "commander";
import type { DeepReadonly } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
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

/** The programs of one folder, loaded on demand, and the first words of their commands. */
export interface ProgramModule {
  /** First words of the commands the module defines ("sieve" for `sieve check`, `sieve put` …). */
  words: readonly string[];
  load(): Promise<readonly ProgramDefinition[]>;
}

/** The programs the emailng command offers, in help order. Programs add themselves here. */
export const PROGRAM_MODULES: readonly ProgramModule[] = [
  { words: ["verifyd"], load: async () => [(await import("../verifyd/program.js")).verifydProgram] },
  {
    words: ["policyd", "policy"],
    load: async () => (await import("../policyd/program.js")).POLICYD_PROGRAMS,
  },
  { words: ["quotad", "quota"], load: async () => (await import("../quotad/program.js")).QUOTAD_PROGRAMS },
  { words: ["sieve"], load: async () => (await import("../sieve-tools/program.js")).SIEVE_PROGRAMS },
  {
    words: ["sync", "cleanup"],
    load: async () => (await import("../sync-agent/program.js")).SYNC_AGENT_PROGRAMS,
  },
  { words: ["doctor"], load: async () => (await import("../doctor/program.js")).DOCTOR_PROGRAMS },
];

/** Commands of the CLI itself, which need no program. */
const BUILT_IN_WORDS = new Set(["config", "demo", "version"]);

/**
 * The programs a command line needs (arguments after the script name): the
 * module owning its first word; none for the CLI's own commands; every one
 * for help, no command or a word nobody owns (so help lists them all and
 * commander can suggest the closest name).
 */
export async function loadPrograms(
  args: readonly string[],
  modules: readonly ProgramModule[] = PROGRAM_MODULES,
): Promise<ProgramDefinition[]> {
  const word = args.find((arg) => !arg.startsWith("-"));
  if (word !== undefined && BUILT_IN_WORDS.has(word)) return [];
  const owner = word === undefined ? undefined : modules.find((module) => module.words.includes(word));
  const chosen = owner === undefined ? modules : [owner];
  return (await Promise.all(chosen.map((module) => module.load()))).flat();
}

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
