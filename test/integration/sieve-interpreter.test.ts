// Differential test of `emailng sieve test` against Pigeonhole's own
// sieve-test: every case in test/fixtures/sieve/interpret/cases (a script
// whose first line names the message and the envelope) is run by both, and
// the action lists must be the same — stores with their folder, flags,
// :create and :copy, redirects, discard, reject, vacation with its period,
// subject, sender and text, the implicit keep with its flags, or a runtime
// error. sieve-test runs two at a time in a private configuration (no
// /etc/dovecot, mail user nobody).
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkScript } from "../../sieve-tools/check.js";
import { extensionSet } from "../../sieve-tools/extensions.js";
import { type InterpretResult, interpret, requiredExtensions } from "../../sieve-tools/interpreter.js";
import { parseMessage } from "../../sieve-tools/message.js";
import { removeTempDir, runCommand } from "../harness/process.js";
import {
  EXTRA_EXTENSIONS,
  type PigeonholeEnvironment,
  pigeonholeEnvironment,
  runPool,
  SIEVE_TEST,
} from "./sieve-peers.js";

const fixtures = new URL("../fixtures/sieve/interpret/", import.meta.url).pathname;

interface Case {
  name: string;
  script: string;
  message: string;
  from: string;
  to: string;
}

function loadCases(): Case[] {
  return readdirSync(join(fixtures, "cases"))
    .filter((name) => name.endsWith(".sieve"))
    .sort()
    .map((file) => {
      const script = readFileSync(join(fixtures, "cases", file), "utf8");
      const header = /^# message: (\S+); from: (\S*); to: (\S+)/.exec(script);
      if (header === null) throw new Error(`${file}: first line must be "# message: X.eml; from: A; to: B"`);
      return { name: file, script, message: header[1]!, from: header[2]!, to: header[3]! };
    });
}

/** sieve-test's report as comparable lines. */
function normalisePigeonhole(output: string, stderr: string): string[] {
  if (/final result: failed/.test(stderr) || /^(?:.*: )?error: /m.test(stderr)) return ["error"];
  const lines = output.replace(/\r/g, "").split("\n");
  const result: string[] = [];
  let section = "";
  let current: string | null = null;
  const flush = () => {
    if (current !== null) result.push(current);
    current = null;
  };
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!;
    if (line === "Performed actions:" || line === "Implicit keep:") {
      flush();
      section = line === "Implicit keep:" ? "implicit keep: " : "";
      continue;
    }
    let match = /^ \* store message in folder: (.*)$/.exec(line);
    if (match !== null) {
      flush();
      current = `${section}store ${JSON.stringify(match[1])}`;
      continue;
    }
    match = /^ \* redirect message to: <(.*)>$/.exec(line);
    if (match !== null) {
      flush();
      current = `${section}redirect <${match[1]}>`;
      continue;
    }
    if (line === " * discard") {
      flush();
      current = "discard";
      continue;
    }
    match = /^ \* reject message with reason: (.*)$/.exec(line);
    if (match !== null) {
      flush();
      current = `reject ${JSON.stringify(match[1])}`;
      continue;
    }
    if (line === " * send vacation message:") {
      flush();
      const fields: Record<string, string> = {};
      let position = index + 1;
      for (; /^ {4}=> /.test(lines[position] ?? ""); position += 1) {
        const field = /^ {4}=> (\w+)\s*: (.*)$/.exec(lines[position]!);
        if (field !== null) fields[field[1]!] = field[2]!;
      }
      const start = lines.indexOf("START MESSAGE", position);
      const end = lines.indexOf("END MESSAGE", start);
      const text = lines.slice(start + 1, end).join("\n");
      current = `vacation seconds=${fields["seconds"]} subject=${JSON.stringify(fields["subject"] ?? null)} from=${JSON.stringify(fields["from"] ?? null)} reason=${JSON.stringify(text)}`;
      index = end;
      continue;
    }
    match = /^ {8}\+ add IMAP flags: (.*)$/.exec(line);
    if (match !== null && current !== null) {
      current += ` flags=[${match[1]!.trim()}]`;
      continue;
    }
    if (/^ {8}\+ create mailbox if it does not exist$/.test(line) && current !== null) {
      current += " create";
      continue;
    }
    if (/^ {8}\+ preserve implicit keep$/.test(line) && current !== null) {
      current += " copy";
    }
  }
  flush();
  return result;
}

