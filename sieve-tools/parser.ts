/**
 * The Sieve parser (RFC 5228 section 8.2): tokens to a syntax tree of
 * commands, tests and arguments, with the position of each. It knows the
 * grammar only; what a command means is the validator's business. Nesting
 * is bounded like Pigeonhole's (blocks and tests at most 31 deep), so a
 * hostile script cannot exhaust the stack, and parsing stops at the first
 * syntax error (later messages would only be noise).
 */

import type { DiagnosticSink, Position } from "./diagnostics.js";
import { DEFAULT_MAX_SCRIPT_BYTES, decodeScript, Lexer, type Token } from "./lexer.js";

/** Pigeonhole refuses a 32nd level of blocks and of tests. */
export const MAX_BLOCK_DEPTH = 31;
export const MAX_TEST_DEPTH = 31;

export interface StringArgument extends Position {
  kind: "string";
  value: string;
  multiline: boolean;
  /** Set by the validator: the value after encoded-character decoding, and whether it references variables. */
  decoded?: string;
  hasVariables?: boolean;
}

export interface StringListArgument extends Position {
  kind: "string-list";
  items: StringArgument[];
}

export interface NumberArgument extends Position {
  kind: "number";
  value: bigint;
}

export interface TagArgument extends Position {
  kind: "tag";
  /** Lower-cased, without ':'. */
  name: string;
  /** As written, for messages. */
  written: string;
}

export type Argument = StringArgument | StringListArgument | NumberArgument | TagArgument;

export interface TestNode extends Position {
  /** Lower-cased identifier. */
  name: string;
  arguments: Argument[];
  tests: TestNode[];
  /** True when the sub-tests were written as a parenthesised test list. */
  testList: boolean;
}

export interface CommandNode extends TestNode {
  /** null when the command ended with ';'. */
  block: CommandNode[] | null;
}

export interface ParsedScript {
  commands: CommandNode[];
  /** False when a syntax error stopped the parse (commands then holds what came before). */
  complete: boolean;
}

export interface ParseOptions {
  maxScriptBytes?: number;
}

function describe(token: Token): string {
  switch (token.kind) {
    case "eof":
      return "the end of the script";
    case "identifier":
      return `identifier '${token.text}'`;
    case "tag":
      return `tag ':${token.text}'`;
    case "number":
      return "a number";
    case "string":
      return "a string";
    default:
      return `'${token.kind}'`;
  }
}

class Parser {
  private current: Token;
  failed = false;

  constructor(
    private readonly lexer: Lexer,
    private readonly sink: DiagnosticSink,
  ) {
    this.current = lexer.next();
  }

  private take(): Token {
    const token = this.current;
    this.current = this.lexer.next();
    return token;
  }

  private fail(at: Position, message: string): void {
    if (this.failed || this.lexer.failed) {
      this.failed = true;
      return;
    }
    this.sink.error(at, message);
    this.failed = true;
  }

  private get stopped(): boolean {
    return this.failed || this.lexer.failed;
  }

  /** commands until `}` (inside a block) or the end of the script. */
  commands(depth: number): CommandNode[] {
    const list: CommandNode[] = [];
    while (!this.stopped) {
      const token = this.current;
      if (token.kind === "eof" || (token.kind === "}" && depth > 0)) break;
      if (token.kind !== "identifier") {
        this.fail(token, `expected a command name, but found ${describe(token)}`);
        break;
      }
      const command = this.command(depth);
      if (command === null) break;
      list.push(command);
    }
    return list;
  }

  private command(depth: number): CommandNode | null {
    const name = this.take();
    const node: CommandNode = {
      name: name.text.toLowerCase(),
      line: name.line,
      column: name.column,
      arguments: [],
      tests: [],
      testList: false,
      block: null,
    };
    if (!this.arguments(node, 0)) return null;
    const end = this.current;
    if (end.kind === ";") {
      this.take();
      return node;
    }
    if (end.kind === "{") {
      if (depth + 1 > MAX_BLOCK_DEPTH) {
        this.fail(end, `blocks are nested too deeply (at most ${MAX_BLOCK_DEPTH} levels)`);
        return null;
      }
      this.take();
      node.block = this.commands(depth + 1);
      if (this.stopped) return null;
      const close = this.current;
      if (close.kind !== "}") {
        this.fail(
          close,
          `expected '}' to end the block opened at ${end.line}:${end.column}, but found ${describe(close)}`,
        );
        return null;
      }
      this.take();
      return node;
    }
    this.fail(end, `expected ';' or '{' after the ${node.name} command, but found ${describe(end)}`);
    return null;
  }

