/**
 * The generating commands: `sieve render-global` (the global spam script
 * from [sieve.spam]) and `sieve vacation|forward|filter` (one part of the
 * user's script, which is read back from its markers, changed and rendered
 * again). Every result is validated with the checker before it is written;
 * files are replaced atomically (written beside, then renamed over).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { exitWith } from "../cli/io.js";
import type { ProgramContext, ProgramDefinition } from "../cli/programs.js";
import { checkScript } from "./check.js";
import { collect } from "./cli-arguments.js";
import { formatDiagnostic } from "./diagnostics.js";
import { extensionSet } from "./extensions.js";
import { renderGlobalScript } from "./global-script.js";
import {
  EMPTY_USER_SCRIPT,
  type FilterRule,
  filterSchema,
  forwardSchema,
  parseUserScript,
  renderUserScript,
  type UserScript,
  vacationSchema,
} from "./user-script.js";

const EXIT_INVALID = 3;

function allowed(context: ProgramContext): ReadonlySet<string> {
  return extensionSet(context.config.sieve.extensions).allowed;
}

/** Writes `text` to `path` atomically, or to standard output when path is "". */
function emit(context: ProgramContext, path: string, text: string): void {
  if (path === "") {
    context.io.out(text);
    return;
  }
  const temporary = join(dirname(path), `.${Date.now()}-${process.pid}.sieve.tmp`);
  writeFileSync(temporary, text, { mode: 0o644 });
  renameSync(temporary, path);
  context.io.err(`wrote ${path}\n`);
}

function refuse(context: ProgramContext, what: string, lines: string[]): never {
  for (const line of lines) context.io.err(`${line}\n`);
  context.io.err(`sieve ${what}: nothing written\n`);
  return exitWith(EXIT_INVALID, "emailng.sieve_invalid", `${what}: invalid`);
}

const renderGlobal: ProgramDefinition = {
  name: "sieve render-global",
  summary: "render the global spam-filing script from [sieve.spam] (validated before it is written)",
  configure: (command: Command) =>
    command.option("-o, --output <file>", "write the script here (default: standard output)"),
  async run(context) {
    const rendered = renderGlobalScript(context.config.sieve.spam, allowed(context));
    if (!rendered.valid) {
      refuse(context, "render-global", [
        ...rendered.diagnostics.map((diagnostic) => formatDiagnostic("(global script)", diagnostic)),
        'check [sieve.spam] and [sieve] extensions (info_header needs "+editheader")',
      ]);
    }
    emit(context, (context.options["output"] as string | undefined) ?? "", rendered.script);
  },
};

function scriptOptions(command: Command): Command {
  return command
    .option("--script <file>", "the user's script: read its current settings, write the result back")
    .option("--dry-run", "print the result instead of writing --script")
    .option("--force", "rewrite even when the script was edited by hand (those edits are lost)");
}

/** Loads the current user script, or refuses when it cannot be rewritten safely. */
function loadUserScript(context: ProgramContext, what: string): UserScript {
  const path = (context.options["script"] as string | undefined) ?? "";
  if (path === "" || !existsSync(path)) return structuredClone(EMPTY_USER_SCRIPT);
  const parsed = parseUserScript(readFileSync(path, "utf8"));
  if (parsed.problems.length > 0 && context.options["force"] !== true) {
    refuse(context, what, [
      ...parsed.problems.map((problem) => `${path}:${problem.line}: ${problem.message}`),
      "(--force rewrites it anyway)",
    ]);
  }
  return parsed.script;
}

function saveUserScript(context: ProgramContext, what: string, script: UserScript): void {
  const text = renderUserScript(script);
  const result = checkScript(text, { allowed: allowed(context) });
  if (!result.valid) {
    refuse(
      context,
      what,
      result.diagnostics.map((diagnostic) => formatDiagnostic("(generated)", diagnostic)),
    );
  }
  const path = (context.options["script"] as string | undefined) ?? "";
  emit(context, context.options["dryRun"] === true ? "" : path, text);
}

function validated<T>(context: ProgramContext, what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const issues = (error as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
    const lines = issues?.map((issue) => `${issue.path.join(".") || what}: ${issue.message}`) ?? [
      (error as Error).message,
    ];
    return refuse(context, what, lines);
  }
}

const vacation: ProgramDefinition = {
  name: "sieve vacation",
  summary: "set (or --off) the vacation auto-reply in a user's script",
  configure: (command) =>
    scriptOptions(command)
      .option("--days <n>", "reply to the same sender at most once in this many days", "7")
      .option("--subject <text>", "subject of the reply", "")
      .option("--from <address>", "sender address of the reply", "")
      .option("--address <address>", "one of the user's own addresses (repeatable)", collect, [])
      .option("--message <text>", "the reply text")
      .option("--message-file <file>", "read the reply text from a file")
      .option("--start <date>", "first day (YYYY-MM-DD)", "")
      .option("--end <date>", "last day (YYYY-MM-DD)", "")
      .option("--off", "remove the auto-reply"),
  async run(context) {
    const { options } = context;
    const script = loadUserScript(context, "vacation");
    if (options["off"] === true) {
      script.vacation = null;
    } else {
      const file = options["messageFile"] as string | undefined;
      const message =
        file === undefined ? ((options["message"] as string | undefined) ?? "") : readFileSync(file, "utf8");
      script.vacation = validated(context, "vacation", () =>
        vacationSchema.parse({
          days: Number(options["days"]),
          subject: options["subject"],
          from: options["from"],
          addresses: options["address"],
          message,
          start: options["start"],
          end: options["end"],
        }),
      );
    }
    saveUserScript(context, "vacation", script);
  },
};

