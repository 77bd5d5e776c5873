/**
 * Every policy-* and quota-status-* transcript through our policy codec:
 * all client bytes decode into requests without error (one per blank-line
 * terminated request), and every server reply either re-encodes byte-exact
 * with encodePolicyReply or is one of the replies the captures made on
 * purpose to show what breaks Postfix — which our encoder cannot produce.
 */
import { describe, expect, it } from "vitest";
import { PolicyRequestDecoder } from "../../core/protocols/policy.js";
import {
  encodePolicyReply,
  PolicyReplyDecoder,
  parsePolicyAction,
} from "../../core/protocols/policy-reply.js";
import { listVectorFiles, loadVectorFile } from "../harness/vectors.js";

const files = [...listVectorFiles("policy-"), ...listVectorFiles("quota-status-")];

/** Count of client requests: blank lines that end a non-empty attribute block. */
function countRequests(bytes: Uint8Array): number {
  const lines = new TextDecoder().decode(bytes).split("\n");
  let count = 0;
  let inRequest = false;
  for (const line of lines.slice(0, -1)) {
    if (line === "" && inRequest) count++;
    inRequest = line !== "";
  }
  return count;
}

/** Server replies in the captures that our encoder must never produce, with the reason. */
const NOT_PRODUCIBLE: Record<string, string> = {
  "action=dunno\n\n": "lower-case action word",
  "action=FOOBAR something\n\n": "unknown action word",
  "action=OK extra text after OK\n\n": "text after OK",
  "action=4.7.1 text without numeric code\n\n": "bare enhanced code",
  "action=reject lowercase reject\n\n": "lower-case action word",
  "foo=bar\naction=REJECT extra attributes are ignored\nbaz=qux\n\n": "extra attributes",
  "result=whatever\n\n": "missing action",
};

describe.each(files)("%s", (file) => {
  const vector = loadVectorFile(file);

  it("parses, with its header comments", () => {
    expect(vector.headerComments.length).toBeGreaterThan(0);
    expect(vector.records.every((r) => r.bytes.length > 0)).toBe(true);
  });

  it.each(
    vector.connections.map((c) => ({
      name: `connection ${c.id}`,
      input: c,
      want: countRequests(c.clientBytes),
    })),
  )("client bytes decode: $name", ({ input, want }) => {
    const events = new PolicyRequestDecoder().push(input.clientBytes);
    expect(events.filter((e) => e.kind === "error")).toEqual([]);
    expect(events).toHaveLength(want);
    for (const event of events) {
      if (event.kind === "frame") expect(event.frame.request).toBe("smtpd_access_policy");
    }
  });

  it.each(vector.connections.map((c) => ({ name: `connection ${c.id}`, input: c })))(
    "server replies re-encode or are known-bad: $name",
    ({ input }) => {
      const decoder = new PolicyReplyDecoder();
      const events = decoder.push(input.serverBytes);
      const raw = new TextDecoder().decode(input.serverBytes);
      if (raw.includes("\r")) {
        // policy-05: a CRLF reply never ends for Postfix, and our decoder refuses it the same way.
        expect(events.at(-1)?.kind).toBe("error");
        return;
      }
      expect(events.filter((e) => e.kind === "error")).toEqual([]);
      for (const event of events) {
        if (event.kind !== "frame") continue;
        const reply = event.frame;
        const wire = [...reply.attributes].map(([n, v]) => `${n}=${v}\n`).join("") + "\n";
        if (reply.action === undefined) {
          // policy-06: a stray blank line reads as an empty reply; policy-03: reply without action.
          expect(wire === "\n" || NOT_PRODUCIBLE[wire] !== undefined).toBe(true);
          continue;
        }
        if (!reply.validUtf8) continue; // policy-04 Latin-1 text: our encoder always writes UTF-8.
        const parsed = parsePolicyAction(reply.action);
        const reencoded = parsed.ok ? new TextDecoder().decode(encodePolicyReply(parsed.action)) : undefined;
        if (reencoded !== wire)
          expect(NOT_PRODUCIBLE[wire], `unexpected reply ${JSON.stringify(wire)}`).toBeDefined();
      }
    },
  );
});

describe("capture coverage", () => {
  it("reads the header of every policy transcript", () => {
    for (const file of files) expect(loadVectorFile(file).headerComments[0]).toMatch(/\S/);
  });

  it("policy-15 carries the TLS and SASL attributes", () => {
    const connection = loadVectorFile("policy-15-tls-and-sasl-attributes.txt").connections[0];
    const events = new PolicyRequestDecoder().push(connection?.clientBytes ?? new Uint8Array());
    const tls = events.flatMap((e) => (e.kind === "frame" && e.frame.encryptionProtocol ? [e.frame] : []));
    expect(tls[0]?.ccertIssuer).toBe("Example Test CA");
    expect(
      tls.some((r) => r.saslUsername === "alice@example.test" && r.saslSender === "<alice@example.test>"),
    ).toBe(true);
  });
});