  /** arguments = *argument [ test / test-list ] */
  private arguments(node: TestNode, testDepth: number): boolean {
    for (;;) {
      const token = this.current;
      switch (token.kind) {
        case "string":
          this.take();
          node.arguments.push(this.stringArgument(token));
          continue;
        case "number":
          this.take();
          node.arguments.push({
            kind: "number",
            value: token.number ?? 0n,
            line: token.line,
            column: token.column,
          });
          continue;
        case "tag":
          this.take();
          node.arguments.push({
            kind: "tag",
            name: token.text.toLowerCase(),
            written: token.text,
            line: token.line,
            column: token.column,
          });
          continue;
        case "[": {
          const list = this.stringList();
          if (list === null) return false;
          node.arguments.push(list);
          continue;
        }
        case "identifier": {
          const test = this.test(testDepth + 1);
          if (test === null) return false;
          node.tests.push(test);
          return true;
        }
        case "(":
          return this.testList(node, testDepth);
        default:
          return !this.stopped;
      }
    }
  }

  private stringArgument(token: Token): StringArgument {
    return {
      kind: "string",
      value: token.text,
      multiline: token.multiline === true,
      line: token.line,
      column: token.column,
    };
  }

  private stringList(): StringListArgument | null {
    const open = this.take();
    const items: StringArgument[] = [];
    for (;;) {
      const item = this.current;
      if (item.kind !== "string") {
        this.fail(
          item,
          `expected a string ${items.length === 0 ? "after '['" : "after ','"} in the string list, but found ${describe(item)}`,
        );
        return null;
      }
      this.take();
      items.push(this.stringArgument(item));
      const separator = this.current;
      if (separator.kind === "]") {
        this.take();
        return { kind: "string-list", items, line: open.line, column: open.column };
      }
      if (separator.kind !== ",") {
        this.fail(separator, `expected ',' or ']' in the string list, but found ${describe(separator)}`);
        return null;
      }
      this.take();
    }
  }

  private test(depth: number): TestNode | null {
    const name = this.current;
    if (depth > MAX_TEST_DEPTH) {
      this.fail(name, `tests are nested too deeply (at most ${MAX_TEST_DEPTH} levels)`);
      return null;
    }
    this.take();
    const node: TestNode = {
      name: name.text.toLowerCase(),
      line: name.line,
      column: name.column,
      arguments: [],
      tests: [],
      testList: false,
    };
    return this.arguments(node, depth) ? node : null;
  }

  private testList(node: TestNode, depth: number): boolean {
    node.testList = true;
    this.take();
    for (;;) {
      const token = this.current;
      if (token.kind !== "identifier") {
        this.fail(
          token,
          `expected a test name ${node.tests.length === 0 ? "after '('" : "after ','"}, but found ${describe(token)}`,
        );
        return false;
      }
      const test = this.test(depth + 1);
      if (test === null) return false;
      node.tests.push(test);
      const separator = this.current;
      if (separator.kind === ")") {
        this.take();
        return true;
      }
      if (separator.kind !== ",") {
        this.fail(separator, `expected ',' or ')' in the test list, but found ${describe(separator)}`);
        return false;
      }
      this.take();
    }
  }

  script(): CommandNode[] {
    const commands = this.commands(0);
    if (!this.stopped && this.current.kind !== "eof") {
      this.fail(this.current, `unexpected ${describe(this.current)} (no block is open)`);
    }
    return commands;
  }
}

/** Parses script bytes; all problems go to `sink`. */
export function parseScript(
  bytes: Uint8Array,
  sink: DiagnosticSink,
  options: ParseOptions = {},
): ParsedScript {
  const limit = options.maxScriptBytes ?? DEFAULT_MAX_SCRIPT_BYTES;
  if (bytes.length > limit) {
    sink.error(
      { line: 1, column: 1 },
      `the script is too large: ${bytes.length} bytes (the maximum is ${limit})`,
    );
    return { commands: [], complete: false };
  }
  const text = decodeScript(bytes, sink);
  const lexer = new Lexer(text, sink);
  const parser = new Parser(lexer, sink);
  const commands = parser.script();
  return { commands, complete: !parser.failed && !lexer.failed };
}
