/**
 * `checkScript`: the one entry point for validating a Sieve script — parse,
 * then validate against the capabilities a server offers — returning the
 * diagnostics sorted by position and the syntax tree for the generators and
 * the interpreter. Pure: included scripts come through the injected
 * resolver.
 */
import { type Diagnostic, DiagnosticSink } from "./diagnostics.js";
import { extensionSet } from "./extensions.js";
import { type CommandNode, parseScript } from "./parser.js";
import { type IncludeResolver, Validator } from "./validator.js";

export interface CheckOptions {
  /** Capabilities the server offers; default: Pigeonhole's default set. */
  allowed?: ReadonlySet<string>;
  includes?: IncludeResolver;
  maxScriptBytes?: number;
}

export interface CheckResult {
  diagnostics: Diagnostic[];
  errors: number;
  warnings: number;
  /** The parsed commands (incomplete after a syntax error). */
  commands: CommandNode[];
  valid: boolean;
}

function run(bytes: Uint8Array, options: CheckOptions, depth: number, chain: readonly string[]): CheckResult {
  const sink = new DiagnosticSink();
  const parsed = parseScript(
    bytes,
    sink,
    options.maxScriptBytes === undefined ? {} : { maxScriptBytes: options.maxScriptBytes },
  );
  if (parsed.complete) {
    const validator = new Validator(sink, {
      allowed: options.allowed ?? extensionSet(undefined).allowed,
      ...(options.includes === undefined ? {} : { includes: options.includes }),
      includeDepth: depth,
      includeChain: chain,
      checkIncluded: (included, nextDepth, nextChain) => {
        const result = run(included, options, nextDepth, nextChain);
        const first = result.diagnostics.find((diagnostic) => diagnostic.severity === "error");
        return first === undefined ? null : `${first.line}:${first.column}: ${first.message}`;
      },
    });
    validator.script(parsed.commands);
  }
  const diagnostics = sink.sorted();
  const errors = sink.errorCount;
  return {
    diagnostics,
    errors,
    warnings: diagnostics.filter((diagnostic) => diagnostic.severity === "warning").length,
    commands: parsed.commands,
    valid: errors === 0,
  };
}

export function checkScript(script: Uint8Array | string, options: CheckOptions = {}): CheckResult {
  const bytes = typeof script === "string" ? new TextEncoder().encode(script) : script;
  return run(bytes, options, 0, []);
}
