/**
 * The department's mail system on one machine, wired the way deploy/ tells
 * an administrator to wire it:
 *
 *   slapd ─ back-end: emailng sync daemon (full sync every 10 s) + sync serve,
 *           verifyd (socketmap for its Postfix, dict for Dovecot), quotad
 *           (quota_clone feed into Redis), Postfix → LMTP → Dovecot 2.3
 *           (dict passdb/userdb, quota + quota_clone, Sieve, managesieved,
 *           SASL for the relays)
 *   relay1, relay2: Postfix (port 25 and submission with STARTTLS + SASL
 *           against the back-end's Dovecot), emailng sync daemon pulling the
 *           relay view every 3 s, verifyd, quotad and policyd (both on the
 *           shared Redis)
 *   "the Internet": an SMTP sink where mail for other domains arrives.
 *
 * Every emailng program runs in its own process from a fresh build of this
 * tree (dist-e2e/), with the command line a systemd unit uses and one TOML
 * file per host. Postfix's main.cf and the submission entry of master.cf,
 * Dovecot's backend-23.conf and dict-emailng.conf.ext are read from deploy/
 * and only their production paths, host names and ports are replaced
 * (test/harness/deploy-render.ts); what the test adds on top is listed in
 * LOCAL_RELAY_MAIN_CF and LOCAL_BACKEND_MAIN_CF.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deployFile, masterEntry, parseMainCf, substitute } from "../harness/deploy-render.js";
import { type Dovecot, startDovecot } from "../harness/dovecot.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import {
  type CommandResult,
  type Daemon,
  freePort,
  makeTempDir,
  removeTempDir,
  runChecked,
  runCommand,
  startDaemon,
  waitFor,
} from "../harness/process.js";
import { type Redis, startRedis } from "../harness/redis.js";
import { ADMIN_DN, ADMIN_PASSWORD, BASE_DN, type Slapd, startSlapd } from "../harness/slapd.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";
import { generateSelfSignedCertificate, type SelfSignedCertificate } from "../harness/tls.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BUILD_DIR = join(ROOT, "dist-e2e");
const CLI = join(BUILD_DIR, "cli", "main.js");
const KEEP = process.env["EMAILNG_E2E_KEEP"] === "1";

/** Test logins get known passwords ({PLAIN} in LDAP, carried by the snapshot to Dovecot). */
export const PASSWORDS: Readonly<Record<string, string>> = {
  jsmith: "staff-pass-1",
  csd4711: "student-pass-1",
  soikonom: "pg-pass-1",
  ekaragia: "staff-pass-2",
};

/** The relay limit on messages per SASL login per hour ([[policyd.rules]] login-messages). */
export const LOGIN_MESSAGE_LIMIT = 4;

export interface EmailngProcess {
  name: string;
  daemon: Daemon;
}

export interface Host {
  name: string;
  dir: string;
  configPath: string;
  postfix: Postfix;
  processes: EmailngProcess[];
  /** `emailng <args> --config <this host's file>` as a one-shot command. */
  emailng(args: string[]): Promise<CommandResult>;
  /** Looks a key up in this host's verifyd socketmap with postmap -q (Postfix's own client). */
  lookup(map: "recipient" | "alias" | "domain" | "login", key: string): Promise<CommandResult>;
}

export interface Backend extends Host {
  dovecot: Dovecot;
  tls: SelfSignedCertificate;
  /** Files in a user's Maildir (new and cur, INBOX or a folder) whose text contains `token`. */
  countMessages(login: string, token: string, folder?: string): number;
}

export interface Relay extends Host {
  submissionPort: number;
}

