/**
 * The shapes in which commands and tests are declared for the validator:
 * their extension, tagged arguments (each in a slot: two tags in one slot
 * conflict), positional argument types, block and sub-test rules, and an
 * optional check of the values. The declarations themselves are in
 * command-specs.ts; the validator reads only these types.
 */
import type { Position } from "./diagnostics.js";
import type {
  Argument,
  CommandNode,
  NumberArgument,
  StringArgument,
  TagArgument,
  TestNode,
} from "./parser.js";

export type ArgumentType = "string" | "string-list" | "number";

export interface TagSpec {
  /** Lower-case name without ':'. */
  name: string;
  /** Only recognised when this extension is enabled (null: always). */
  extension: string | null;
  /** Tags sharing a slot conflict; the slot name appears in the message. */
  slot: string;
  parameter?: ArgumentType;
}

export interface UsedTag {
  tag: TagArgument;
  spec: TagSpec;
  parameter: Argument | null;
}

/** A node whose tags and positional arguments have been sorted out. */
export interface CheckedNode {
  node: TestNode | CommandNode;
  spec: CommandSpec;
  /** By tag name. */
  tags: Map<string, UsedTag>;
  /** By slot. */
  slots: Map<string, UsedTag>;
  positional: Argument[];
}

export interface ValidationContext {
  enabled(extension: string): boolean;
  error(at: Position, message: string): void;
  warning(at: Position, message: string): void;
  /** The string after encoded-character decoding, or null when it holds variable references. */
  constant(argument: StringArgument): string | null;
  /** A string argument or the items of a string list. */
  items(argument: Argument): StringArgument[];
  /** Checks a name that a command assigns to (set, extracttext, setflag's variable). */
  assignable(argument: StringArgument, what: string): void;
  /** Names of the enclosing foreverypart loops, innermost last ("" for unnamed). */
  loops: readonly string[];
  /** Declares a global variable (include's `global`). */
  declareGlobal(argument: StringArgument): void;
  /** Whether an included script exists (undefined when no directory is configured). */
  includeExists?(location: "personal" | "global", name: string): boolean | undefined;
  /** Validates an included script (cycle- and depth-bounded); returns its errors. */
  checkIncluded?(location: "personal" | "global", name: string, at: Position): void;
}

export interface CommandSpec {
  name: string;
  kind: "command" | "test";
  /** Extensions any one of which makes it available (empty: core). */
  extensions: readonly string[];
  tags: readonly TagSpec[];
  /** Types in order, or a count range when check() sorts the types out itself. */
  positional: readonly ArgumentType[] | { min: number; max: number };
  /** How many of the last positional arguments may be left out. */
  optionalPositional?: number;
  /** Commands: whether a block must follow. */
  block?: "required" | "forbidden";
  subtests?: "none" | "one" | "list";
  /** Index of the key list among the positional arguments, for match-type checks. */
  keyList?: number;
  /** Header names among the positional arguments that should be valid field names. */
  headerNames?: number;
  check?(node: CheckedNode, context: ValidationContext): void;
}

export type { NumberArgument, StringArgument };
