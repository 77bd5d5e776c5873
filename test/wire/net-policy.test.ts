/**
 * The server with the real Postfix policy codec from core/protocols: several
 * requests on one connection as smtpd sends them, a hanging handler answered
 * with DEFER_IF_PERMIT within the budget, and a line that is not
 * `name=value` closing the connection, served with the shared policy
 * ProtocolDefinition.
 */
import { afterEach, describe, expect, it } from "vitest";
import { policyProtocol } from "../../core/net/protocol-definitions.js";
import { createProtocolServer, type ProtocolServer } from "../../core/net/server.js";
import { encodePolicyRequest } from "../../core/protocols/policy.js";
import type { PolicyAction } from "../../core/protocols/policy-reply.js";
import { capturingLogger, connectLineClient, type LineClient, recordingObserver } from "./net-fixtures.js";

let server: ProtocolServer | undefined;
let client: LineClient | undefined;
afterEach(async () => {
  client?.socket.destroy();
  await server?.close(100);
});

function request(recipient: string): string {
  const attributes = {
    request: "smtpd_access_policy",
    protocol_state: "RCPT",
    sender: "a@example.org",
    recipient,
  };
  return Buffer.from(encodePolicyRequest(attributes)).toString("utf8");
}

async function reply(from: LineClient): Promise<string> {
  const action = await from.nextLine();
  expect(await from.nextLine()).toBe("");
  return action;
}

describe("protocol server with the Postfix policy codec", () => {
  it("answers requests on one connection and defers a hanging one within budget", async () => {
    const observer = recordingObserver();
    server = createProtocolServer({
      name: "policy-test",
      definition: policyProtocol(),
      sessions: () => ({
        handle: (frame, context) =>
          frame.get("recipient") === "hang@example.org"
            ? new Promise<PolicyAction>((_, reject) =>
                context.signal.addEventListener("abort", () => reject(context.signal.reason)),
              )
            : { action: "DUNNO" },
      }),
      limits: { maxConnections: 4, requestTimeoutMs: 300, idleTimeoutMs: 10_000 },
      log: capturingLogger().log,
      observer,
    });
    await server.listen([{ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.0.0.1"] }]);
    const bound = server.addresses()[0];
    if (bound?.kind !== "tcp") throw new Error("expected TCP");
    client = await connectLineClient({ host: "127.0.0.1", port: bound.port });

    client.send(request("one@example.org"));
    expect(await reply(client)).toBe("action=DUNNO");
    const started = Date.now();
    client.send(request("hang@example.org"));
    expect(await reply(client)).toBe("action=DEFER_IF_PERMIT Service temporarily unavailable");
    expect(Date.now() - started).toBeLessThan(1000);
    client.send(request("two@example.org"));
    expect(await reply(client)).toBe("action=DUNNO");
    expect(observer.events.filter((event) => event.startsWith("request"))).toEqual([
      "request DUNNO",
      "request DEFER_IF_PERMIT",
      "request DUNNO",
    ]);

    client.send("this line has no equals sign\n");
    await client.closed();
    expect(observer.events).toContain("error protocol");
  });
});