export interface Topology {
  dir: string;
  slapd: Slapd;
  redis: Redis;
  sink: SmtpSink;
  backend: Backend;
  relays: [Relay, Relay];
  /** Every log of every process, for failure messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Compiles the tree into dist-e2e/ so the daemons run as they do when installed. */
async function buildEmailng(): Promise<void> {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const result = await runCommand(
    process.execPath,
    [tsc, "-p", "tsconfig.build.json", "--outDir", BUILD_DIR],
    {
      cwd: ROOT,
      timeoutMs: 240_000,
    },
  );
  if (result.code !== 0)
    throw new Error(`tsc build for the e2e test failed:\n${result.stdout}${result.stderr}`);
}

function secretFile(path: string, content: string): string {
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

async function numericId(flag: "-u" | "-g", name: string): Promise<number> {
  return Number((await runChecked("/usr/bin/id", [flag, name])).stdout.trim());
}

function startEmailng(
  host: { dir: string; configPath: string },
  name: string,
  args: string[],
): EmailngProcess {
  const daemon = startDaemon({
    name: `emailng ${name}`,
    file: process.execPath,
    args: [CLI, ...args, "--config", host.configPath],
    logPath: join(host.dir, `${name.replace(/\s+/g, "-")}.log`),
  });
  return { name, daemon };
}

function hostHelpers(dir: string, configPath: string, postfix: Postfix, verifydSocket: string) {
  return {
    emailng: (args: string[]) =>
      runCommand(process.execPath, [CLI, ...args, "--config", configPath], { timeoutMs: 60_000 }),
    lookup: (map: string, key: string) =>
      postfix.postmap(["-q", key, `socketmap:unix:${verifydSocket}:${map}`]),
    dir,
  };
}

/** The TOML every host shares: directory shape, snapshot, Redis. */
function commonToml(dir: string, redis: Redis): string {
  return `[log]
level = "info"

[snapshot]
path = "${dir}/snapshot.sqlite"
# The shortest age the schema allows, so the LDAP outage shows within the test.
max_age = "1m"

[directory]
primary_domain = "cs.example.org"
alias_domains = ["example.org"]
virtual_domains = ["rise.example"]

[sync]
lock_file = "${dir}/sync.lock"

[redis]
url = "${redis.url}"
key_prefix = "emailng-e2e:"
`;
}

function listener(path: string, group: string): string {
  return `unix = "${path}"\nmode = "0660"\ngroup = "${group}"`;
}

/** Waits until a UNIX socket path exists (the daemon is listening). */
async function socketReady(path: string, owner: EmailngProcess): Promise<void> {
  await waitFor(() => existsSync(path), {
    timeoutMs: 30_000,
    what: `${owner.name} to listen on ${path}`,
    logPaths: [owner.daemon.logPath],
    abortIf: () => owner.daemon.exitStatus(),
  });
}

/** The back-end's Postfix: deploy/postfix/backend-main.cf with its paths and the relays' addresses made local. */
function backendMainCf(verifydSocket: string, relayHost: string): Record<string, string> {
  const text = substitute(deployFile("postfix/backend-main.cf"), [
    ["/run/emailng/verifyd.sock", verifydSocket],
    ["relayhost = [relays.cs.example.org]", `relayhost = ${relayHost}`],
  ]);
  return parseMainCf(text);
}

/** What the test adds to relay-main.cf: its own names, TLS files, trusted networks and the Internet route. */
function localRelayMainCf(name: string, tls: SelfSignedCertificate, sink: SmtpSink): Record<string, string> {
  return {
    myhostname: `${name}.test`,
    smtpd_tls_cert_file: tls.certPath,
    smtpd_tls_key_file: tls.keyPath,
    smtpd_tls_security_level: "may",
    // The test's clients connect from 127.0.0.1 and must count as the
    // Internet: nothing local is trusted to relay.
    mynetworks: "192.0.2.0/24",
    // Mail for other domains (forwards) goes to the sink, "the Internet".
    default_transport: `smtp:[127.0.0.1]:${sink.port}`,
    smtp_tls_security_level: "none",
  };
}

function relayMainCf(
  verifydSocket: string,
  backendPort: number,
  saslPort: number,
  local: Record<string, string>,
): Record<string, string> {
  const text = substitute(deployFile("postfix/relay-main.cf"), [
    ["/run/emailng/verifyd.sock", verifydSocket],
    ["relay_transport = relay:backends.cs.example.org", `relay_transport = relay:[127.0.0.1]:${backendPort}`],
    ["smtpd_sasl_path = inet:backend1.cs.example.org:12345", `smtpd_sasl_path = inet:127.0.0.1:${saslPort}`],
  ]);
  return { ...parseMainCf(text), ...local };
}

/** The submission entry of deploy/postfix/relay-master.cf, on a loopback port. */
function submissionEntry(port: number): string {
  return substitute(masterEntry(deployFile("postfix/relay-master.cf"), "submission", "inet"), [
    ["submission inet n", `127.0.0.1:${port} inet n`],
  ]);
}

/** LDAP changes the test makes before the first sync: known passwords for its logins, a keep-copy forward. */
async function setPasswords(slapd: Slapd): Promise<void> {
  const ldif = Object.entries(PASSWORDS)
    .map(
      ([login, password]) =>
        `dn: uid=${login},ou=people,${BASE_DN}\nchangetype: modify\nreplace: userPassword\nuserPassword: {PLAIN}${password}\n`,
    )
    .join("\n");
  // A forward that keeps a copy: the primary address listed among the targets.
  const keepCopy = `dn: uid=mnikolai,ou=people,${BASE_DN}\nchangetype: modify\nreplace: mailForwardingAddress\nmailForwardingAddress: mnikolai@cs.example.org\nmailForwardingAddress: maria@outside.example\n`;
  const path = join(slapd.dir, "e2e-changes.ldif");
  writeFileSync(path, `${ldif}\n${keepCopy}`);
  await runChecked(
    "/usr/bin/ldapmodify",
    ["-H", slapd.url, "-x", "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f", path],
    {
      timeoutMs: 20_000,
    },
  );
}

export async function startTopology(): Promise<Topology> {
  const dir = makeTempDir("e2e");
  chmodSync(dir, 0o755);
  const started: { stop(): Promise<void> }[] = [];
  const logs: string[] = [];
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const item of started.reverse()) {
      try {
        await item.stop();
      } catch (error) {
        errors.push(error);
      }
    }
    if (!KEEP) removeTempDir(dir);
    else process.stderr.write(`e2e: kept ${dir}\n`);
    if (errors.length > 0) throw new AggregateError(errors, "stopping the e2e topology");
  };
  const track = (process: EmailngProcess): EmailngProcess => {
    started.push({ stop: () => process.daemon.stop() });
    logs.push(process.daemon.logPath);
    return process;
  };

