/**
 * `emailng sieve test SCRIPT MESSAGE.eml [--from ADDR] [--to ADDR]`: a dry
 * run. The script is checked first (an invalid script is not run), then
 * interpreted against the message with the given envelope, and the actions
 * are printed: where the message would be stored and with which flags,
 * redirects, the vacation reply, discard, reject, and whether the implicit
 * keep remains.
 */
import { readFileSync, statSync } from "node:fs";
import { exitWith } from "../cli/io.js";
import type { ProgramDefinition } from "../cli/programs.js";
import { checkScript } from "./check.js";
import { acceptArguments, positional } from "./cli-arguments.js";
import { formatDiagnostic } from "./diagnostics.js";
import { extensionSet } from "./extensions.js";
import {
  type Action,
  INTERPRETER_EXTENSIONS,
  type InterpretResult,
  interpret,
  requiredExtensions,
} from "./interpreter.js";
import { headerValues, parseAddressList, parseMessage } from "./message.js";

const EXIT_INVALID = 3;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function quoted(text: string): string {
  return JSON.stringify(text);
}

function flagsText(flags: readonly string[]): string {
  return flags.length === 0 ? "" : ` with flags ${flags.join(" ")}`;
}

export function formatAction(action: Action): string {
  switch (action.kind) {
    case "store":
      return `store in ${quoted(action.folder)}${flagsText(action.flags)}${action.create ? " (created if missing)" : ""}${action.copy ? " (copy: the implicit keep stays)" : ""}`;
    case "redirect":
      return `redirect to <${action.address}>${action.copy ? " (copy: the implicit keep stays)" : ""}`;
    case "discard":
      return "discard";
    case "reject":
      return `reject with reason ${quoted(action.reason)}`;
    case "vacation": {
      const details = [
        `at most once every ${action.seconds % 86_400 === 0 ? `${action.seconds / 86_400} day(s)` : `${action.seconds} second(s)`}`,
        action.subject === null ? "default subject" : `subject ${quoted(action.subject)}`,
        action.from === null ? "" : `from ${quoted(action.from)}`,
        action.mime ? "MIME body" : "",
      ].filter((part) => part !== "");
      const body = action.reason.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n");
      return `send vacation reply (${details.join(", ")}):\n${body.map((line) => `      | ${line}`).join("\n")}`;
    }
    default: {
      const unreachable: never = action;
      throw new Error(`unknown action ${JSON.stringify(unreachable)}`);
    }
  }
}

export function formatResult(result: InterpretResult): string {
  if (result.status === "error") {
    return `runtime error at line ${result.line}: ${result.message}\nthe server would keep the message in INBOX (implicit keep)\n`;
  }
  const lines = ["actions:"];
  if (result.actions.length === 0) lines.push("  (none)");
  for (const action of result.actions) lines.push(`  - ${formatAction(action)}`);
  lines.push(
    result.implicitKeep === null
      ? "implicit keep: no"
      : `implicit keep: store in "INBOX"${flagsText(result.implicitKeep.flags)}`,
  );
  return `${lines.join("\n")}\n`;
}

function firstAddress(value: string | undefined): string {
  const [address] = parseAddressList(value ?? "");
  return address === undefined
    ? ""
    : address.domain === ""
      ? address.local
      : `${address.local}@${address.domain}`;
}

const sieveTest: ProgramDefinition = {
  name: "sieve test",
  summary: "dry-run a script against a message and print the resulting actions",
  configure: (command) =>
    acceptArguments(command, "<script> <message.eml>")
      .option("--from <address>", 'envelope sender (default: the From address; "" for <>)')
      .option("--to <address>", "envelope recipient (default: the first To address)")
      .option("--json", "print the result as JSON"),
  async run(context) {
    const { config, options, io } = context;
    const args = positional(options);
    if (args.length !== 2) {
      io.err("usage: emailng sieve test SCRIPT MESSAGE.eml [--from ADDR] [--to ADDR]\n");
      exitWith(1, "emailng.usage", "sieve test needs a script and a message");
    }
    const [scriptPath, messagePath] = args as [string, string];
    let scriptBytes: Uint8Array;
    let messageBytes: Uint8Array;
    try {
      scriptBytes = readFileSync(scriptPath);
      if (statSync(messagePath).size > MAX_MESSAGE_BYTES)
        throw new Error(`${messagePath} is larger than 64 MiB`);
      messageBytes = readFileSync(messagePath);
    } catch (error) {
      io.err(`sieve test: ${(error as Error).message}\n`);
      return exitWith(EXIT_INVALID, "emailng.sieve_invalid", (error as Error).message);
    }
    const checked = checkScript(scriptBytes, {
      allowed: extensionSet(config.sieve.extensions).allowed,
      maxScriptBytes: config.sieve.max_script_size,
    });
    for (const diagnostic of checked.diagnostics) io.err(`${formatDiagnostic(scriptPath, diagnostic)}\n`);
    if (!checked.valid) {
      io.err(`sieve test: ${scriptPath} is invalid; not run\n`);
      exitWith(EXIT_INVALID, "emailng.sieve_invalid", "invalid script");
    }
    const required = requiredExtensions(checked.commands);
    const unsupported = [...required].filter((name) => !INTERPRETER_EXTENSIONS.has(name));
    if (unsupported.length > 0) {
      io.err(
        `sieve test: the interpreter does not support ${unsupported.join(", ")} (supported: ${[...INTERPRETER_EXTENSIONS].join(" ")})\n`,
      );
      exitWith(EXIT_INVALID, "emailng.sieve_unsupported", "unsupported extension");
    }
    const message = parseMessage(messageBytes);
    const envelope = {
      from: (options["from"] as string | undefined) ?? firstAddress(headerValues(message.headers, "from")[0]),
      to: (options["to"] as string | undefined) ?? firstAddress(headerValues(message.headers, "to")[0]),
    };
    const result = interpret(checked.commands, message, { envelope, required });
    io.out(options["json"] === true ? `${JSON.stringify(result, null, 2)}\n` : formatResult(result));
  },
};

export const TEST_PROGRAMS: readonly ProgramDefinition[] = [sieveTest];
