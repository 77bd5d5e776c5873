/**
 * The ceiling: a server that reads just enough of each protocol to know
 * where a request ends and answers every request with the same valid reply,
 * doing no work at all. What it reaches with the same generator on the same
 * machine in the same sitting is the most any real server in Node could, so
 * each daemon is reported as a fraction of it.
 *
 *   node dist-bench/bench/servers/do-nothing-server.js --protocol socketmap|policy|dict (--unix PATH | --tcp PORT)
 *
 * socketmap: netstrings in, `8:OK DUNNO,` out (what verifyd answers for a
 * deliverable recipient). policy: requests end at an empty line,
 * `action=DUNNO` + empty line out. dict: the hello line gets nothing, every
 * other line (a lookup) gets one userdb-sized `O{…}` line. Prints "ready"
 * once listening; stops on SIGTERM.
 */

import { rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";

type Protocol = "socketmap" | "policy" | "dict";

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

const SOCKETMAP_REPLY = Buffer.from("8:OK DUNNO,");
const POLICY_REPLY = Buffer.from("action=DUNNO\n\n");
const DICT_REPLY = Buffer.from(
  'O{"uid":"100042","gid":"2004","home":"/home/csd100042","quota_rule":"*:bytes=2147483648"}\n',
);

/** Counts complete requests in a chunk, keeping the little state framing needs between chunks. */
type Counter = (chunk: Buffer) => number;

function socketmapCounter(): Counter {
  // Either reading the length digits (remaining < 0) or skipping payload + comma (remaining bytes).
  let length = 0;
  let remaining = -1;
  return (chunk) => {
    let count = 0;
    let index = 0;
    while (index < chunk.length) {
      if (remaining < 0) {
        const byte = chunk[index++]!;
        if (byte === 0x3a) remaining = length + 1;
        else length = length * 10 + (byte - 0x30);
      } else {
        const take = Math.min(remaining, chunk.length - index);
        remaining -= take;
        index += take;
        if (remaining === 0) {
          count++;
          remaining = -1;
          length = 0;
        }
      }
    }
    return count;
  };
}

function policyCounter(): Counter {
  let lastWasNewline = false;
  return (chunk) => {
    let count = 0;
    let from = 0;
    if (lastWasNewline && chunk[0] === 0x0a) {
      count++;
      from = 1;
    }
    for (;;) {
      const found = chunk.indexOf("\n\n", from, "latin1");
      if (found < 0) break;
      count++;
      from = found + 2;
    }
    lastWasNewline = chunk.length > from && chunk[chunk.length - 1] === 0x0a;
    return count;
  };
}

function dictCounter(): Counter {
  let helloSeen = false;
  return (chunk) => {
    let count = 0;
    let from = 0;
    for (;;) {
      const found = chunk.indexOf(0x0a, from);
      if (found < 0) break;
      if (helloSeen) count++;
      else helloSeen = true;
      from = found + 1;
    }
    return count;
  };
}

function serve(socket: Socket, protocol: Protocol): void {
  const [counter, reply] =
    protocol === "socketmap"
      ? [socketmapCounter(), SOCKETMAP_REPLY]
      : protocol === "policy"
        ? [policyCounter(), POLICY_REPLY]
        : [dictCounter(), DICT_REPLY];
  socket.setNoDelay(true);
  socket.on("data", (chunk: Buffer) => {
    const count = counter(chunk);
    if (count === 1) socket.write(reply);
    else if (count > 1) socket.write(Buffer.concat(Array.from({ length: count }, () => reply)));
  });
  socket.on("error", () => socket.destroy());
}

const protocol = flag("protocol") as Protocol | undefined;
if (protocol !== "socketmap" && protocol !== "policy" && protocol !== "dict") {
  console.error("usage: do-nothing-server --protocol socketmap|policy|dict (--unix PATH | --tcp PORT)");
  process.exit(2);
}
const unixPath = flag("unix");
const tcpPort = flag("tcp");
const server = createServer((socket) => serve(socket, protocol));
server.on("error", (error) => {
  console.error(`do-nothing ${protocol} server: ${error.message}`);
  process.exit(1);
});
const ready = () => console.log("ready");
if (unixPath !== undefined) {
  rmSync(unixPath, { force: true });
  server.listen(unixPath, ready);
} else if (tcpPort !== undefined) server.listen(Number(tcpPort), "127.0.0.1", ready);
else {
  console.error("do-nothing server: --unix PATH or --tcp PORT");
  process.exit(2);
}
process.on("SIGTERM", () => server.close(() => process.exit(0)));
