/**
 * Runs a validated Sieve script against one message and returns what would
 * happen: the actions in order (store into a folder with flags, redirect,
 * discard, reject, vacation with its reply) and whether the implicit keep
 * is left, the way Pigeonhole's sieve-test reports them. Supported: core,
 * fileinto, reject, envelope, encoded-character, vacation(-seconds),
 * subaddress, comparators, relational, regex, imap4flags, copy, variables,
 * body. Action merging and conflicts follow Pigeonhole: stores into the
 * same folder merge (the last flags win), identical redirects merge, reject
 * cannot go with delivering actions or vacation, at most one reject and
 * one vacation, at most 4 redirects. No I/O and no loops: the run is bounded
 * by the script; variable values are capped at 4000 bytes like Pigeonhole's
 * default sieve_variables_max_variable_size.
 */
import { type Comparator, foldAscii, type MatchType, matchAny, type RelationalOperator } from "./matching.js";
import { type Address, decodeEncodedWords, headerValues, type Message, parseAddressList } from "./message.js";
import type { Argument, CommandNode, StringArgument, TestNode } from "./parser.js";
import { decodeEncodedCharacters, findVariableReferences, quoteWildcards } from "./strings.js";
import { checkAddress } from "./values.js";

function upperAscii(text: string): string {
  return text.replace(/[a-z]/g, (c) => c.toUpperCase());
}

export const INTERPRETER_EXTENSIONS: ReadonlySet<string> = new Set([
  "fileinto",
  "reject",
  "envelope",
  "encoded-character",
  "vacation",
  "vacation-seconds",
  "subaddress",
  "comparator-i;ascii-numeric",
  "comparator-i;octet",
  "comparator-i;ascii-casemap",
  "relational",
  "regex",
  "imap4flags",
  "copy",
  "variables",
  "body",
]);

const MAX_VARIABLE_BYTES = 4000;
const MAX_REDIRECTS = 4;
const MIN_VACATION_SECONDS = 86_400;
const SYSTEM_FLAGS = ["\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"];

export type Action =
  | { kind: "store"; folder: string; flags: string[]; create: boolean; copy: boolean }
  | { kind: "redirect"; address: string; copy: boolean }
  | { kind: "discard" }
  | { kind: "reject"; reason: string }
  | {
      kind: "vacation";
      seconds: number;
      subject: string | null;
      from: string | null;
      addresses: string[];
      mime: boolean;
      handle: string | null;
      reason: string;
    };

export type InterpretResult =
  | { status: "ok"; actions: Action[]; implicitKeep: { flags: string[] } | null }
  | { status: "error"; line: number; message: string };

export interface Envelope {
  /** Envelope sender; "" for the null sender <>. */
  from: string;
  to: string;
}

class RuntimeError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

class Stop {}

/** A redirect to an address already redirected to: dropped, like Pigeonhole does. */
class Duplicate {}

/**
 * Flags as a message carries them: the system flags in IMAP's order
 * (\answered \flagged \deleted \seen \draft), then the keywords as set.
 */
export function canonicalFlags(flags: readonly string[]): string[] {
  const order = ["\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft"];
  const system = order.filter((flag) => flags.includes(flag));
  return [...system, ...flags.filter((flag) => !flag.startsWith("\\"))];
}

