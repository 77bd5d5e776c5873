/**
 * `emailng version`: prints the version from package.json. The file is found
 * by walking up from this module, because the same code runs from source
 * (cli/version.ts, one level below the package root) and compiled
 * (dist/cli/version.js, two levels below), and the package is the source of
 * truth for the version number.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import type { CliIo } from "./io.js";

const PACKAGE_NAME = "emailng";

/** The version of the installed emailng package. */
export function packageVersion(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(directory, "package.json");
    if (existsSync(candidate)) {
      const manifest = JSON.parse(readFileSync(candidate, "utf8")) as { name?: unknown; version?: unknown };
      if (manifest.name === PACKAGE_NAME && typeof manifest.version === "string") return manifest.version;
    }
    const parent = dirname(directory);
    if (parent === directory)
      throw new Error(`package.json of ${PACKAGE_NAME} not found above ${import.meta.url}`);
    directory = parent;
  }
}

export function registerVersionCommand(cli: Command, io: CliIo): void {
  cli
    .command("version")
    .description("print the emailng version")
    .action(() => {
      io.out(`${packageVersion()}\n`);
    });
}
