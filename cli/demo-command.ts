/**
 * `emailng demo`: the README's first command. Brings up what exists on the
 * embedded default, from the sample directory in deploy/ldap with no LDAP
 * server, and shows it answering. Today that is the directory core: the
 * sample is converted with the default attribute mapping, written as a
 * versioned SQLite snapshot, loaded back and asked about a few addresses.
 * The daemons (verifyd, policyd, quotad) join here as their issues land.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { describeResolution } from "../core/directory/describe.js";
import type { DomainSet } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { readSnapshot, writeSnapshot } from "../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../core/ldap/ldif.js";
import { defaultMapping } from "../core/ldap/mapping.js";
import type { CliIo } from "./io.js";

/** The sample directory's suffix and domains (deploy/ldap/README.md). */
const SAMPLE_BASE_DN = "dc=cs,dc=example,dc=org";
const SAMPLE_DOMAINS: DomainSet = {
  primary: "cs.example.org",
  aliasDomains: ["example.org"],
  virtualDomains: ["rise.example"],
};

const DEMO_ADDRESSES = [
  "george.papadopoulos@cs.example.org",
  "papadopoulos.georgios@example.org",
  "gpapadop+lists@cs.example.org",
  "dvlachos@cs.example.org",
  "csd4713@cs.example.org",
  "everyone@cs.example.org",
  "team@rise.example",
  "jsmith@rise.example",
  "nobody@cs.example.org",
  "someone@gmail.example",
];

/** deploy/ldap/sample-directory.ldif, from the source tree or from dist/. */
function sampleLdifPath(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const candidate of [join(here, "../deploy/ldap"), join(here, "../../deploy/ldap")]) {
    try {
      readFileSync(join(candidate, "sample-directory.ldif"));
      return join(candidate, "sample-directory.ldif");
    } catch {}
  }
  throw new Error("deploy/ldap/sample-directory.ldif not found beside the emailng package");
}

export function runDemo(io: CliIo): void {
  const ldifPath = sampleLdifPath();
  const { directory, problems } = directoryFromLdif(
    readFileSync(ldifPath, "utf8"),
    defaultMapping(SAMPLE_BASE_DN),
    SAMPLE_DOMAINS,
  );
  const workDir = mkdtempSync(join(tmpdir(), "emailng-demo-"));
  try {
    const snapshotPath = join(workDir, "snapshot.sqlite");
    writeSnapshot(snapshotPath, directory, {
      version: 1,
      view: "internal",
      sources: [
        { name: "sample LDIF", users: directory.users.length, groups: directory.groups.length, skipped: 0 },
      ],
    });
    const snapshot = readSnapshot(snapshotPath);
    const resolver = new Resolver(snapshot.directory);
    io.out(`emailng demo — embedded default from ${ldifPath}\n`);
    io.out(
      `snapshot v${snapshot.meta.version} ${snapshot.meta.contentHash.slice(0, 19)}…: ` +
        `${snapshot.directory.users.length} users, ${snapshot.directory.groups.length} groups` +
        (problems.length > 0 ? `, ${problems.length} problems` : "") +
        "\n\n",
    );
    const width = Math.max(...DEMO_ADDRESSES.map((address) => address.length));
    for (const address of DEMO_ADDRESSES) {
      io.out(`  ${address.padEnd(width)}  →  ${describeResolution(resolver.resolve(address))}\n`);
    }
    io.out(
      "\nNot there yet: verifyd (socketmap + dict), policyd and quotad will be started here, with the\n" +
        "main.cf lines to use them, as they land.\n",
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

export function registerDemoCommand(cli: Command, io: CliIo): void {
  cli
    .command("demo")
    .description(
      "bring up what exists on the embedded default (sample directory, no LDAP) and show it answering",
    )
    .action(() => runDemo(io));
}