/** Valid flags of space-separated lists, first spelling kept, duplicates and invalid system flags dropped. */
export function parseFlags(lists: readonly string[]): string[] {
  const flags: string[] = [];
  const seen = new Set<string>();
  for (const list of lists) {
    for (const flag of list.split(" ")) {
      if (flag === "") continue;
      const lower = flag.toLowerCase();
      if (flag.startsWith("\\") && !SYSTEM_FLAGS.includes(lower)) continue;
      if (/[\x00-\x20(){%*"\]\x7f]/.test(flag.replace(/^\\/, ""))) continue;
      if (seen.has(lower)) continue;
      seen.add(lower);
      flags.push(flag.startsWith("\\") ? lower : flag);
    }
  }
  return flags;
}

class Run {
  private readonly variables = new Map<string, string>();
  private matchVariables: string[] = [];
  private readonly actions: Action[] = [];
  private implicitKeep = true;
  private readonly enabled: ReadonlySet<string>;

  constructor(
    private readonly message: Message,
    private readonly envelope: Envelope,
    enabled: ReadonlySet<string>,
  ) {
    this.enabled = enabled;
  }

  result(): InterpretResult {
    return {
      status: "ok",
      actions: this.actions,
      implicitKeep: this.implicitKeep
        ? { flags: canonicalFlags(parseFlags([this.variables.get("") ?? ""])) }
        : null,
    };
  }

  // --- strings -----------------------------------------------------------

  private expand(argument: StringArgument): string {
    let value = argument.decoded ?? argument.value;
    if (argument.decoded === undefined && this.enabled.has("encoded-character")) {
      value = decodeEncodedCharacters(value, () => {});
    }
    if (!this.enabled.has("variables") || !value.includes("${")) return value;
    let out = "";
    let last = 0;
    for (const reference of findVariableReferences(value)) {
      out += value.slice(last, reference.start);
      if (reference.matchIndex !== null) out += this.matchVariables[reference.matchIndex] ?? "";
      else if (reference.namespace.length === 0) out += this.variables.get(reference.name) ?? "";
      last = reference.start + reference.length;
    }
    return out + value.slice(last);
  }

  private strings(argument: Argument | undefined): string[] {
    if (argument === undefined) return [];
    if (argument.kind === "string") return [this.expand(argument)];
    if (argument.kind === "string-list") return argument.items.map((item) => this.expand(item));
    return [];
  }

  private string(argument: Argument | undefined): string {
    return this.strings(argument)[0] ?? "";
  }

  private setVariable(name: string, value: string): void {
    let capped = value;
    if (Buffer.byteLength(capped) > MAX_VARIABLE_BYTES) {
      capped = Buffer.from(capped)
        .subarray(0, MAX_VARIABLE_BYTES)
        .toString("utf8")
        .replace(/\uFFFD$/, "");
    }
    this.variables.set(name.toLowerCase(), capped);
  }

  // --- arguments ---------------------------------------------------------

  /** Tags (with their parameter) and positional arguments of a node. */
  private split(node: TestNode): { tags: Map<string, Argument | null>; positional: Argument[] } {
    const tags = new Map<string, Argument | null>();
    const positional: Argument[] = [];
    const withParameter = new Set([
      "comparator",
      "count",
      "value",
      "days",
      "seconds",
      "subject",
      "from",
      "addresses",
      "handle",
      "flags",
      "content",
      "index",
    ]);
    const args = node.arguments;
    for (let index = 0; index < args.length; index += 1) {
      const argument = args[index]!;
      if (argument.kind === "tag") {
        const parameter = withParameter.has(argument.name) ? (args[index + 1] ?? null) : null;
        if (parameter !== null) index += 1;
        tags.set(argument.name, parameter);
      } else {
        positional.push(argument);
      }
    }
    return { tags, positional };
  }

  private matching(tags: Map<string, Argument | null>): { matchType: MatchType; comparator: Comparator } {
    const comparator = (
      tags.has("comparator")
        ? this.string(tags.get("comparator") ?? undefined).toLowerCase()
        : "i;ascii-casemap"
    ) as Comparator;
    let matchType: MatchType = { kind: "is" };
    if (tags.has("contains")) matchType = { kind: "contains" };
    else if (tags.has("matches")) matchType = { kind: "matches" };
    else if (tags.has("regex")) matchType = { kind: "regex" };
    else if (tags.has("value"))
      matchType = {
        kind: "value",
        operator: this.string(tags.get("value") ?? undefined) as RelationalOperator,
      };
    else if (tags.has("count"))
      matchType = {
        kind: "count",
        operator: this.string(tags.get("count") ?? undefined) as RelationalOperator,
      };
    return { matchType, comparator };
  }

  /** Matches and, when variables are on, keeps the captures of a successful :matches/:regex. */
  private compareValues(values: string[], keys: string[], tags: Map<string, Argument | null>): boolean {
    const { matchType, comparator } = this.matching(tags);
    const outcome = matchAny(values, keys, matchType, comparator);
    if (outcome.matched && outcome.captures !== null && this.enabled.has("variables")) {
      this.matchVariables = outcome.captures;
    }
    return outcome.matched;
  }

  // --- tests ---------------------------------------------------------------

  private addressPart(address: Address, tags: Map<string, Argument | null>): string | null {
    if (tags.has("localpart")) return address.local;
    if (tags.has("domain")) return address.domain;
    if (tags.has("user") || tags.has("detail")) {
      const plus = address.local.indexOf("+");
      if (tags.has("user")) return plus < 0 ? address.local : address.local.slice(0, plus);
      return plus < 0 ? null : address.local.slice(plus + 1);
    }
    return `${address.local}@${address.domain}`;
  }

  private headerTexts(names: string[]): string[] {
    return names.flatMap((name) => headerValues(this.message.headers, name)).map(decodeEncodedWords);
  }

  private test(node: TestNode): boolean {
    const { tags, positional } = this.split(node);
    switch (node.name) {
      case "true":
        return true;
      case "false":
        return false;
      case "not":
        return !this.test(node.tests[0]!);
      case "anyof":
        return node.tests.some((sub) => this.test(sub));
      case "allof":
        return node.tests.every((sub) => this.test(sub));
      case "exists":
        return this.strings(positional[0]).every(
          (name) => headerValues(this.message.headers, name).length > 0,
        );
      case "size": {
        const limit = positional[0]?.kind === "number" ? Number(positional[0].value) : 0;
        return tags.has("over") ? this.message.size > limit : this.message.size < limit;
      }
      case "header":
        return this.compareValues(
          this.headerTexts(this.strings(positional[0])),
          this.strings(positional[1]),
          tags,
        );
      case "address": {
        const wholeAddress = !["localpart", "domain", "user", "detail"].some((part) => tags.has(part));
        const parts = this.strings(positional[0]).flatMap((name) =>
          headerValues(this.message.headers, name).flatMap((raw) => {
            const value = decodeEncodedWords(raw);
            const addresses = parseAddressList(value);
            // A header without any address is compared whole, as Pigeonhole does.
            if (addresses.length === 0) return wholeAddress && value.trim() !== "" ? [value.trim()] : [];
            return addresses
              .map((address) => this.addressPart(address, tags))
              .filter((part) => part !== null);
          }),
        );
        return this.compareValues(parts, this.strings(positional[1]), tags);
      }
      case "envelope": {
        const values = this.strings(positional[0]).flatMap((part) => {
          const lower = part.toLowerCase();
          const text = lower === "from" ? this.envelope.from : lower === "to" ? this.envelope.to : null;
          if (text === null) return [];
          if (text === "")
            return tags.has("localpart") || tags.has("domain") || tags.has("user") || tags.has("detail")
              ? []
              : [""];
          const [address] = parseAddressList(text);
          const value = address === undefined ? null : this.addressPart(address, tags);
          return value === null ? [] : [value];
        });
        return this.compareValues(values, this.strings(positional[1]), tags);
      }
      case "string": {
        // RFC 5229 5: :count counts the non-empty strings.
        const values = this.strings(positional[0]);
        return this.compareValues(
          tags.has("count") ? values.filter((value) => value !== "") : values,
          this.strings(positional[1]),
          tags,
        );
      }
      case "hasflag": {
        const names = positional.length === 2 ? this.strings(positional[0]) : [""];
        const flags = parseFlags(names.map((name) => this.variables.get(name.toLowerCase()) ?? ""));
        const keys = this.strings(positional.at(-1)).flatMap((key) =>
          key.split(" ").filter((part) => part !== ""),
        );
        return this.compareValues(flags, keys, tags);
      }
      case "body":
        return this.compareValues(this.bodyValues(tags), this.strings(positional[0]), tags);
      default:
        throw new RuntimeError(node.line, `the test '${node.name}' is not supported by sieve test`);
    }
  }

  private bodyValues(tags: Map<string, Argument | null>): string[] {
    if (tags.has("raw")) return [new TextDecoder().decode(this.message.rawBody)];
    const wanted = tags.has("content")
      ? this.strings(tags.get("content") ?? undefined).map((type) => type.toLowerCase())
      : ["text"];
    const values: string[] = [];
    for (const part of this.message.parts) {
      if (part.children.length > 0) continue;
      const [type = "", subtype = ""] = part.contentType.split("/");
      const fits = wanted.some((want) => want === "" || want === type || want === `${type}/${subtype}`);
      if (!fits) continue;
      values.push(part.text ?? new TextDecoder().decode(part.rawBody));
    }
    return values;
  }

  // --- commands ------------------------------------------------------------

  block(commands: readonly CommandNode[]): void {
    let previousTaken: boolean | null = null;
    for (const command of commands) {
      switch (command.name) {
        case "require":
          continue;
        case "if":
          previousTaken = this.conditional(command);
          continue;
        case "elsif":
          if (previousTaken === true) continue;
          previousTaken = this.conditional(command);
          continue;
        case "else":
          if (previousTaken === false) this.block(command.block ?? []);
          previousTaken = null;
          continue;
        default:
          previousTaken = null;
          this.command(command);
      }
    }
  }

  private conditional(command: CommandNode): boolean {
    const taken = this.test(command.tests[0]!);
    if (taken) this.block(command.block ?? []);
    return taken;
  }

  private flagsVariable(positional: Argument[]): { name: string; flags: string[] } {
    const name = positional.length === 2 ? this.string(positional[0]).toLowerCase() : "";
    return { name, flags: this.strings(positional.at(-1)) };
  }

  private command(command: CommandNode): void {
    const { tags, positional } = this.split(command);
    switch (command.name) {
      case "stop":
        throw new Stop();
      case "keep":
        this.store(command, "INBOX", tags, false);
        return;
      case "discard":
        this.add(command, { kind: "discard" });
        this.implicitKeep = false;
        return;
      case "fileinto":
        this.store(command, this.string(positional[0]), tags, tags.has("copy"));
        return;
      case "redirect": {
        const address = this.string(positional[0]).trim();
        const problem = checkAddress(address);
        if (problem !== null)
          throw new RuntimeError(command.line, `redirect address '${address}' is invalid: ${problem}`);
        const bare = /<([^>]*)>/.exec(address)?.[1] ?? address;
        try {
          this.add(command, { kind: "redirect", address: bare, copy: tags.has("copy") });
        } catch (error) {
          if (error instanceof Duplicate) return;
          throw error;
        }
        if (!tags.has("copy")) this.implicitKeep = false;
        return;
      }
      case "reject":
      case "ereject":
        this.add(command, { kind: "reject", reason: this.string(positional[0]) });
        this.implicitKeep = false;
        return;
      case "vacation": {
        const days = tags.get("days");
        const seconds = tags.get("seconds");
        // Pigeonhole's default sieve_vacation_min_period is one day.
        const period = Math.max(
          MIN_VACATION_SECONDS,
          seconds?.kind === "number"
            ? Number(seconds.value)
            : (days?.kind === "number" ? Number(days.value) : 7) * 86_400,
        );
        this.add(command, {
          kind: "vacation",
          seconds: period,
          subject: tags.has("subject") ? this.string(tags.get("subject") ?? undefined) : null,
          from: tags.has("from") ? this.string(tags.get("from") ?? undefined) : null,
          addresses: tags.has("addresses") ? this.strings(tags.get("addresses") ?? undefined) : [],
          mime: tags.has("mime"),
          handle: tags.has("handle") ? this.string(tags.get("handle") ?? undefined) : null,
          reason: this.string(positional[0]),
        });
        return;
      }
      case "setflag":
      case "addflag":
      case "removeflag": {
        const { name, flags } = this.flagsVariable(positional);
        const current = parseFlags([this.variables.get(name) ?? ""]);
        const given = parseFlags(flags);
        let next: string[];
        if (command.name === "setflag") next = given;
        else if (command.name === "addflag") next = parseFlags([[...current, ...given].join(" ")]);
        else
          next = current.filter(
            (flag) => !given.some((remove) => remove.toLowerCase() === flag.toLowerCase()),
          );
        this.setVariable(name, next.join(" "));
        return;
      }
      case "set": {
        let value = this.string(positional[1]);
        // Case changes touch ASCII letters only, as in Pigeonhole.
        if (tags.has("lower")) value = foldAscii(value);
        if (tags.has("upper")) value = upperAscii(value);
        if (tags.has("lowerfirst")) value = foldAscii(value.slice(0, 1)) + value.slice(1);
        if (tags.has("upperfirst")) value = upperAscii(value.slice(0, 1)) + value.slice(1);
        if (tags.has("quotewildcard")) value = quoteWildcards(value);
        if (tags.has("length")) value = String(Array.from(value).length);
        this.setVariable(this.string(positional[0]), value);
        return;
      }
      default:
        throw new RuntimeError(command.line, `the command '${command.name}' is not supported by sieve test`);
    }
  }

  private store(
    command: CommandNode,
    folder: string,
    tags: Map<string, Argument | null>,
    copy: boolean,
  ): void {
    const flags = canonicalFlags(
      tags.has("flags")
        ? parseFlags(this.strings(tags.get("flags") ?? undefined))
        : parseFlags([this.variables.get("") ?? ""]),
    );
    const existing = this.actions.find((action) => action.kind === "store" && action.folder === folder);
    if (existing?.kind === "store") {
      // A second store into the same folder only updates the first (Pigeonhole merges them).
      existing.flags = flags;
      existing.create ||= tags.has("create");
      return;
    }
    this.add(command, { kind: "store", folder, flags, create: tags.has("create"), copy });
    if (!copy) this.implicitKeep = false;
  }

  private add(command: CommandNode, action: Action): void {
    const fail = (message: string): never => {
      throw new RuntimeError(command.line, message);
    };
    const rejecting = this.actions.some((other) => other.kind === "reject");
    const delivers = (other: Action) => other.kind === "store" || other.kind === "redirect";
    if (action.kind === "reject") {
      if (rejecting) fail("duplicate reject action");
      const clash = this.actions.find((other) => delivers(other) || other.kind === "vacation");
      if (clash !== undefined) fail(`reject conflicts with the earlier ${clash.kind} action`);
    } else if (rejecting && (delivers(action) || action.kind === "vacation")) {
      fail(`the ${action.kind} action conflicts with the earlier reject action`);
    }
    if (action.kind === "vacation" && this.actions.some((other) => other.kind === "vacation")) {
      fail("duplicate vacation action");
    }
    if (action.kind === "redirect") {
      const same = this.actions.find(
        (other) => other.kind === "redirect" && other.address === action.address,
      );
      if (same !== undefined) throw new Duplicate();
      if (this.actions.filter((other) => other.kind === "redirect").length >= MAX_REDIRECTS) {
        fail(`more than ${MAX_REDIRECTS} redirect actions (the server's limit)`);
      }
    }
    this.actions.push(action);
  }
}

export interface InterpretOptions {
  envelope: Envelope;
  /** The extensions the script required (from `require`). */
  required: ReadonlySet<string>;
}

export function interpret(
  commands: readonly CommandNode[],
  message: Message,
  options: InterpretOptions,
): InterpretResult {
  const run = new Run(message, options.envelope, options.required);
  try {
    run.block(commands);
  } catch (error) {
    if (error instanceof RuntimeError) return { status: "error", line: error.line, message: error.message };
    if (!(error instanceof Stop)) throw error;
  }
  return run.result();
}

/** The extensions a script requires, from its `require` commands. */
export function requiredExtensions(commands: readonly CommandNode[]): Set<string> {
  const names = new Set<string>();
  for (const command of commands) {
    if (command.name !== "require") break;
    const argument = command.arguments[0];
    const items =
      argument?.kind === "string" ? [argument] : argument?.kind === "string-list" ? argument.items : [];
    for (const item of items) names.add(item.value);
  }
  if (names.has("vacation-seconds")) names.add("vacation");
  return names;
}
