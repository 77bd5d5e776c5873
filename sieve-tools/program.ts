/**
 * NAME
 *   emailng sieve — validate, generate, dry-run and upload Sieve scripts
 *
 * SUMMARY
 *   emailng sieve check [--extensions LIST] [--server] [--json] FILE…
 *
 *   `check` parses and validates scripts against RFC 5228 and the
 *   extensions Dovecot's Pigeonhole ships, with the rules Pigeonhole's
 *   compiler applies, and prints file:line:column diagnostics.
 *
 * PROTOCOL
 *   Sieve (RFC 5228 and extensions) on files.
 *     $ emailng sieve check -c emailng.toml rules.sieve
 *     rules.sieve:3:5: error: unknown command 'fileinto': add require "fileinto"
 *     rules.sieve: invalid (1 error(s), 0 warning(s))
 *
 * SECURITY
 *   Runs as the invoking user and reads only the files named on the command
 *   line and the include directories. Scripts are hostile input: size and
 *   nesting are bounded, nothing in them is executed.
 *
 * CONFIGURATION ([sieve], see deploy/emailng.example.toml)
 *   extensions       edits of Dovecot's default extension set ([] = default)
 *   include_dir      personal scripts for `include` ("" = not checked)
 *   global_dir       global scripts for `include :global` ("" = not checked)
 *   max_script_size  bytes, default 1048576 (Dovecot's sieve_max_script_size)
 *
 * DIAGNOSTICS
 *   Exit status 0 when every script is valid (warnings allowed), 3 when a
 *   script has errors, 2 for an invalid configuration, 1 for a usage error.
 *
 * LIMITS
 *   Scripts up to max_script_size; blocks and tests nested at most 31
 *   levels; includes nested at most 10 levels; at most 200 diagnostics per
 *   script are listed.
 */
import type { Command } from "commander";
import { exitWith } from "../cli/io.js";
import type { ProgramDefinition } from "../cli/programs.js";
import { checkFiles } from "./check-command.js";
import { acceptArguments, collect, positional } from "./cli-arguments.js";
import { extensionSet } from "./extensions.js";
import { MANAGESIEVE_PROGRAMS, serverExtensions } from "./managesieve-commands.js";

export { EXIT_INVALID, EXIT_SERVER } from "./managesieve-commands.js";

import { EXIT_INVALID } from "./managesieve-commands.js";

const sieveCheck: ProgramDefinition = {
  name: "sieve check",
  summary: "validate Sieve scripts (RFC 5228 + Pigeonhole's extensions) with line:column diagnostics",
  configure: (command: Command) =>
    acceptArguments(command, "<file...>")
      .option(
        "--extensions <list>",
        'allowed extensions: "+name"/"-name" edit Dovecot\'s default set, plain names replace it (repeatable)',
        collect,
        [],
      )
      .option("--json", "print the reports as JSON")
      .option("--server", "take the allowed extensions from the ManageSieve server's SIEVE capability")
      .option("--host <host>", "ManageSieve server for --server (default: sieve.managesieve.host)")
      .option("--port <port>", "its port (default: sieve.managesieve.port)")
      .option("--no-starttls", "do not use STARTTLS with --server"),
  async run(context) {
    const { config, options, io } = context;
    const files = positional(options);
    if (files.length === 0) {
      io.err("sieve check: name at least one script file\n");
      exitWith(1, "emailng.usage", "sieve check needs at least one file");
    }
    const requested = options["extensions"] as string[];
    const fromServer = options["server"] === true ? await serverExtensions(context) : null;
    const set = extensionSet(fromServer ?? (requested.length > 0 ? requested : config.sieve.extensions));
    if (fromServer !== null) io.err(`extensions from the server: ${fromServer.join(" ")}\n`);
    for (const name of set.unknown) io.err(`warning: unknown Sieve extension '${name}' ignored\n`);
    const reports = checkFiles({
      files,
      allowed: set.allowed,
      includeDir: config.sieve.include_dir,
      globalDir: config.sieve.global_dir,
      maxScriptBytes: config.sieve.max_script_size,
      json: options["json"] === true,
      out: io.out,
    });
    const invalid = reports.filter((report) => !report.valid).length;
    if (invalid > 0) exitWith(EXIT_INVALID, "emailng.sieve_invalid", `${invalid} invalid script(s)`);
  },
};

export const SIEVE_PROGRAMS: readonly ProgramDefinition[] = [sieveCheck, ...MANAGESIEVE_PROGRAMS];
