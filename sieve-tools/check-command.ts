/**
 * `emailng sieve check FILE…`: reads each script, checks it with the
 * capabilities the server offers, and prints compiler-style diagnostics
 * (file:line:column: error: message), or JSON with --json. Included scripts
 * are looked up in the configured personal and global directories.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { checkScript } from "./check.js";
import { type Diagnostic, formatDiagnostic } from "./diagnostics.js";
import type { IncludeResolver } from "./validator.js";

export interface CheckFilesOptions {
  files: readonly string[];
  allowed: ReadonlySet<string>;
  includeDir: string;
  globalDir: string;
  maxScriptBytes: number;
  json: boolean;
  out(text: string): void;
}

export interface FileReport {
  file: string;
  valid: boolean;
  errors: number;
  warnings: number;
  diagnostics: Diagnostic[];
}

/** Reads `<dir>/<name>.sieve`; null when missing, unreadable or far too large to be a script. */
export function includeResolver(
  includeDir: string,
  globalDir: string,
  maxBytes: number,
): IncludeResolver | undefined {
  if (includeDir === "" && globalDir === "") return undefined;
  return {
    read(location, name) {
      const dir = location === "global" ? globalDir : includeDir;
      if (dir === "") return null;
      const path = join(dir, `${name}.sieve`);
      try {
        if (statSync(path).size > maxBytes * 2) return null;
        return readFileSync(path);
      } catch {
        return null;
      }
    },
  };
}

/** Reads a script file with a size bound; a read failure becomes one error diagnostic. */
export function readScriptFile(file: string, maxBytes: number): Uint8Array | Diagnostic {
  try {
    const size = statSync(file).size;
    if (size > maxBytes) {
      return {
        severity: "error",
        line: 1,
        column: 1,
        message: `the script is too large: ${size} bytes (the maximum is ${maxBytes})`,
      };
    }
    return readFileSync(file);
  } catch (error) {
    return {
      severity: "error",
      line: 1,
      column: 1,
      message: `cannot read the file: ${(error as Error).message}`,
    };
  }
}

/** Checks every file; returns the reports (the caller turns them into an exit status). */
export function checkFiles(options: CheckFilesOptions): FileReport[] {
  const includes = includeResolver(options.includeDir, options.globalDir, options.maxScriptBytes);
  const reports: FileReport[] = [];
  for (const file of options.files) {
    const bytes = readScriptFile(file, options.maxScriptBytes);
    let report: FileReport;
    if (!(bytes instanceof Uint8Array)) {
      report = { file, valid: false, errors: 1, warnings: 0, diagnostics: [bytes] };
    } else {
      const result = checkScript(bytes, {
        allowed: options.allowed,
        maxScriptBytes: options.maxScriptBytes,
        ...(includes === undefined ? {} : { includes }),
      });
      report = {
        file,
        valid: result.valid,
        errors: result.errors,
        warnings: result.warnings,
        diagnostics: result.diagnostics,
      };
    }
    reports.push(report);
    if (!options.json) {
      for (const diagnostic of report.diagnostics) options.out(`${formatDiagnostic(file, diagnostic)}\n`);
      options.out(
        `${file}: ${report.valid ? "valid" : "invalid"} (${report.errors} error(s), ${report.warnings} warning(s))\n`,
      );
    }
  }
  if (options.json) options.out(`${JSON.stringify(reports, null, 2)}\n`);
  return reports;
}
