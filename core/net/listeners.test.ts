import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openListener } from "./listeners.js";

const root = mkdtempSync(join(tmpdir(), "emailng-listeners-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Connects as soon as the socket file exists; resolves with the echoed line and whether it connected before `opened`. */
function eagerClient(path: string, opened: () => boolean): Promise<{ early: boolean; echoed: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("no echo within 5 s: the connection was never served")),
      5_000,
    );
    const attempt = (): void => {
      if (!existsSync(path)) {
        setImmediate(attempt);
        return;
      }
      const socket = net.connect({ path });
      let early = false;
      let echoed = "";
      socket.once("connect", () => {
        early = !opened();
        socket.write("ping\n");
      });
      socket.on("data", (chunk) => {
        echoed += chunk.toString();
        if (echoed.endsWith("\n")) {
          clearTimeout(timer);
          socket.destroy();
          resolve({ early, echoed });
        }
      });
      socket.once("error", () => setImmediate(attempt));
    };
    attempt();
  });
}

describe("openListener", () => {
  it("serves a connection that arrives while the UNIX socket's mode is still being set", async () => {
    let earlyConnections = 0;
    for (let round = 0; round < 20; round++) {
      const path = join(root, `early-${round}.sock`);
      let opened = false;
      const client = eagerClient(path, () => opened);
      const listener = await openListener({ kind: "unix", path, mode: 0o660 }, (socket) => {
        socket.on("data", (chunk) => socket.write(chunk));
      });
      opened = true;
      const { early, echoed } = await client;
      expect(echoed).toBe("ping\n");
      if (early) earlyConnections += 1;
      await listener.close();
    }
    // The point of the test: some connections did land in that window.
    expect(earlyConnections).toBeGreaterThan(0);
  });
});
