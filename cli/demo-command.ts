/**
 * `emailng demo`: the README's first command. Brings up what exists on the
 * embedded default, from the sample directory in deploy/ldap with no LDAP
 * server, and shows it answering. Today that is the directory core: the
 * sample is converted with the default attribute mapping, written as a
 * versioned SQLite snapshot, loaded back and asked about a few addresses;
 * then verifyd is started on a UNIX socket and asked the same addresses over
 * the Postfix socketmap protocol and Dovecot's dict protocol (userdb);
 * then quotad and policyd answer policy requests (demo-daemons.ts). It
 * exits when it has shown everything; Ctrl-C before that stops every
 * daemon cleanly too.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DeepReadonly } from "../core/config/load.js";
import { parseConfigText } from "../core/config/load.js";
import type { Config } from "../core/config/schema.js";
import { describeResolution } from "../core/directory/describe.js";
import type { DomainSet } from "../core/directory/model.js";
import { Resolver } from "../core/directory/resolver.js";
import { readSnapshot, writeSnapshot } from "../core/directory/snapshot-store.js";
import { directoryFromLdif } from "../core/ldap/ldif.js";
import { defaultMapping } from "../core/ldap/mapping.js";
import { createLogger } from "../core/log/logger.js";
import { exchangeOnce } from "../core/net/one-shot.js";
import { openSocketmapClient } from "../core/net/socketmap-client.js";
import { encodeDictCommand, encodeDictHello } from "../core/protocols/dict-commands.js";
import { DictReplyDecoder } from "../core/protocols/dict-replies.js";
import type { SocketmapReply } from "../core/protocols/socketmap.js";
import { startVerifyd } from "../verifyd/program.js";
import { demoDaemonsConfig, describeDictReply, showPolicyDaemons } from "./demo-daemons.js";
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

function demoConfig(workDir: string, snapshotPath: string): DeepReadonly<Config> {
  const result = parseConfigText(
    [
      "[log]",
      'level = "fatal"',
      "[snapshot]",
      `path = "${snapshotPath}"`,
      "[directory]",
      `primary_domain = "${SAMPLE_DOMAINS.primary}"`,
      `alias_domains = ${JSON.stringify(SAMPLE_DOMAINS.aliasDomains)}`,
      `virtual_domains = ${JSON.stringify(SAMPLE_DOMAINS.virtualDomains)}`,
      "[[verifyd.listen]]",
      `unix = "${join(workDir, "verifyd.sock")}"`,
      "[[verifyd.dovecot.listen]]",
      `unix = "${join(workDir, "verifyd-dict.sock")}"`,
      demoDaemonsConfig(workDir),
      "",
    ].join("\n"),
  );
  if (!result.ok) throw new Error(`demo configuration: ${JSON.stringify(result.errors)}`);
  return result.config;
}

function showReply(reply: SocketmapReply): string {
  return reply.status === "OK" ? `OK ${reply.data}` : reply.status;
}

export async function runDemo(io: CliIo): Promise<void> {
  const ldifPath = sampleLdifPath();
  const { directory, problems } = directoryFromLdif(
    readFileSync(ldifPath, "utf8"),
    defaultMapping(SAMPLE_BASE_DN),
    SAMPLE_DOMAINS,
  );
  const workDir = mkdtempSync(join(tmpdir(), "emailng-demo-"));
  // Ctrl-C while the daemons run: nothing of theirs outlives the process but
  // the temporary directory (snapshot, sockets, stores), so remove it and go.
  const interrupted = () => {
    io.err("\ninterrupted; stopping the demo daemons\n");
    rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
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

    const config = demoConfig(workDir, snapshotPath);
    const socketPath = join(workDir, "verifyd.sock");
    const verifyd = await startVerifyd(config, createLogger({ program: "verifyd", level: "fatal" }), {
      processMetrics: false,
    });
    try {
      const client = await openSocketmapClient({ path: socketPath });
      try {
        io.out(`\nverifyd answering Postfix socketmap lookups on ${socketPath}:\n`);
        for (const address of DEMO_ADDRESSES) {
          const recipient = await client.lookup("recipient", address);
          const alias = await client.lookup("alias", address);
          io.out(
            `  ${address.padEnd(width)}  recipient: ${showReply(recipient).padEnd(9)} alias: ${showReply(alias)}\n`,
          );
        }
      } finally {
        client.close();
      }
      const dictSocket = join(workDir, "verifyd-dict.sock");
      const hello = encodeDictHello({
        version: { major: 3, minor: 2 },
        valueType: 0,
        user: "",
        dictName: "auth",
      });
      const lookup = encodeDictCommand({ kind: "lookup", key: "shared/userdb/gpapadop", user: "gpapadop" });
      const userdb = await exchangeOnce(
        { path: dictSocket },
        new TextEncoder().encode(hello + lookup),
        new DictReplyDecoder(),
        5_000,
      );
      io.out(`\nverifyd as Dovecot's userdb on ${dictSocket}:\n`);
      io.out(
        `  userdb/gpapadop  →  ${userdb.ok ? describeDictReply(userdb.reply) : `no answer (${userdb.message})`}\n`,
      );
      await showPolicyDaemons(config, workDir, io);
    } finally {
      await verifyd.close();
    }
    io.out(
      "\nmain.cf on a relay (deploy/postfix/relay-main.cf has the whole of it):\n" +
        "  relay_recipient_maps = socketmap:unix:/run/emailng/verifyd.sock:recipient\n" +
        "  virtual_alias_maps   = socketmap:unix:/run/emailng/verifyd.sock:alias\n" +
        "  smtpd_recipient_restrictions = ..., check_policy_service unix:private/emailng-quotad,\n" +
        "                                      check_policy_service unix:private/emailng-policyd\n" +
        "  smtpd_end_of_data_restrictions = check_policy_service unix:private/emailng-quotad,\n" +
        "                                   check_policy_service unix:private/emailng-policyd\n",
    );
  } finally {
    process.off("SIGINT", interrupted);
    rmSync(workDir, { recursive: true, force: true });
  }
}
