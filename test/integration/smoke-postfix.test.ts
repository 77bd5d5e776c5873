/**
 * Smoke proofs through a real Postfix 3.7: small servers built from core/net
 * and the codecs in core/protocols, answered by scripted rules, and Postfix's
 * own programs as the clients.
 *
 * - socketmap: `postmap -q KEY socketmap:unix:…:NAME` gets every reply status
 *   right (found, not found, TEMP, TIMEOUT, PERM), and a handler that throws
 *   becomes a temporary error, never "not found".
 * - policy: smtpd with check_policy_service, driven by swaks, honours DUNNO,
 *   DEFER_IF_PERMIT, REJECT, HOLD and PREPEND, and a throwing handler defers.
 *
 * One Postfix instance serves the whole file.
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { policyProtocol, socketmapProtocol } from "../../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../../core/net/server.js";
import type { PolicyAction } from "../../core/protocols/policy-reply.js";
import { parseSocketmapRequest, type SocketmapReply } from "../../core/protocols/socketmap.js";
import { type Postfix, startPostfix } from "../harness/postfix.js";
import { makeTempDir, removeTempDir, waitFor } from "../harness/process.js";
import { type SmtpSink, startSmtpSink } from "../harness/smtp-sink.js";

const log = pino({ level: "silent" });
const limits = { maxConnections: 50, requestTimeoutMs: 2_000, idleTimeoutMs: 330_000 };

/** Socketmap answers chosen by key, the way a test script would. */
function socketmapAnswer(key: string): SocketmapReply {
  switch (key) {
    case "found@example.test":
      return { status: "OK", data: "mailbox@example.test" };
    case "spaces@example.test":
      return { status: "OK", data: "value with  two spaces " };
    case "empty@example.test":
      // The codec must turn an empty OK into NOTFOUND (Postfix refuses empty results).
      return { status: "OK", data: "" };
    case "temp@example.test":
      return { status: "TEMP", reason: "directory unavailable" };
    case "timeout@example.test":
      return { status: "TIMEOUT", reason: "backend slow" };
    case "perm@example.test":
      return { status: "PERM", reason: "no such map" };
    case "throw@example.test":
      throw new Error("handler bug: must never reach Postfix as NOTFOUND");
    default:
      return { status: "NOTFOUND" };
  }
}

/** Policy actions chosen by the recipient's local part. */
function policyAnswer(recipient: string): PolicyAction {
  const local = recipient.slice(0, recipient.indexOf("@"));
  switch (local) {
    case "defer":
      return { action: "DEFER_IF_PERMIT", text: "Smoke test says wait" };
    case "reject":
      return { action: "REJECT", text: "Smoke test says no" };
    case "hold":
      return { action: "HOLD", text: "held by the smoke test" };
    case "prepend":
      return { action: "PREPEND", header: "X-Emailng-Smoke: prepended" };
    case "throw":
      throw new Error("handler bug: must become DEFER_IF_PERMIT");
    default:
      return { action: "DUNNO" };
  }
}

