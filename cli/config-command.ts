/**
 * `emailng config check --config FILE [--json]`: validates the configuration
 * exactly as the daemons do at start (the same loadConfig), so a file that
 * passes here cannot be refused by a daemon for its syntax or values. Prints
 * "ok: FILE" and exits 0, or prints every problem as
 * `path: message (fix: …)` on standard error and exits 2. With --json the
 * result goes to standard output as one JSON object, for scripts and
 * configuration management.
 *
 * `loadConfigOrExit` is the same step for the program commands.
 */
import type { Command } from "commander";
import type { LoadResult } from "../core/config/load.js";
import { type CliIo, EXIT_CONFIG, exitWith } from "./io.js";

/** The loader and its schema (zod) are imported when a command reads a file, not to print help. */
const configLoader = () => import("../core/config/load.js");

export const DEFAULT_CONFIG_PATH = "/etc/emailng/emailng.toml";

export const CONFIG_OPTION_FLAGS = "-c, --config <file>";
export const CONFIG_OPTION_DESCRIPTION = "configuration file (TOML)";

type LoadedConfig = Extract<LoadResult, { ok: true }>["config"];

/** Loads and validates `file`; on failure prints every problem and ends the command with status 2. */
export async function loadConfigOrExit(file: string, io: CliIo): Promise<LoadedConfig> {
  const { formatConfigIssue, loadConfig } = await configLoader();
  const result = await loadConfig(file);
  if (result.ok) return result.config;
  for (const issue of result.errors) io.err(`${formatConfigIssue(issue, file)}\n`);
  return exitWith(
    EXIT_CONFIG,
    "emailng.configInvalid",
    `${file}: ${result.errors.length} configuration error(s)`,
  );
}

export function registerConfigCommands(cli: Command, io: CliIo): void {
  const config = cli.command("config").description("work with the configuration file");
  config
    .command("check")
    .description("validate the configuration file as the daemons do at start")
    .option(CONFIG_OPTION_FLAGS, CONFIG_OPTION_DESCRIPTION, DEFAULT_CONFIG_PATH)
    .option("--json", "print the result as JSON on standard output")
    .action(async (options: { config: string; json?: boolean }) => {
      if (!options.json) {
        await loadConfigOrExit(options.config, io);
        io.out(`ok: ${options.config}\n`);
        return;
      }
      const result = await (await configLoader()).loadConfig(options.config);
      const report = result.ok
        ? { ok: true, file: options.config }
        : { ok: false, file: options.config, errors: result.errors };
      io.out(`${JSON.stringify(report, null, 2)}\n`);
      if (!result.ok) exitWith(EXIT_CONFIG, "emailng.configInvalid", `${options.config} is invalid`);
    });
}