  try {
    await buildEmailng();
    const nobodyUid = await numericId("-u", "nobody");
    const nobodyGid = await numericId("-g", "nobody");

    // --- shared peers ---
    const slapd = await startSlapd();
    started.push({ stop: () => (KEEP ? slapd.stop() : slapd.destroy()) });
    logs.push(slapd.logPath);
    await setPasswords(slapd);
    const redis = await startRedis();
    started.push({ stop: () => (KEEP ? redis.stop() : redis.destroy()) });
    const sink = await startSmtpSink();
    started.push({ stop: () => sink.close() });

    // --- the back-end ---
    const backendDir = join(dir, "backend");
    mkdirSync(backendDir, { mode: 0o755 });
    chmodSync(backendDir, 0o755);
    const backendVerifydSocket = join(backendDir, "verifyd.sock");
    const backendPostfix = await startPostfix({
      mainCf: {
        // Outgoing mail of the back-end (Sieve redirects, bounces) would go
        // to the relays; no scenario sends any, so it goes to the sink.
        ...backendMainCf(backendVerifydSocket, `[127.0.0.1]:${sink.port}`),
        myhostname: "backend.test",
      },
    });
    started.push({ stop: () => (KEEP ? backendPostfix.stop() : backendPostfix.destroy()) });
    logs.push(backendPostfix.logPath);

    const tls = await generateSelfSignedCertificate(backendDir, "backend.test");
    const saslPort = await freePort();
    const syncPort = await freePort();
    const dictExtPath = join(backendDir, "dict-emailng.conf.ext");
    writeFileSync(
      dictExtPath,
      substitute(deployFile("dovecot/dict-emailng.conf.ext"), [
        ["/run/emailng/verifyd-dict.sock", join(backendDir, "verifyd-dict.sock")],
      ]),
    );
    const dovecotConf = substitute(deployFile("dovecot/backend-23.conf"), [
      ["/etc/dovecot/dict-emailng.conf.ext", dictExtPath],
      ["/run/emailng/quotad-dict.sock", join(backendDir, "quotad-dict.sock")],
      ["/var/spool/postfix/private/dovecot-lmtp", join(backendPostfix.queueDir, "private", "dovecot-lmtp")],
      ["port = 12345", `port = ${saslPort}`],
    ]);
    const dovecot = await startDovecot({
      protocols: ["imap", "lmtp", "sieve"],
      auth: dovecotConf,
      tls,
    });
    started.push({ stop: () => (KEEP ? dovecot.stop() : dovecot.destroy()) });
    logs.push(dovecot.logPath);

    const backendConfig = join(backendDir, "emailng.toml");
    const syncToken = secretFile(join(dir, "sync-token"), "e2e-sync-token-5d2a\n");
    const ldapPassword = secretFile(join(backendDir, "ldap-password"), `${ADMIN_PASSWORD}\n`);
    const sieveCredentials = secretFile(
      join(backendDir, "sieve-credentials"),
      `soikonom\n${PASSWORDS["soikonom"]}\n`,
    );
    writeFileSync(
      backendConfig,
      `${commonToml(backendDir, redis)}
[ldap]
urls = ["${slapd.url}"]
starttls = false
# The sync account must read userPassword: the internal snapshot carries
# the hashes Dovecot checks logins against.
bind_dn = "${ADMIN_DN}"
bind_password_file = "${ldapPassword}"
base_dn = "${BASE_DN}"

[ldap.users]
# The sample directory's homeDirectory and uidNumber are Unix accounts,
# not mail storage: mail homes come from [verifyd.dovecot].
home = ""
uid_number = ""
gid_number = ""

[sync.serve]
listen = "127.0.0.1:${syncPort}"
token_file = "${syncToken}"

[sync.schedule]
full = "*/10 * * * * *"
incremental = ""
pull = ""
cleanup = ""

[verifyd]
[[verifyd.listen]]
${listener(backendVerifydSocket, "postfix")}

[verifyd.dovecot]
uid = ${nobodyUid}
gid = ${nobodyGid}
home = "${dovecot.mailDir}/%d/%n"
mail_location = "maildir:~/Maildir"
[[verifyd.dovecot.listen]]
${listener(join(backendDir, "verifyd-dict.sock"), "dovecot")}

[quotad]
# Only the quota_clone feed here: the relays answer Postfix.
listen = []
[quotad.usage]
backend = "redis"
[quotad.feed]
dict_name = "quotaclone"
[[quotad.feed.listen]]
${listener(join(backendDir, "quotad-dict.sock"), "nogroup")}

[sieve.managesieve]
host = "127.0.0.1"
port = ${dovecot.ports.sieve}
starttls = true
ca_file = "${tls.certPath}"
tls_server_name = "backend.test"
credentials_file = "${sieveCredentials}"
timeout = "20s"
`,
    );
    const backendHelpers = hostHelpers(backendDir, backendConfig, backendPostfix, backendVerifydSocket);
    // The first publish before any daemon starts, as the operations guide says.
    const firstSync = await backendHelpers.emailng(["sync", "run"]);
    if (firstSync.code !== 0) throw new Error(`first sync failed:\n${firstSync.stdout}${firstSync.stderr}`);
    const backendHost = { dir: backendDir, configPath: backendConfig };
    const backendProcesses = [
      track(startEmailng(backendHost, "sync daemon", ["sync", "daemon"])),
      track(startEmailng(backendHost, "sync serve", ["sync", "serve"])),
      track(startEmailng(backendHost, "verifyd", ["verifyd"])),
      track(startEmailng(backendHost, "quotad", ["quotad"])),
    ];
    await socketReady(backendVerifydSocket, backendProcesses[2] as EmailngProcess);
    await socketReady(join(backendDir, "quotad-dict.sock"), backendProcesses[3] as EmailngProcess);

    const backend: Backend = {
      name: "backend",
      dir: backendDir,
      configPath: backendConfig,
      postfix: backendPostfix,
      dovecot,
      tls,
      processes: backendProcesses,
      emailng: backendHelpers.emailng,
      lookup: backendHelpers.lookup,
      countMessages(login, token, folder) {
        const maildir = join(
          dovecot.mailDir,
          "cs.example.org",
          login,
          "Maildir",
          folder === undefined ? "" : `.${folder}`,
        );
        let count = 0;
        for (const sub of ["new", "cur"]) {
          const path = join(maildir, sub);
          if (!existsSync(path)) continue;
          for (const file of readdirSync(path)) {
            if (readFileSync(join(path, file), "latin1").includes(token)) count += 1;
          }
        }
        return count;
      },
    };

    // --- two relays ---
    const relays: Relay[] = [];
    for (const name of ["relay1", "relay2"]) {
      const relayDir = join(dir, name);
      mkdirSync(relayDir, { mode: 0o755 });
      chmodSync(relayDir, 0o755);
      const verifydSocket = join(relayDir, "verifyd.sock");
      const submissionPort = await freePort();
      const relayTls = await generateSelfSignedCertificate(relayDir, `${name}.test`);
      const postfix = await startPostfix({
        mainCf: relayMainCf(
          verifydSocket,
          backendPostfix.port,
          saslPort,
          localRelayMainCf(name, relayTls, sink),
        ),
        masterCfExtra: submissionEntry(submissionPort),
      });
      started.push({ stop: () => (KEEP ? postfix.stop() : postfix.destroy()) });
      logs.push(postfix.logPath);

      const configPath = join(relayDir, "emailng.toml");
      const private_ = join(postfix.queueDir, "private");
      writeFileSync(
        configPath,
        `${commonToml(relayDir, redis)}
[sync.pull]
from = "http://127.0.0.1:${syncPort}/snapshot"
token_file = "${syncToken}"
timeout = "10s"

[sync.schedule]
full = ""
incremental = ""
pull = "*/3 * * * * *"
cleanup = ""

[verifyd]
[[verifyd.listen]]
${listener(verifydSocket, "postfix")}

[quotad]
[[quotad.listen]]
${listener(join(private_, "emailng-quotad"), "postfix")}
[quotad.usage]
backend = "redis"

[policyd]
admin_socket = "${relayDir}/policyd-admin.sock"
[[policyd.listen]]
${listener(join(private_, "emailng-policyd"), "postfix")}
[policyd.store]
backend = "redis"
[[policyd.classes]]
name = "staff"
groups = ["csstaff", "csfaculty"]
[[policyd.rules]]
name = "login-messages"
key = "sasl_login"
metric = "messages"
[[policyd.rules.windows]]
period = "1h"
limit = ${LOGIN_MESSAGE_LIMIT}
[policyd.greylist]
enabled = false
[policyd.protected_lists]
from_directory = true
[policyd.burst]
enabled = false
`,
      );
      const helpers = hostHelpers(relayDir, configPath, postfix, verifydSocket);
      const host = { dir: relayDir, configPath };
      const firstPull = await helpers.emailng(["sync", "pull"]);
      if (firstPull.code !== 0)
        throw new Error(`${name}: first pull failed:\n${firstPull.stdout}${firstPull.stderr}`);
      const processes = [
        track(startEmailng(host, "sync daemon", ["sync", "daemon"])),
        track(startEmailng(host, "verifyd", ["verifyd"])),
        track(startEmailng(host, "quotad", ["quotad"])),
        track(startEmailng(host, "policyd", ["policyd"])),
      ];
      await socketReady(verifydSocket, processes[1] as EmailngProcess);
      await socketReady(join(private_, "emailng-quotad"), processes[2] as EmailngProcess);
      await socketReady(join(private_, "emailng-policyd"), processes[3] as EmailngProcess);
      relays.push({
        name,
        dir: relayDir,
        configPath,
        postfix,
        processes,
        submissionPort,
        emailng: helpers.emailng,
        lookup: helpers.lookup,
      });
    }

    return {
      dir,
      slapd,
      redis,
      sink,
      backend,
      relays: relays as [Relay, Relay],
      logTail(lines = 40) {
        return logs
          .map((path) => {
            const text = existsSync(path)
              ? readFileSync(path, "utf8").split("\n").slice(-lines).join("\n")
              : "";
            return `--- ${path}\n${text}`;
          })
          .join("\n");
      },
      stop: stopAll,
    };
  } catch (error) {
    const tails = logs
      .map(
        (path) =>
          `--- ${path}\n${existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-30).join("\n") : ""}`,
      )
      .join("\n");
    await stopAll().catch(() => undefined);
    throw new Error(`the e2e topology did not start: ${(error as Error).message}\n${tails}`, {
      cause: error,
    });
  }
}
