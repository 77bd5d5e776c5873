/**
 * The Sieve validator: walks the syntax tree and checks it against the
 * command declarations (command-specs.ts) the way Pigeonhole's compiler
 * does — `require` first and only at the top, capabilities the server
 * offers, tags and positional arguments of the right type, blocks and
 * sub-tests where they belong, elsif/else after if, break and extracttext
 * inside foreverypart, constant values that must be valid (addresses,
 * comparators, regular expressions, relational operators). `ihave` turns
 * extensions on for the rest of the script, and a block guarded by
 * `if ihave` with an unavailable extension is not validated, as RFC 5463
 * asks. Included scripts are read through an injected resolver, so this
 * module does no I/O.
 */
import { COMMANDS, TESTS } from "./command-specs.js";
import type { DiagnosticSink, Position } from "./diagnostics.js";
import { IMPLIES, isKnownExtension } from "./extensions.js";
import type { Argument, CommandNode, StringArgument, TestNode } from "./parser.js";
import { checkPosixExtendedRegex } from "./posix-regex.js";
import type { CheckedNode, CommandSpec, UsedTag, ValidationContext } from "./spec-types.js";
import {
  decodeEncodedCharacters,
  findVariableReferences,
  isAssignableName,
  MAX_MATCH_INDEX,
  parseVariableName,
} from "./strings.js";

/** Pigeonhole's sieve_include_max_nesting_depth default. */
export const MAX_INCLUDE_DEPTH = 10;

export interface IncludeResolver {
  /** The script's bytes, or null when it does not exist. */
  read(location: "personal" | "global", name: string): Uint8Array | null;
}

export interface ValidateOptions {
  allowed: ReadonlySet<string>;
  includes?: IncludeResolver;
  /** Parses and validates an included script; set by check.ts to avoid an import cycle. */
  checkIncluded?: (bytes: Uint8Array, depth: number, chain: readonly string[]) => string | null;
  includeDepth?: number;
  includeChain?: readonly string[];
}

const NO_TAGS: Map<string, UsedTag> = new Map();
const RELATIONAL_OPERATORS = new Set(["gt", "ge", "lt", "le", "eq", "ne"]);
const COMPARATORS = new Set(["i;octet", "i;ascii-casemap", "i;ascii-numeric"]);

function article(kind: "command" | "test"): string {
  return kind === "command" ? "command" : "test";
}

function argumentName(argument: Argument | undefined): string {
  if (argument === undefined) return "nothing";
  switch (argument.kind) {
    case "string":
      return "a string";
    case "string-list":
      return "a string list";
    case "number":
      return "a number";
    case "tag":
      return `the tag :${argument.written}`;
  }
}

export class Validator implements ValidationContext {
  private readonly enabledSet = new Set<string>();
  private readonly reportedUnknown = new Set<string>();
  private readonly localVariables = new Set<string>();
  private readonly globalVariables = new Set<string>();
  private readonly required = new Set<string>();
  loops: string[] = [];

  constructor(
    private readonly sink: DiagnosticSink,
    private readonly options: ValidateOptions,
  ) {}

  enabled(extension: string): boolean {
    return this.enabledSet.has(extension);
  }

  error(at: Position, message: string): void {
    this.sink.error(at, message);
  }

  warning(at: Position, message: string): void {
    this.sink.warning(at, message);
  }

  items(argument: Argument): StringArgument[] {
    if (argument.kind === "string") return [argument];
    if (argument.kind === "string-list") return argument.items;
    return [];
  }

  /** Decoded value (encoded characters), cached, with its problems reported once. */
  private decode(argument: StringArgument): string {
    if (argument.decoded !== undefined) return argument.decoded;
    const value = this.enabled("encoded-character")
      ? decodeEncodedCharacters(argument.value, (problem) => this.error(argument, problem.message))
      : argument.value;
    argument.decoded = value;
    argument.hasVariables = false;
    if (this.enabled("variables") && value.includes("${")) {
      const references = findVariableReferences(value);
      argument.hasVariables = references.length > 0;
      for (const reference of references) {
        if (reference.namespace.length > 0) {
          this.warning(
            argument,
            `variable '\${${reference.namespace.join(".")}.${reference.name}}' refers to an unknown namespace '${reference.namespace[0]}'; it stays empty`,
          );
        } else if (reference.matchIndex !== null && reference.matchIndex > MAX_MATCH_INDEX) {
          this.warning(
            argument,
            `match variable \${${reference.name}} is out of range (at most ${MAX_MATCH_INDEX}); it stays empty`,
          );
        }
      }
    }
    return value;
  }

