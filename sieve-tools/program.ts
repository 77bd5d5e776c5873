/**
 * NAME
 *   emailng sieve — validate, generate, dry-run and upload Sieve scripts
 *
 * SUMMARY
 *   emailng sieve check [--extensions LIST | --server] [--json] FILE…
 *   emailng sieve render-global [--output FILE]
 *   emailng sieve vacation|forward|filter --script FILE [options]
 *   emailng sieve test SCRIPT MESSAGE.eml [--from ADDR] [--to ADDR]
 *   emailng sieve list | get NAME | put FILE [--activate] | activate NAME | delete NAME | rename OLD NEW
 *
 *   `check` validates scripts against RFC 5228 and the extensions
 *   Pigeonhole ships, with the rules Pigeonhole's compiler applies.
 *   `render-global` writes the global spam-filing script from [sieve.spam].
 *   `vacation`, `forward` and `filter` change one part of a user's script,
 *   whose parts are kept between markers so later edits round-trip. `test`
 *   runs a script against a message and prints the actions. The rest talk
 *   ManageSieve (RFC 5804) to Dovecot.
 *
 * PROTOCOL
 *   Sieve (RFC 5228 and extensions) on files; ManageSieve over TCP with
 *   STARTTLS and AUTHENTICATE PLAIN.
 *     $ emailng sieve check -c emailng.toml rules.sieve
 *     rules.sieve:3:5: error: unknown command 'fileinto': add require "fileinto"
 *     C: PUTSCRIPT "rules" {86+} CRLF <script> CRLF
 *     S: NO (QUOTA/MAXSIZE) "Script is too large (max 1024 bytes)."
 *
 * SECURITY
 *   Runs as the invoking user; reads only the files named on the command
 *   line, the include directories and the credentials file (refused when
 *   every user can read it). The password comes from that file or the
 *   terminal, never from the command line. STARTTLS is required unless
 *   starttls = false; the server certificate is verified (ca_file). Scripts
 *   and server replies are hostile input: sizes and nesting are bounded.
 *
 * CONFIGURATION ([sieve], see deploy/emailng.example.toml)
 *   extensions, include_dir, global_dir, max_script_size (1 MiB);
 *   [sieve.spam] folder, subject_tags, flag_header, flag_value,
 *   create_folder, mark_seen, info_header, info_value;
 *   [sieve.managesieve] host, port (4190), starttls (true), ca_file,
 *   tls_server_name, credentials_file, timeout (30 s).
 *
 * DIAGNOSTICS
 *   Exit status 0 success; 1 usage error; 2 invalid configuration; 3 the
 *   script is invalid (check, put, generators: nothing written); 4 the
 *   server refused or failed (NO with its response code and what it means,
 *   BYE, dropped connection, malformed reply, timeout).
 *
 * LIMITS
 *   Scripts up to max_script_size; blocks and tests nested at most 31
 *   levels; includes at most 10 levels; 200 diagnostics per script; server
 *   lines 64 KiB, literals 16 MiB; one command at a time per connection.
 */
import type { Command } from "commander";
import { exitWith } from "../cli/io.js";
import type { ProgramDefinition } from "../cli/programs.js";
import { checkFiles } from "./check-command.js";
import { acceptArguments, collect, positional } from "./cli-arguments.js";
import { extensionSet } from "./extensions.js";
import { GENERATE_PROGRAMS } from "./generate-commands.js";
import { MANAGESIEVE_PROGRAMS, serverExtensions } from "./managesieve-commands.js";
import { TEST_PROGRAMS } from "./test-command.js";

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

export const SIEVE_PROGRAMS: readonly ProgramDefinition[] = [
  sieveCheck,
  ...GENERATE_PROGRAMS,
  ...TEST_PROGRAMS,
  ...MANAGESIEVE_PROGRAMS,
];
