#!/usr/bin/env node
// Makes sure the real peers the tests start are installed: slapd, Postfix,
// Dovecot (imap, lmtp, sieve, managesieve), swaks and Redis from Debian.
// As root it installs what is missing with apt-get; otherwise it names the
// packages and fails, because a real-peer test must never pass by skipping.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const needed = [
  ["slapd", "/usr/sbin/slapd"],
  ["ldap-utils", "/usr/bin/ldapsearch"],
  ["postfix", "/usr/sbin/postfix"],
  ["dovecot-core", "/usr/sbin/dovecot"],
  ["dovecot-imapd", "/usr/lib/dovecot/imap"],
  ["dovecot-lmtpd", "/usr/lib/dovecot/lmtp"],
  ["dovecot-sieve", "/usr/bin/sievec"],
  ["dovecot-managesieved", "/usr/lib/dovecot/managesieve"],
  ["swaks", "/usr/bin/swaks"],
  ["redis-server", "/usr/bin/redis-server"],
  // The Dovecot harness makes throw-away TLS certificates with it.
  ["openssl", "/usr/bin/openssl"],
  // The systemd units in deploy/systemd are checked with systemd-analyze verify.
  ["systemd", "/usr/bin/systemd-analyze"],
];

const missing = needed.filter(([, path]) => !existsSync(path)).map(([pkg]) => pkg);
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot) {
  console.error(`emailng tests need these Debian packages: ${missing.join(" ")}`);
  console.error(`install them with: sudo apt-get install -y ${missing.join(" ")}`);
  process.exit(1);
}

console.error(`installing test peers: ${missing.join(" ")}`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
// Postfix and slapd ask configuration questions; we never use the system
// instances (tests start private ones), so answer "no configuration".
spawnSync("debconf-set-selections", {
  input:
    "postfix postfix/main_mailer_type select No configuration\nslapd slapd/no_configuration boolean true\n",
  env,
  stdio: ["pipe", "inherit", "inherit"],
});
execFileSync("apt-get", ["update", "-qq"], { env, stdio: "inherit" });
execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
  env,
  stdio: "inherit",
});
const stillMissing = needed.filter(([, path]) => !existsSync(path)).map(([pkg]) => pkg);
if (stillMissing.length > 0) {
  console.error(`still missing after apt-get: ${stillMissing.join(" ")}`);
  process.exit(1);
}
