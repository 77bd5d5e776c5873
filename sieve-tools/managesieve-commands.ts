/**
 * The ManageSieve subcommands — `sieve list|get|put|activate|delete|rename`
 * — and the server part of `sieve check --server`: connection options from
 * [sieve.managesieve] with command-line overrides, login from the
 * credentials file or the terminal, and server replies shown with their
 * response code and what it means.
 */
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { Command } from "commander";
import { exitWith } from "../cli/io.js";
import type { ProgramContext, ProgramDefinition } from "../cli/programs.js";
import { describeResponse } from "../core/protocols/managesieve.js";
import { checkScript } from "./check.js";
import { acceptArguments, positional } from "./cli-arguments.js";
import { type Credentials, promptCredentials, readCredentialsFile } from "./credentials.js";
import { formatDiagnostic } from "./diagnostics.js";
import { extensionSet, extensionsFromCapability } from "./extensions.js";
import { type ConnectOptions, ManageSieveClient, ManageSieveError } from "./managesieve-client.js";

export const EXIT_INVALID = 3;
export const EXIT_SERVER = 4;

/** What a response code means for the person at the terminal (RFC 5804 1.3). */
const CODE_HINTS: Record<string, string> = {
  NONEXISTENT: "there is no script of that name",
  ACTIVE: "the script is active; deactivate it first (emailng sieve activate --none)",
  ALREADYEXISTS: "a script of that name exists already",
  QUOTA: "the server's quota would be exceeded",
  "QUOTA/MAXSCRIPTS": "too many scripts for this account",
  "QUOTA/MAXSIZE": "the script is larger than the server allows",
  WARNINGS: "the server stored the script but has warnings about it",
  TRYLATER: "the server is busy; try again later",
  "AUTH-TOO-WEAK": "the server wants a stronger authentication mechanism",
  "ENCRYPT-NEEDED": "the server wants TLS first (starttls = true)",
  "TRANSITION-NEEDED": "the server needs a one-time PLAIN login over TLS",
};

export function explainError(error: ManageSieveError): string {
  const code = error.code?.name;
  const hint = code === undefined ? undefined : CODE_HINTS[code];
  return hint === undefined ? error.message : `${error.message}\n  ${code}: ${hint}`;
}

/** Options every server command shares. */
export function serverOptions(command: Command): Command {
  return command
    .option("--host <host>", "ManageSieve server (default: sieve.managesieve.host)")
    .option("--port <port>", "port (default: sieve.managesieve.port)")
    .option("--credentials <file>", "file with the user (line 1) and password (line 2)")
    .option("--no-starttls", "do not use STARTTLS (only on a trusted network)");
}

export function connectOptions(context: ProgramContext): ConnectOptions {
  const settings = context.config.sieve.managesieve;
  const { options } = context;
  const port = options["port"] === undefined ? settings.port : Number(options["port"]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    context.io.err(`--port ${String(options["port"])} is not a port number\n`);
    exitWith(1, "emailng.usage", "bad port");
  }
  const starttls = settings.starttls && options["starttls"] !== false;
  return {
    host: (options["host"] as string | undefined) ?? settings.host,
    port,
    starttls: starttls ? "required" : false,
    ...(settings.tls_server_name === "" ? {} : { servername: settings.tls_server_name }),
    timeoutMs: settings.timeout,
  };
}

async function loadCa(context: ProgramContext): Promise<Buffer | undefined> {
  const path = context.config.sieve.managesieve.ca_file;
  return path === "" ? undefined : readFile(path);
}

async function credentials(context: ProgramContext): Promise<Credentials> {
  const path =
    (context.options["credentials"] as string | undefined) ??
    context.config.sieve.managesieve.credentials_file;
  if (path !== "") return readCredentialsFile(path);
  return promptCredentials(process.env["USER"] ?? "");
}

function failServer(context: ProgramContext, what: string, error: unknown): never {
  const message = error instanceof ManageSieveError ? explainError(error) : (error as Error).message;
  context.io.err(`sieve ${what}: ${message}\n`);
  return exitWith(EXIT_SERVER, "emailng.sieve_server", message);
}

/** Connects, logs in, runs `work`, logs out; every failure ends with status 4. */
export async function withSession<T>(
  context: ProgramContext,
  what: string,
  work: (client: ManageSieveClient) => Promise<T>,
): Promise<T> {
  let client: ManageSieveClient | undefined;
  try {
    const login = await credentials(context);
    const ca = await loadCa(context);
    client = await ManageSieveClient.connect({
      ...connectOptions(context),
      ...(ca === undefined ? {} : { ca }),
    });
    await client.authenticatePlain(login.user, login.password);
    const result = await work(client);
    await client.logout();
    return result;
  } catch (error) {
    client?.close();
    if (error instanceof Error && error.name === "CommanderError") throw error;
    return failServer(context, what, error);
  }
}