const forward: ProgramDefinition = {
  name: "sieve forward",
  summary: "set (or --off) forwarding in a user's script, with or without keeping a copy",
  configure: (command) =>
    scriptOptions(command)
      .option("--to <address>", "forward to this address (repeatable)", collect, [])
      .option("--keep-copy", "keep a copy in this mailbox too")
      .option("--off", "stop forwarding"),
  async run(context) {
    const { options } = context;
    const script = loadUserScript(context, "forward");
    script.forward =
      options["off"] === true
        ? null
        : validated(context, "forward", () =>
            forwardSchema.parse({ to: options["to"], keep_copy: options["keepCopy"] === true }),
          );
    saveUserScript(context, "forward", script);
  },
};

function parseSize(text: string): number {
  const match = /^(\d+)\s*([kmg]?)b?$/i.exec(text.trim());
  if (match === null) throw new Error(`'${text}' is not a size (e.g. 500K, 10M)`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    match[2]!.toLowerCase() as "" | "k" | "m" | "g"
  ];
  return Number(match[1]) * unit;
}

function filterCondition(options: Readonly<Record<string, unknown>>): FilterRule["condition"] {
  const text = (name: string) => options[name] as string | undefined;
  const match = (["contains", "is", "matches"] as const).find((name) => text(name) !== undefined);
  if (text("sizeOver") !== undefined || text("sizeUnder") !== undefined) {
    const over = text("sizeOver") !== undefined;
    return { kind: "size", over, bytes: parseSize((over ? text("sizeOver") : text("sizeUnder"))!) };
  }
  if (match === undefined)
    throw new Error("give --contains, --is or --matches (or --size-over / --size-under)");
  const value = text(match)!;
  if (text("addressOf") !== undefined) {
    if (match === "matches") throw new Error("address filters take --is or --contains");
    const part = options["domain"] === true ? "domain" : options["localpart"] === true ? "localpart" : "all";
    return { kind: "address", header: text("addressOf") as "from", part, match, value };
  }
  return { kind: "header", header: text("header") ?? "subject", match, value };
}

const filter: ProgramDefinition = {
  name: "sieve filter",
  summary: "add, replace (--add NAME), remove (--remove NAME) or list simple filters into folders",
  configure: (command) =>
    scriptOptions(command)
      .option("--add <name>", "add or replace the filter with this name")
      .option("--remove <name>", "remove the filter with this name")
      .option("--list", "list the filters")
      .option("--header <name>", "header to test (default: subject)")
      .option("--address-of <header>", "test the address in this header (from, to, cc, sender, reply-to)")
      .option("--domain", "with --address-of: compare the domain only")
      .option("--localpart", "with --address-of: compare the part before @ only")
      .option("--contains <text>", "matches when the value contains the text")
      .option("--is <text>", "matches when the value is the text")
      .option("--matches <pattern>", "matches the wildcard pattern (* and ?)")
      .option("--size-over <size>", "matches messages larger than this (e.g. 10M)")
      .option("--size-under <size>", "matches messages smaller than this")
      .option("--folder <name>", "file matching messages into this folder (created when missing)")
      .option("--mark-read", "mark them as read")
      .option("--stop", "apply no later filter to them"),
  async run(context) {
    const { options, io } = context;
    const script = loadUserScript(context, "filter");
    if (options["list"] === true) {
      for (const rule of script.filters)
        io.out(`${rule.name}: ${JSON.stringify(rule.condition)} -> ${rule.folder}\n`);
      return;
    }
    const remove = options["remove"] as string | undefined;
    const add = options["add"] as string | undefined;
    if (remove !== undefined) {
      const before = script.filters.length;
      script.filters = script.filters.filter((rule) => rule.name !== remove);
      if (script.filters.length === before)
        refuse(context, "filter", [`there is no filter named '${remove}'`]);
    } else if (add !== undefined) {
      const rule = validated(context, "filter", () =>
        filterSchema.parse({
          name: add,
          condition: filterCondition(options),
          folder: options["folder"],
          mark_read: options["markRead"] === true,
          stop: options["stop"] === true,
        }),
      );
      const existing = script.filters.findIndex((candidate) => candidate.name === add);
      if (existing >= 0) script.filters[existing] = rule;
      else script.filters.push(rule);
    } else {
      refuse(context, "filter", ["give --add NAME, --remove NAME or --list"]);
    }
    saveUserScript(context, "filter", script);
  },
};

export const GENERATE_PROGRAMS: readonly ProgramDefinition[] = [renderGlobal, vacation, forward, filter];