  constant(argument: StringArgument): string | null {
    const value = this.decode(argument);
    return argument.hasVariables === true ? null : value;
  }

  assignable(argument: StringArgument, what: string): void {
    const name = this.decode(argument);
    const parsed = parseVariableName(name);
    if (parsed?.matchIndex !== null && parsed !== null) {
      this.error(argument, `${what}: cannot assign to the match variable '${name}'`);
    } else if (parsed !== null && parsed.namespace.length > 0) {
      this.error(
        argument,
        `${what}: variable '${name}' refers to an unknown namespace '${parsed.namespace[0]}'`,
      );
    } else if (!isAssignableName(name)) {
      this.error(argument, `${what}: '${name.slice(0, 80)}' is not a valid variable name`);
    } else {
      this.localVariables.add(name.toLowerCase());
    }
  }

  declareGlobal(argument: StringArgument): void {
    const name = this.decode(argument);
    if (!isAssignableName(name)) {
      this.error(argument, `global: '${name.slice(0, 80)}' is not a valid variable name`);
      return;
    }
    const lower = name.toLowerCase();
    if (this.localVariables.has(lower) && !this.globalVariables.has(lower)) {
      this.error(argument, `global: variable '${name}' was already used as a local variable above`);
    }
    this.globalVariables.add(lower);
  }

  includeExists(location: "personal" | "global", name: string): boolean | undefined {
    if (this.options.includes === undefined) return undefined;
    return this.options.includes.read(location, name) !== null;
  }

  checkIncluded(location: "personal" | "global", name: string, at: Position): void {
    const bytes = this.options.includes?.read(location, name);
    if (bytes === null || bytes === undefined || this.options.checkIncluded === undefined) return;
    const key = `${location}:${name}`;
    const chain = this.options.includeChain ?? [];
    if (chain.includes(key)) return;
    const depth = (this.options.includeDepth ?? 0) + 1;
    if (depth > MAX_INCLUDE_DEPTH) {
      this.error(at, `includes are nested too deeply (at most ${MAX_INCLUDE_DEPTH} levels)`);
      return;
    }
    const problem = this.options.checkIncluded(bytes, depth, [...chain, key]);
    if (problem !== null) this.error(at, `the included ${location} script '${name}' is invalid: ${problem}`);
  }

  private enable(name: string): void {
    this.enabledSet.add(name);
    for (const implied of IMPLIES[name as keyof typeof IMPLIES] ?? []) this.enabledSet.add(implied);
  }

  private offered(name: string): boolean {
    return isKnownExtension(name) && this.options.allowed.has(name);
  }

  /** Validates a whole script. */
  script(commands: readonly CommandNode[]): void {
    this.enable("comparator-i;octet");
    this.enable("comparator-i;ascii-casemap");
    let first = 0;
    while (first < commands.length && commands[first]!.name === "require") {
      this.require(commands[first]!);
      first += 1;
    }
    this.checkExtensionDependencies(commands[0] ?? { line: 1, column: 1 });
    this.block(commands.slice(first));
  }

  private require(command: CommandNode): void {
    const [argument, ...rest] = command.arguments;
    if (
      argument === undefined ||
      rest.length > 0 ||
      command.tests.length > 0 ||
      argument.kind === "tag" ||
      argument.kind === "number"
    ) {
      this.error(command, "require takes one string or string list of capability names");
      return;
    }
    if (command.block !== null) this.error(command, "require does not take a block");
    for (const item of this.items(argument)) {
      const name = item.value;
      if (this.offered(name)) {
        this.enable(name);
        this.required.add(name);
        continue;
      }
      const why = isKnownExtension(name)
        ? "the server does not offer it (see --extensions)"
        : "no such Sieve extension";
      this.error(item, `require: unknown capability '${name}': ${why}`);
    }
  }

  private checkExtensionDependencies(at: Position): void {
    if (this.enabled("extracttext")) {
      if (!this.enabled("variables"))
        this.error(at, 'extracttext needs the variables extension (require "variables")');
      if (!this.enabled("foreverypart")) {
        this.error(at, 'extracttext needs the foreverypart extension (require "foreverypart")');
      }
    }
    if (this.required.has("spamtest") && this.required.has("spamtestplus")) {
      this.warning(
        at,
        "spamtest and spamtestplus should not be required together (spamtestplus includes spamtest)",
      );
    }
  }

  private block(commands: readonly CommandNode[]): void {
    let previous: CommandNode | null = null;
    for (const command of commands) {
      this.command(command, previous);
      previous = command;
    }
  }