/** The SIEVE capability of a server (no login needed: it is in the greeting). */
export async function serverExtensions(context: ProgramContext): Promise<string[]> {
  let client: ManageSieveClient | undefined;
  try {
    const ca = await loadCa(context);
    client = await ManageSieveClient.connect({
      ...connectOptions(context),
      ...(ca === undefined ? {} : { ca }),
    });
    const sieve = client.capabilities.get("SIEVE");
    if (sieve === undefined)
      throw new ManageSieveError("protocol", "the server announced no SIEVE capability");
    await client.logout();
    return extensionsFromCapability(sieve);
  } catch (error) {
    client?.close();
    return failServer(context, "check --server", error);
  }
}

function needArguments(context: ProgramContext, count: number, usage: string): string[] {
  const args = positional(context.options);
  if (args.length !== count) {
    context.io.err(`usage: emailng sieve ${usage}\n`);
    exitWith(1, "emailng.usage", usage);
  }
  return args;
}

const list: ProgramDefinition = {
  name: "sieve list",
  summary: "list the scripts on the ManageSieve server (the active one marked)",
  configure: (command) => serverOptions(command),
  async run(context) {
    const scripts = await withSession(context, "list", (client) => client.listScripts());
    for (const script of scripts) context.io.out(`${script.name}${script.active ? "  (active)" : ""}\n`);
  },
};

const get: ProgramDefinition = {
  name: "sieve get",
  summary: "print a script from the ManageSieve server (or write it with --output)",
  configure: (command) =>
    serverOptions(acceptArguments(command, "<name>")).option("-o, --output <file>", "write to this file"),
  async run(context) {
    const [name] = needArguments(context, 1, "get NAME");
    const script = await withSession(context, "get", (client) => client.getScript(name!));
    const output = context.options["output"] as string | undefined;
    if (output === undefined) context.io.out(new TextDecoder().decode(script));
    else await writeFile(output, script);
  },
};

const put: ProgramDefinition = {
  name: "sieve put",
  summary: "check a script against the server's extensions, upload it (PUTSCRIPT) and optionally activate it",
  configure: (command) =>
    serverOptions(acceptArguments(command, "<file>"))
      .option("--name <name>", "script name on the server (default: the file name without .sieve)")
      .option("--activate", "make it the active script")
      .option("--force", "upload even when the local check finds errors (the server still compiles it)"),
  async run(context) {
    const [file] = needArguments(context, 1, "put FILE");
    const script = await readFile(file!).catch((error: Error) => {
      context.io.err(`sieve put: cannot read ${file}: ${error.message}\n`);
      return exitWith(EXIT_INVALID, "emailng.sieve_invalid", error.message);
    });
    const name = (context.options["name"] as string | undefined) ?? basename(file!).replace(/\.sieve$/, "");
    await withSession(context, "put", async (client) => {
      const offered = extensionsFromCapability(client.capabilities.get("SIEVE") ?? "");
      const result = checkScript(script, {
        allowed: extensionSet(offered.length > 0 ? offered : undefined).allowed,
        maxScriptBytes: context.config.sieve.max_script_size,
      });
      for (const diagnostic of result.diagnostics) context.io.err(`${formatDiagnostic(file!, diagnostic)}\n`);
      if (!result.valid && context.options["force"] !== true) {
        await client.logout();
        context.io.err(`sieve put: ${file} has errors; nothing uploaded (--force uploads anyway)\n`);
        exitWith(EXIT_INVALID, "emailng.sieve_invalid", "script has errors");
      }
      await client.haveSpace(name, script.length);
      const stored = await client.putScript(name, script);
      context.io.out(`uploaded ${name} (${script.length} bytes): ${describeResponse(stored)}\n`);
      if (context.options["activate"] === true) {
        const activated = await client.setActive(name);
        context.io.out(`activated ${name}: ${describeResponse(activated)}\n`);
      }
    });
  },
};

const activate: ProgramDefinition = {
  name: "sieve activate",
  summary: "make a script the active one (SETACTIVE), or deactivate all with --none",
  configure: (command) =>
    serverOptions(acceptArguments(command, "<name> | --none")).option("--none", "deactivate"),
  async run(context) {
    const none = context.options["none"] === true;
    const name = none ? "" : needArguments(context, 1, "activate NAME")[0]!;
    const done = await withSession(context, "activate", (client) => client.setActive(name));
    context.io.out(`${describeResponse(done)}\n`);
  },
};

const remove: ProgramDefinition = {
  name: "sieve delete",
  summary: "delete a script on the server (DELETESCRIPT)",
  configure: (command) => serverOptions(acceptArguments(command, "<name>")),
  async run(context) {
    const [name] = needArguments(context, 1, "delete NAME");
    const done = await withSession(context, "delete", (client) => client.deleteScript(name!));
    context.io.out(`${describeResponse(done)}\n`);
  },
};

const rename: ProgramDefinition = {
  name: "sieve rename",
  summary: "rename a script on the server (RENAMESCRIPT)",
  configure: (command) => serverOptions(acceptArguments(command, "<old> <new>")),
  async run(context) {
    const [from, to] = needArguments(context, 2, "rename OLD NEW");
    const done = await withSession(context, "rename", (client) => client.renameScript(from!, to!));
    context.io.out(`${describeResponse(done)}\n`);
  },
};

export const MANAGESIEVE_PROGRAMS: readonly ProgramDefinition[] = [list, get, put, activate, remove, rename];