describe("real Postfix against servers built from core/net and the codecs", () => {
  let dir: string;
  let socketmapPath: string;
  let policyPath: string;
  let socketmapServer: ProtocolServer;
  let policyServer: ProtocolServer;
  let sink: SmtpSink;
  let postfix: Postfix;
  const seenMapNames: string[] = [];

  beforeAll(async () => {
    dir = makeTempDir("smoke-postfix");
    // smtpd runs as the postfix user: it must reach the sockets.
    chmodSync(dir, 0o755);
    socketmapPath = join(dir, "verify.sock");
    policyPath = join(dir, "policy.sock");

    socketmapServer = createProtocolServer({
      name: "smoke-socketmap",
      definition: socketmapProtocol(),
      sessions: () => ({
        handle(payload) {
          const parsed = parseSocketmapRequest(payload);
          if (!parsed.ok) return { status: "PERM", reason: parsed.error.message };
          seenMapNames.push(parsed.request.name);
          return socketmapAnswer(parsed.request.key);
        },
      }),
      limits,
      log,
    });
    await socketmapServer.listen([{ kind: "unix", path: socketmapPath, mode: 0o666 }]);

    policyServer = createProtocolServer({
      name: "smoke-policy",
      definition: policyProtocol(),
      sessions: () => ({
        handle(request) {
          if (request.protocolState !== "RCPT") return { action: "DUNNO" };
          return policyAnswer(request.recipient ?? "");
        },
      }),
      limits,
      log,
    });
    await policyServer.listen([{ kind: "unix", path: policyPath, mode: 0o666 }]);

    sink = await startSmtpSink();
    postfix = await startPostfix({
      mainCf: {
        relay_domains: "relay.example",
        relayhost: `[127.0.0.1]:${sink.port}`,
        mynetworks: "192.0.2.1/32",
        smtpd_recipient_restrictions: `check_policy_service unix:${policyPath}, reject_unauth_destination`,
      },
    });
  });

  afterAll(async () => {
    await postfix?.destroy();
    await sink?.close();
    await socketmapServer?.close(1_000);
    await policyServer?.close(1_000);
    if (dir) removeTempDir(dir);
  });

  describe("postmap -q through socketmap", () => {
    const query = (key: string) => postfix.postmap(["-q", key, `socketmap:unix:${socketmapPath}:recipient`]);

    it.each([
      { key: "found@example.test", code: 0, stdout: "mailbox@example.test\n" },
      { key: "spaces@example.test", code: 0, stdout: "value with  two spaces \n" },
      { key: "unknown@example.test", code: 1, stdout: "" },
      { key: "empty@example.test", code: 1, stdout: "" },
    ])("$key → exit $code", async ({ key, code, stdout }) => {
      const result = await query(key);
      expect(result.code, result.stderr).toBe(code);
      expect(result.stdout).toBe(stdout);
      expect(result.stderr).not.toMatch(/warning|fatal/);
    });

    it.each([
      { key: "temp@example.test", message: /temporary error: directory unavailable/ },
      { key: "timeout@example.test", message: /timeout error: backend slow/ },
      { key: "perm@example.test", message: /permanent error: no such map/ },
      { key: "throw@example.test", message: /temporary error: internal error/ },
    ])("$key → lookup error, not a result", async ({ key, message }) => {
      const result = await query(key);
      expect(result.code).not.toBe(0);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/fatal/);
    });

    it("sends the map name from the table spec", () => {
      expect(seenMapNames.length).toBeGreaterThan(0);
      expect(new Set(seenMapNames)).toEqual(new Set(["recipient"]));
    });
  });

  describe("smtpd check_policy_service driven by swaks", () => {
    const send = (to: string) =>
      postfix.swaks([
        "--from",
        "sender@client.test",
        "--to",
        to,
        "--header",
        `Subject: smoke ${to}`,
        "--body",
        "policy smoke test",
      ]);

    it("DUNNO lets the message through to the next hop", async () => {
      const result = await send("dunno@relay.example");
      expect(result.code, result.transcript).toBe(0);
      const messages = await sink.waitForMessages(1);
      expect(messages.some((m) => m.rcptTo.includes("dunno@relay.example"))).toBe(true);
    });

    it("DEFER_IF_PERMIT answers 450 4.7.1 with our text", async () => {
      const result = await send("defer@relay.example");
      expect(result.transcript).toMatch(
        /<\*\* 450 4\.7\.1 <defer@relay\.example>: Recipient address rejected: Smoke test says wait/,
      );
    });

    it("REJECT answers 554 5.7.1 with our text", async () => {
      const result = await send("reject@relay.example");
      expect(result.transcript).toMatch(
        /<\*\* 554 5\.7\.1 <reject@relay\.example>: Recipient address rejected: Smoke test says no/,
      );
    });

    it("a throwing handler becomes DEFER_IF_PERMIT, never a reject", async () => {
      const result = await send("throw@relay.example");
      expect(result.transcript).toMatch(/<\*\* 450 4\.7\.1 <throw@relay\.example>/);
      expect(result.transcript).not.toMatch(/<\*\* 5\d\d /);
    });

    it("HOLD accepts the message into the hold queue", async () => {
      const result = await send("hold@relay.example");
      expect(result.code, result.transcript).toBe(0);
      const heldRecipients = async () =>
        (await postfix.listQueue())
          .filter((entry) => entry.queue_name === "hold")
          .flatMap((entry) => entry.recipients.map((r) => r.address));
      await waitFor(async () => (await heldRecipients()).includes("hold@relay.example"), {
        timeoutMs: 20_000,
        what: "the held message in the hold queue",
        logPaths: [postfix.logPath],
      });
      expect(postfix.readLog()).toMatch(
        /hold: RCPT from .*<hold@relay\.example>: Recipient address held by the smoke test/,
      );
    });

    it("PREPEND adds our header to the delivered message", async () => {
      const result = await send("prepend@relay.example");
      expect(result.code, result.transcript).toBe(0);
      const messages = await sink.waitForMessages(2);
      const delivered = messages.find((m) => m.rcptTo.includes("prepend@relay.example"));
      expect(delivered?.data).toMatch(/^X-Emailng-Smoke: prepended\r?$/m);
    });
  });
});