  private command(command: CommandNode, previous: CommandNode | null): void {
    switch (command.name) {
      case "require":
        this.error(command, "require is only allowed at the top of the script, before any other command");
        return;
      case "if":
      case "elsif":
      case "else":
        this.conditional(command, previous);
        return;
    }
    const spec = this.lookup(command, "command");
    if (spec === null) return;
    const checked = this.checkNode(command, spec);
    if (command.block === null || spec.block !== "required") return;
    if (spec.name !== "foreverypart") {
      this.block(command.block);
      return;
    }
    const nameArgument = checked?.tags.get("name")?.parameter;
    this.loops.push(nameArgument?.kind === "string" ? (this.constant(nameArgument) ?? "") : "");
    this.block(command.block);
    this.loops.pop();
  }

  private conditional(command: CommandNode, previous: CommandNode | null): void {
    const name = command.name;
    if (name !== "if" && (previous === null || (previous.name !== "if" && previous.name !== "elsif"))) {
      this.error(command, `${name} must follow an if or elsif command`);
    }
    for (const argument of command.arguments) {
      this.error(
        argument,
        `${name} takes no arguments other than ${name === "else" ? "its block" : "a test"}`,
      );
    }
    let skipBlock = false;
    if (name === "else") {
      if (command.tests.length > 0) this.error(command, "else takes no test");
    } else if (command.tests.length === 0) {
      this.error(command, `${name} needs a test`);
    } else if (command.testList || command.tests.length > 1) {
      this.error(command, `${name} takes one test, not a test list (use anyof or allof)`);
    } else {
      const test = command.tests[0]!;
      skipBlock = test.name === "ihave" && this.ihaveMissing(test);
      this.test(test);
    }
    if (command.block === null) {
      this.error(command, `${name} needs a block ({ … })`);
      return;
    }
    if (!skipBlock) this.block(command.block);
  }

  /** True when `if ihave` names a capability that is not available: its block is then not validated. */
  private ihaveMissing(test: TestNode): boolean {
    if (!this.enabled("ihave")) return false;
    const argument = test.arguments[0];
    if (argument === undefined || (argument.kind !== "string" && argument.kind !== "string-list"))
      return false;
    let missing = false;
    for (const item of this.items(argument)) {
      const value = this.constant(item);
      if (value === null) continue;
      if (!this.offered(value)) missing = true;
    }
    return missing;
  }

  private test(test: TestNode): void {
    const spec = this.lookup(test, "test");
    if (spec === null) return;
    this.checkNode(test, spec);
    if (spec.name === "ihave") this.ihaveEnable(test);
    for (const sub of test.tests) this.test(sub);
  }

  private ihaveEnable(test: TestNode): void {
    const argument = test.arguments[0];
    if (argument === undefined) return;
    for (const item of this.items(argument)) {
      const value = this.constant(item);
      if (value !== null && this.offered(value)) this.enable(value);
    }
  }

  private lookup(node: TestNode, kind: "command" | "test"): CommandSpec | null {
    const own = kind === "command" ? COMMANDS : TESTS;
    const other = kind === "command" ? TESTS : COMMANDS;
    const spec = own.get(node.name);
    const available = (candidate: CommandSpec) =>
      candidate.extensions.length === 0 || candidate.extensions.some((name) => this.enabled(name));
    if (spec !== undefined && available(spec)) return spec;
    const misplaced =
      other.get(node.name) ?? (["if", "elsif", "else", "require"].includes(node.name) ? null : undefined);
    if (misplaced !== undefined && (misplaced === null || available(misplaced))) {
      this.error(node, `${node.name} is a ${kind === "command" ? "test" : "command"}, not a ${kind}`);
      return null;
    }
    if (this.reportedUnknown.has(`${kind}:${node.name}`)) return null;
    this.reportedUnknown.add(`${kind}:${node.name}`);
    if (spec !== undefined) {
      const extension = spec.extensions[0]!;
      const hint = this.offered(extension)
        ? `add require "${extension}"`
        : `the ${extension} extension is not available (see --extensions)`;
      this.error(node, `unknown ${kind} '${node.name}': ${hint}`);
    } else {
      this.error(node, `unknown ${kind} '${node.name}'`);
    }
    return null;
  }

