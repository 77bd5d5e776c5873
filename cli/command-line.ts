/**
 * Assembles the `emailng` command line from the small command modules and
 * the programs it is given. Imports no program: cli/main.ts passes the ones
 * the command line names (loadPrograms), cli/build-cli.ts every one. Output
 * goes through the given CliIo and every exit (help, version, usage errors,
 * invalid configuration) is a thrown CommanderError carrying the exit
 * status, never process.exit.
 */
import { Command } from "commander";
import { registerConfigCommands } from "./config-command.js";
import type { CliIo } from "./io.js";
import { addProgramCommand, type ProgramDefinition } from "./programs.js";
import { packageVersion, registerVersionCommand } from "./version.js";

export function createCli(io: CliIo, programs: readonly ProgramDefinition[]): Command {
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

  for (const program of programs) addProgramCommand(cli, program, io);
  registerConfigCommands(cli, io);
  // The demo starts verifyd, quotad and policyd: loaded only when asked for.
  cli
    .command("demo")
    .description(
      "bring up what exists on the embedded default (sample directory, no LDAP) and show it answering",
    )
    .action(async () => (await import("./demo-command.js")).runDemo(io));
  registerVersionCommand(cli, io);
  return cli;
}
