/**
 * Wire tests for the synchronous path of core/net/connection.ts: a session
 * that answers most frames at once (as verifyd does) and some later. Replies
 * keep arrival order when a pending answer sits in front of synchronous
 * ones, nothing behind a pending answer is handled before it is answered,
 * synchronous throws get the fail-safe, and a signal asked for after the
 * deadline comes already aborted. The line protocol and client are the
 * core/net wire fixtures'.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  capturingLogger,
  connectLineClient,
  type LineClient,
  lineProtocol,
  recordingObserver,
} from "../../test/wire/net-fixtures.js";
import type { RequestContext, Session } from "./protocol.js";
import { createProtocolServer, type ProtocolServer } from "./server.js";

const open: ProtocolServer[] = [];
const clients: LineClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.destroy();
  await Promise.all(open.splice(0).map((server) => server.close(100)));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `echo X` → `OK X` at once; `later MS` → `OK later MS` after MS; `throw` throws at once;
 * `noreply` → nothing; `late-signal MS` waits MS, then answers whether its signal is aborted.
 */
function mixedSession(handled: string[]): Session<string, string> {
  return {
    handle(frame: string, context: RequestContext) {
      handled.push(frame);
      const [command, argument = ""] = frame.split(" ");
      switch (command) {
        case "echo":
          return `OK ${argument}`;
        case "later":
          return sleep(Number(argument)).then(() => `OK later ${argument}`);
        case "throw":
          throw new Error("secret internal detail");
        case "noreply":
          return undefined;
        case "late-signal":
          return sleep(Number(argument)).then(() => `OK aborted=${context.signal.aborted}`);
        default:
          return "ERR unknown";
      }
    },
  };
}

async function start(requestTimeoutMs = 2000) {
  const handled: string[] = [];
  const observer = recordingObserver();
  const { log, lines } = capturingLogger();
  const server = createProtocolServer({
    name: "test",
    definition: lineProtocol,
    sessions: () => mixedSession(handled),
    limits: { maxConnections: 4, requestTimeoutMs, idleTimeoutMs: 30_000 },
    log,
    observer,
  });
  open.push(server);
  await server.listen([{ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.0.0.0/8"] }]);
  const bound = server.addresses()[0];
  if (bound?.kind !== "tcp") throw new Error("expected a TCP listener");
  const client = await connectLineClient({ host: "127.0.0.1", port: bound.port });
  clients.push(client);
  return { client, handled, observer, lines };
}

describe("connection, synchronous answers", () => {
  it("answers a chunk of synchronous frames in order, fail-safe for a throw, nothing for noreply", async () => {
    const { client, observer } = await start();
    client.send("echo 1\necho 2\nthrow\nnoreply\necho 3\n");
    const replies = [await client.nextLine(), await client.nextLine(), await client.nextLine()];
    expect(replies).toEqual(["OK 1", "OK 2", "TEMP"]);
    expect(await client.nextLine()).toBe("OK 3");
    expect(observer.events.filter((event) => event === "request OK")).toHaveLength(3);
    expect(observer.events).toContain("error handler");
  });

  it("holds synchronous frames behind a pending answer and keeps arrival order", async () => {
    const { client, handled } = await start();
    client.send("echo a\nlater 150\necho b\nlater 20\necho c\n");
    expect(await client.nextLine()).toBe("OK a");
    // The pending answer is in front: what came after it is not even handled yet.
    await sleep(50);
    expect(handled).toEqual(["echo a", "later 150"]);
    expect(await client.nextLine()).toBe("OK later 150");
    expect(await client.nextLine()).toBe("OK b");
    expect(await client.nextLine()).toBe("OK later 20");
    expect(await client.nextLine()).toBe("OK c");
    expect(handled).toEqual(["echo a", "later 150", "echo b", "later 20", "echo c"]);
  });

  it("answers the fail-safe at the deadline, then the frames behind it", async () => {
    const { client, observer } = await start(100);
    client.send("late-signal 300\necho after\n");
    expect(await client.nextLine()).toBe("TEMP");
    expect(await client.nextLine()).toBe("OK after");
    expect(observer.events).toContain("error deadline");
  });

  it("gives a handler that asks for its signal after the deadline an aborted one", async () => {
    const handled: string[] = [];
    const session = mixedSession(handled);
    const answers: string[] = [];
    const { log } = capturingLogger();
    const server = createProtocolServer({
      name: "test",
      definition: lineProtocol,
      sessions: () => ({
        handle(frame, context) {
          const answer = session.handle(frame, context) as Promise<string>;
          void answer.then((text) => answers.push(text));
          return answer;
        },
      }),
      limits: { maxConnections: 4, requestTimeoutMs: 50, idleTimeoutMs: 30_000 },
      log,
    });
    open.push(server);
    await server.listen([{ kind: "tcp", host: "127.0.0.1", port: 0, allow: ["127.0.0.0/8"] }]);
    const bound = server.addresses()[0];
    if (bound?.kind !== "tcp") throw new Error("expected a TCP listener");
    const client = await connectLineClient({ host: "127.0.0.1", port: bound.port });
    clients.push(client);
    client.send("late-signal 150\n");
    expect(await client.nextLine()).toBe("TEMP");
    await sleep(200);
    expect(answers).toEqual(["OK aborted=true"]);
  });
});
