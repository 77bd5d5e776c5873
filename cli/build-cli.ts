/**
 * Assembles the `emailng` command line from the small command modules.
 * Kept apart from main.ts so tests build and run the CLI in-process:
 * output goes through the given CliIo and every exit (help, version, usage
 * errors, invalid configuration) is a thrown CommanderError carrying the
 * exit status, never process.exit.
 */
import { Command } from "commander";
import { registerConfigCommands } from "./config-command.js";
import { registerDemoCommand } from "./demo-command.js";
import { type CliIo, processIo } from "./io.js";
import { addProgramCommand, PROGRAMS, type ProgramDefinition } from "./programs.js";
import { packageVersion, registerVersionCommand } from "./version.js";

export interface CliOptions {
  io?: CliIo;
  /** Programs offered as commands; PROGRAMS by default. */
  programs?: readonly ProgramDefinition[];
}

export function buildCli(options: CliOptions = {}): Command {
  const io = options.io ?? processIo;
  const cli = new Command("emailng")
    .description("Sidecar daemons and tools for a Postfix + Dovecot + LDAP mail system")
    .version(packageVersion(), "-V, --version", "print the emailng version")
    // Before any .command(): subcommands copy these settings when created.
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      "\nEvery program reads one TOML configuration file (default /etc/emailng/emailng.toml);\n" +
        "deploy/emailng.example.toml documents each key. Check a file with: emailng config check --config FILE\n",
    );

  for (const program of options.programs ?? PROGRAMS) addProgramCommand(cli, program, io);
  registerConfigCommands(cli, io);
  registerDemoCommand(cli, io);
  registerVersionCommand(cli, io);
  return cli;
}
