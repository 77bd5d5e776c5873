/**
 * NAME
 *   doctor — checks that emailng on this host is installed and wired the
 *   way Postfix and Dovecot need it, and says how to fix what is not
 *
 * SUMMARY
 *   emailng doctor [--config FILE] [--json] [--postfix-config DIR]
 *                  [--dovecot-config FILE]
 *
 * PROTOCOL
 *   A client of emailng's own sockets, asking each one harmless question
 *   in its protocol (probes.ts):
 *     socketmap (verifyd):  C: 25:domain cs.example.org,   S: 17:OK cs.example.org,
 *     policy (policyd, quotad): C: request=smtpd_access_policy LF protocol_state=RCPT LF
 *                           … recipient=postmaster@cs.example.org LF LF
 *                           S: action=DUNNO LF LF
 *     dict (verifyd, quotad feed): C: H3 TAB 2 TAB 0 TAB TAB auth LF
 *                           Lshared/userdb/emailng-doctor TAB emailng-doctor LF   S: N LF
 *   The policy probe is an authenticated RCPT ("emailng-doctor" from
 *   127.0.0.1): never greylisted, and nothing is charged at RCPT.
 *
 * CHECKS (in this order; every problem comes with its fix)
 *   config     the file is valid (the same loader as every daemon; an
 *              invalid file stops here with exit status 2, as every command)
 *   snapshot   present, younger than snapshot.max_age, created in the past,
 *              the internal view when verifyd serves Dovecot's userdb
 *   sockets    each listener of [verifyd], [policyd] and [quotad] that is
 *              written in the file answers its protocol; a systemd
 *              listener is found by FileDescriptorName in the installed
 *              socket units
 *   ldap       connect and bind, when ldap.urls is set
 *   redis      connect and PING, when [redis] is set
 *   postfix    when postconf is installed: the socketmap tables are
 *              verifyd's sockets with map names it serves, recipients are
 *              checked against verifyd, policyd and quotad are called
 *   dovecot    when doveconf is installed and a Dovecot-facing listener is
 *              configured: quota_clone writes to quotad's feed, a dict
 *              passdb/userdb uses verifyd's dict
 *
 * SECURITY
 *   Reads the configuration, the snapshot's metadata, the bind and Redis
 *   password files and Dovecot's dict files: run it as root or as emailng
 *   (with the sockets' groups). Writes nothing. Connects to emailng's
 *   sockets, LDAP and Redis, and runs postconf and doveconf.
 *
 * CONFIGURATION
 *   The whole file; a daemon is checked only when its table is written in
 *   it (a back-end without [policyd] is not told that policyd is missing).
 *
 * DIAGNOSTICS
 *   One line per finding: "ok", "skip", "WARN" or "FAIL", the check, what
 *   was found, and for WARN/FAIL an indented "fix:" line; --json prints
 *   {"ok": …, "findings": [{check, status, message, fix?}]}. Exit status 0
 *   when nothing needs attention, 1 when a finding is WARN or FAIL, 2 when
 *   the configuration is invalid.
 *
 * LIMITS
 *   Each socket probe is bounded by 5 s, LDAP and Redis by their
 *   configured timeouts, postconf and doveconf by 15 s. TCP listeners on
 *   addresses other than loopback are not probed (their allow-list
 *   decides who may connect).
 */
import { exitWith } from "../cli/io.js";
import type { ProgramDefinition } from "../cli/programs.js";
import { doctorExitStatus, findingsJson, formatFindingsText } from "./findings.js";
import { runDoctor } from "./run.js";

export const EXIT_DOCTOR_FINDINGS = 1;

const doctorProgram: ProgramDefinition = {
  name: "doctor",
  summary:
    "check the configuration, snapshot, sockets, LDAP, Redis and the Postfix/Dovecot wiring; every finding with a fix",
  configure(command) {
    command
      .option("--json", "print the findings as JSON")
      .option("--postfix-config <dir>", "Postfix configuration directory for postconf -c")
      .option("--dovecot-config <file>", "Dovecot configuration file for doveconf -c");
  },
  async run({ config, configPath, options, io }) {
    const postfix = options["postfixConfig"];
    const dovecot = options["dovecotConfig"];
    const findings = await runDoctor(config, {
      configPath,
      ...(typeof postfix === "string" ? { postfixConfigDirectory: postfix } : {}),
      ...(typeof dovecot === "string" ? { dovecotConfig: dovecot } : {}),
    });
    io.out(
      options["json"] === true
        ? `${JSON.stringify(findingsJson(findings), null, 2)}\n`
        : formatFindingsText(findings),
    );
    if (doctorExitStatus(findings) !== 0) {
      exitWith(EXIT_DOCTOR_FINDINGS, "emailng.doctorFindings", "doctor found problems");
    }
  },
};

export const DOCTOR_PROGRAMS: readonly ProgramDefinition[] = [doctorProgram];