/** Our result in the same form. */
function normaliseOurs(result: InterpretResult): string[] {
  if (result.status === "error") return ["error"];
  const lines: string[] = [];
  for (const action of result.actions) {
    switch (action.kind) {
      case "store":
        lines.push(
          `store ${JSON.stringify(action.folder)}${action.flags.length > 0 ? ` flags=[${action.flags.join(" ")}]` : ""}${action.create ? " create" : ""}${action.copy ? " copy" : ""}`,
        );
        break;
      case "redirect":
        lines.push(`redirect <${action.address}>${action.copy ? " copy" : ""}`);
        break;
      case "discard":
        lines.push("discard");
        break;
      case "reject":
        lines.push(`reject ${JSON.stringify(action.reason)}`);
        break;
      case "vacation":
        lines.push(
          `vacation seconds=${action.seconds} subject=${JSON.stringify(action.subject)} from=${JSON.stringify(action.from)} reason=${JSON.stringify(action.reason.replace(/\r\n/g, "\n"))}`,
        );
        break;
    }
  }
  if (result.implicitKeep !== null) {
    const flags = result.implicitKeep.flags;
    lines.push(`implicit keep: store "INBOX"${flags.length > 0 ? ` flags=[${flags.join(" ")}]` : ""}`);
  }
  return lines;
}

let environment: PigeonholeEnvironment;
let outcomes: Array<{ name: string; pigeonhole: string[]; ours: string[]; raw: string }> = [];

beforeAll(async () => {
  environment = pigeonholeEnvironment({ topLevel: "mail_uid = nobody\nmail_gid = nogroup\n" });
  // sieve-test drops to nobody: the scripts, messages and a home must be reachable.
  chmodSync(environment.dir, 0o755);
  const home = join(environment.dir, "home");
  mkdirSync(home, { mode: 0o777 });
  chmodSync(home, 0o777);
  const cases = loadCases();
  const allowed = extensionSet(EXTRA_EXTENSIONS).allowed;
  outcomes = await runPool(
    cases.map((testCase, index) => async () => {
      const script = join(home, `case-${index}.sieve`);
      copyFileSync(join(fixtures, "cases", testCase.name), script);
      chmodSync(script, 0o644);
      const message = join(home, `case-${index}.eml`);
      copyFileSync(join(fixtures, "messages", testCase.message), message);
      chmodSync(message, 0o644);
      const result = await runCommand(
        SIEVE_TEST,
        [
          ...environment.baseArgs,
          "-l",
          `maildir:${home}/Maildir`,
          "-f",
          testCase.from,
          "-r",
          testCase.to,
          script,
          message,
        ],
        { timeoutMs: 30_000, env: { ...process.env, HOME: home } },
      );
      if (/Fatal/.test(result.stderr) && !/^(?:.*: )?error: /m.test(result.stderr)) {
        throw new Error(`sieve-test ${testCase.name}: ${result.stderr}`);
      }
      const checked = checkScript(testCase.script, { allowed });
      if (!checked.valid)
        throw new Error(`${testCase.name}: our checker refuses it: ${JSON.stringify(checked.diagnostics)}`);
      const ours = interpret(
        checked.commands,
        parseMessage(readFileSync(join(fixtures, "messages", testCase.message))),
        {
          envelope: { from: testCase.from, to: testCase.to },
          required: requiredExtensions(checked.commands),
        },
      );
      return {
        name: testCase.name,
        pigeonhole: normalisePigeonhole(result.stdout, result.stderr),
        ours: normaliseOurs(ours),
        raw: `${result.stdout}\n${result.stderr}`,
      };
    }),
    2,
  );
}, 240_000);

afterAll(() => {
  if (environment !== undefined) removeTempDir(environment.dir);
});

describe("sieve test agrees with Pigeonhole's sieve-test", () => {
  it("has a corpus of at least 60 script and message pairs, each with actions", () => {
    expect(outcomes.length).toBeGreaterThanOrEqual(60);
    // A parse failure of sieve-test's report would show up as an empty list.
    for (const outcome of outcomes)
      expect(outcome.pigeonhole.length, `${outcome.name}\n${outcome.raw}`).toBeGreaterThan(0);
  });

  it("produces the same action list for every case", () => {
    const differences = outcomes
      .filter((outcome) => JSON.stringify(outcome.pigeonhole) !== JSON.stringify(outcome.ours))
      .map(
        (outcome) =>
          `${outcome.name}\n  sieve-test: ${outcome.pigeonhole.join(" | ")}\n  ours:       ${outcome.ours.join(" | ")}`,
      );
    console.info(
      `sieve test corpus: ${outcomes.length} cases, ${outcomes.length - differences.length} identical`,
    );
    expect(differences).toEqual([]);
  });
});
