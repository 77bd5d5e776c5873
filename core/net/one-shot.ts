/**
 * One request, one answer, on a fresh connection: how `emailng doctor` and
 * `emailng demo` ask a daemon in its own protocol (policy, dict) without
 * keeping a client around. Bounded by a timeout; every failure is a value
 * (errno code, "timeout", "protocol", "closed"), never an exception.
 */
import { connect, type Socket } from "node:net";
import type { StreamDecoder } from "../protocols/stream.js";

export type ProbeResult<Reply> =
  | { ok: true; reply: Reply }
  /** code: errno (ENOENT, ECONNREFUSED, EACCES …), "timeout" or "protocol". */
  | { ok: false; code: string; message: string };

export type ProbeTarget = { path: string } | { host: string; port: number };

export function probeFailure(error: unknown): { ok: false; code: string; message: string } {
  const code = (error as NodeJS.ErrnoException).code ?? "error";
  return { ok: false, code, message: error instanceof Error ? error.message : String(error) };
}

/** Sends `request` on a fresh connection and resolves with the first frame the decoder completes. */
export function exchangeOnce<Frame>(
  target: ProbeTarget,
  request: Uint8Array,
  decoder: StreamDecoder<Frame>,
  timeoutMs: number,
): Promise<ProbeResult<Frame>> {
  return new Promise((resolve) => {
    let settled = false;
    const socket: Socket = "path" in target ? connect(target.path) : connect(target.port, target.host);
    const finish = (result: ProbeResult<Frame>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, code: "timeout", message: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === "error") finish({ ok: false, code: "protocol", message: event.error.message });
        else finish({ ok: true, reply: event.frame });
        return;
      }
    });
    socket.on("error", (error) => finish(probeFailure(error)));
    socket.on("close", () =>
      finish({ ok: false, code: "closed", message: "the server closed the connection without an answer" }),
    );
  });
}
