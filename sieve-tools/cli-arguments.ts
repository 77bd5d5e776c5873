/**
 * Positional arguments for `emailng sieve …` subcommands. cli/programs.ts
 * hands a program its options only, so the script files and names given on
 * the command line travel as the option `args`.
 */
import type { Command } from "commander";

export function acceptArguments(command: Command, usage: string): Command {
  return command
    .usage(`[options] ${usage}`)
    .allowExcessArguments(true)
    .hook("preAction", (_parent, action) => {
      action.setOptionValue("args", [...action.args]);
    });
}

export function positional(options: Readonly<Record<string, unknown>>): string[] {
  const args = options["args"];
  return Array.isArray(args) ? args.map(String) : [];
}

/** For repeatable options: `--x a --x b` → ["a", "b"]. */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];
