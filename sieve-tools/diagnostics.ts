/**
 * What the Sieve checker reports: errors (the script would be refused by
 * Pigeonhole's compiler) and warnings (accepted, but probably not what the
 * author meant), each with a 1-based line and column counted in characters.
 */

export type Severity = "error" | "warning";

export interface Position {
  line: number;
  column: number;
}

export interface Diagnostic extends Position {
  severity: Severity;
  message: string;
}

/** Collects diagnostics with a cap, so a hostile script cannot make the report unbounded. */
export class DiagnosticSink {
  readonly items: Diagnostic[] = [];
  private droppedWarnings = 0;
  private droppedErrors = 0;

  constructor(private readonly limit = 200) {}

  error(at: Position, message: string): void {
    this.add("error", at, message);
  }

  warning(at: Position, message: string): void {
    this.add("warning", at, message);
  }

  get errorCount(): number {
    return this.items.filter((item) => item.severity === "error").length + this.droppedErrors;
  }

  private add(severity: Severity, at: Position, message: string): void {
    if (this.items.length >= this.limit) {
      if (severity === "error") this.droppedErrors += 1;
      else this.droppedWarnings += 1;
      return;
    }
    this.items.push({ severity, line: at.line, column: at.column, message });
  }

  /** Diagnostics sorted by position, plus a note when some were left out. */
  sorted(): Diagnostic[] {
    const sorted = [...this.items].sort((a, b) => a.line - b.line || a.column - b.column);
    const dropped = this.droppedErrors + this.droppedWarnings;
    if (dropped > 0) {
      sorted.push({
        severity: this.droppedErrors > 0 ? "error" : "warning",
        line: sorted.at(-1)?.line ?? 1,
        column: 1,
        message: `${dropped} more diagnostic(s) not shown`,
      });
    }
    return sorted;
  }
}

/** `file:line:column: error: message`, the form compilers and editors understand. */
export function formatDiagnostic(file: string, diagnostic: Diagnostic): string {
  return `${file}:${diagnostic.line}:${diagnostic.column}: ${diagnostic.severity}: ${diagnostic.message}`;
}