  /** Sorts out tags and positional arguments and runs the generic and specific checks. */
  private checkNode(node: TestNode | CommandNode, spec: CommandSpec): CheckedNode | null {
    const what = `the ${spec.name} ${article(spec.kind)}`;
    const tagged = node.arguments[0]?.kind === "tag";
    const checked: CheckedNode = {
      node,
      spec,
      // Most nodes have no tags; they share one empty map that is never written.
      tags: tagged ? new Map() : NO_TAGS,
      slots: tagged ? new Map() : NO_TAGS,
      positional: [],
    };
    let ok = true;
    const args = node.arguments;
    let index = 0;
    for (; index < args.length; index += 1) {
      const argument = args[index]!;
      if (argument.kind !== "tag") break;
      const tagSpec = spec.tags.find(
        (candidate) =>
          candidate.name === argument.name &&
          (candidate.extension === null || this.enabled(candidate.extension)),
      );
      if (tagSpec === undefined) {
        this.error(argument, `unknown tag :${argument.written} for ${what}`);
        ok = false;
        continue;
      }
      let parameter: Argument | null = null;
      if (tagSpec.parameter !== undefined) {
        const next = args[index + 1];
        const fits =
          next !== undefined &&
          (next.kind === tagSpec.parameter ||
            (tagSpec.parameter === "string-list" && next.kind === "string"));
        if (!fits) {
          this.error(
            argument,
            `the :${tagSpec.name} tag of ${what} needs ${tagSpec.parameter === "number" ? "a number" : `a ${tagSpec.parameter}`}, but ${argumentName(next)} follows`,
          );
          ok = false;
          if (next !== undefined && next.kind !== "tag") index += 1;
          continue;
        }
        parameter = next;
        index += 1;
      }
      const used: UsedTag = { tag: argument, spec: tagSpec, parameter };
      const clash = checked.slots.get(tagSpec.slot);
      if (clash !== undefined) {
        this.error(
          argument,
          `:${argument.written} conflicts with :${clash.tag.written} in ${what} (${tagSpec.slot.startsWith("modifier") ? "modifiers of equal precedence" : `only one ${tagSpec.slot} is allowed`})`,
        );
        ok = false;
        continue;
      }
      checked.slots.set(tagSpec.slot, used);
      checked.tags.set(tagSpec.name, used);
    }
    for (; index < args.length; index += 1) {
      const argument = args[index]!;
      if (argument.kind === "tag") {
        this.error(
          argument,
          `tag :${argument.written} after the positional arguments of ${what}; tags come first`,
        );
        ok = false;
        continue;
      }
      checked.positional.push(argument);
    }
    for (const argument of args) {
      if (argument.kind === "string") this.decode(argument);
      else if (argument.kind === "string-list") for (const item of argument.items) this.decode(item);
    }
    if (!this.checkPositional(checked, what)) ok = false;
    if (!this.checkStructure(node, spec, what)) ok = false;
    if (!ok) return null;
    this.checkMatching(checked, what);
    if (spec.headerNames !== undefined) this.warnHeaderNames(checked, spec.headerNames);
    spec.check?.(checked, this);
    return checked;
  }

  private checkPositional(checked: CheckedNode, what: string): boolean {
    const { positional, spec } = checked;
    const expected = spec.positional;
    if (!Array.isArray(expected)) {
      const range = expected as { min: number; max: number };
      if (positional.length < range.min || positional.length > range.max) {
        this.error(
          checked.node,
          `${what} takes ${range.min} to ${range.max} positional arguments, but ${positional.length} ${positional.length === 1 ? "is" : "are"} given`,
        );
        return false;
      }
      return true;
    }
    const types = expected as readonly string[];
    const minimum = types.length - (spec.optionalPositional ?? 0);
    if (positional.length < minimum || positional.length > types.length) {
      const count = minimum === types.length ? `${types.length}` : `${minimum} or ${types.length}`;
      this.error(
        checked.node,
        `${what} takes ${count} positional argument(s), but ${positional.length} ${positional.length === 1 ? "is" : "are"} given`,
      );
      return false;
    }
    let ok = true;
    positional.forEach((argument, position) => {
      const type = types[position]!;
      const fits = argument.kind === type || (type === "string-list" && argument.kind === "string");
      if (!fits) {
        this.error(
          argument,
          `${what} expects ${type === "number" ? "a number" : `a ${type}`} as argument ${position + 1}, but ${argumentName(argument)} is given`,
        );
        ok = false;
      }
    });
    return ok;
  }

  private checkStructure(node: TestNode | CommandNode, spec: CommandSpec, what: string): boolean {
    let ok = true;
    const subtests = spec.subtests ?? "none";
    if (subtests === "none" && node.tests.length > 0) {
      const test = node.tests[0]!;
      if (node.testList) this.error(node, `${what} takes no tests`);
      else this.error(test, `${what} takes no test here: is a ';' missing before '${test.name}'?`);
      ok = false;
    } else if (subtests === "one" && (node.tests.length !== 1 || node.testList)) {
      this.error(node, `${what} takes exactly one test${node.testList ? ", not a test list" : ""}`);
      ok = false;
    } else if (subtests === "list" && !node.testList) {
      this.error(node, `${what} takes a test list in parentheses: ${spec.name}(test, …)`);
      ok = false;
    }
    if (spec.kind === "command") {
      const block = (node as CommandNode).block;
      if (spec.block === "required" && block === null) {
        this.error(node, `${what} needs a block ({ … })`);
        ok = false;
      } else if (spec.block !== "required" && block !== null) {
        this.error(node, `${what} does not take a block; end it with ';'`);
        ok = false;
      }
    }
    return ok;
  }

  /** Comparator, match type, relational operator, regex keys, :index/:last and :mime rules. */
  private checkMatching(checked: CheckedNode, what: string): void {
    const comparatorTag = checked.tags.get("comparator");
    let comparator = "i;ascii-casemap";
    if (comparatorTag?.parameter?.kind === "string") {
      const value = this.constant(comparatorTag.parameter);
      if (value !== null) {
        comparator = value.toLowerCase();
        const known =
          COMPARATORS.has(comparator) &&
          (comparator !== "i;ascii-numeric" || this.enabled("comparator-i;ascii-numeric"));
        if (!known) this.error(comparatorTag.parameter, `unknown comparator '${value}'`);
      }
    }
    const matchType = checked.slots.get("MATCH-TYPE");
    if (matchType !== undefined) {
      const name = matchType.spec.name;
      if (
        (name === "contains" || name === "matches" || name === "regex") &&
        comparator === "i;ascii-numeric"
      ) {
        this.error(matchType.tag, `the i;ascii-numeric comparator cannot be used with :${name}`);
      }
      if ((name === "count" || name === "value") && matchType.parameter !== null) {
        const operator = matchType.parameter.kind === "string" ? this.constant(matchType.parameter) : null;
        if (operator === null || !RELATIONAL_OPERATORS.has(operator)) {
          this.error(
            matchType.parameter,
            `:${name} needs one of "gt", "ge", "lt", "le", "eq", "ne" (a constant string)`,
          );
        }
      }
      if (name === "regex" && checked.spec.keyList !== undefined) {
        const keys = Array.isArray(checked.spec.positional)
          ? checked.positional[checked.spec.keyList]
          : checked.positional.at(-1);
        for (const item of keys === undefined ? [] : this.items(keys)) {
          const pattern = this.constant(item);
          if (pattern === null) continue;
          const problem = checkPosixExtendedRegex(pattern);
          if (problem !== null)
            this.error(item, `invalid regular expression '${pattern.slice(0, 80)}': ${problem}`);
        }
      }
    }
    const indexTag = checked.tags.get("index");
    if (indexTag?.parameter?.kind === "number" && indexTag.parameter.value === 0n) {
      this.error(indexTag.parameter, `the :index of ${what} cannot be zero (positions count from 1)`);
    }
    const lastTag = checked.tags.get("last");
    if (
      lastTag !== undefined &&
      indexTag === undefined &&
      checked.spec.tags.some((t) => t.name === "index")
    ) {
      if (checked.spec.name === "deleteheader")
        this.warning(lastTag.tag, `:last without :index has no effect in ${what}`);
      else this.error(lastTag.tag, `:last needs :index in ${what}`);
    }
    if (!checked.tags.has("mime")) {
      for (const name of ["anychild", "type", "subtype", "contenttype", "param"]) {
        const used = checked.tags.get(name);
        if (used !== undefined) this.error(used.tag, `:${name} needs :mime in ${what}`);
      }
    }
    const options = ["type", "subtype", "contenttype", "param"].filter((name) => checked.tags.has(name));
    if (options.length > 1) {
      this.error(
        checked.node,
        `${options.map((name) => `:${name}`).join(" and ")} exclude each other in ${what}`,
      );
    }
  }

  private warnHeaderNames(checked: CheckedNode, index: number): void {
    const argument = checked.positional[index];
    if (argument === undefined) return;
    for (const item of this.items(argument)) {
      const name = this.constant(item);
      if (name !== null && name !== "" && !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
        this.warning(item, `'${name}' is not a valid header field name; it will never match`);
      }
    }
  }
}
