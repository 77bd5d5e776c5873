/**
 * One client connection of the protocol server: bytes go through the
 * protocol's decoder, frames wait in a bounded queue and are handled one at
 * a time in arrival order (Postfix and Dovecot match replies to requests by
 * order), each under its own deadline, and every reply goes out through the
 * protocol's encoder. A handler that throws or misses its deadline yields
 * the protocol's fail-safe (temporary) reply; broken framing closes only
 * this connection.
 *
 * The only thing that closes a healthy connection on our side is the idle
 * timeout, and only with nothing in flight: Postfix keeps policy connections
 * open for minutes and pays a retry delay if the server hangs up first.
 */
import type net from "node:net";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { TransientError } from "../errors.js";
import { sanitizePeerString } from "../log/logger.js";
import type { PeerInfo, ProtocolDefinition, RequestContext, ServerObserver, Session } from "./protocol.js";
import { describeForLog } from "./sanitize.js";

export interface ConnectionSettings<Frame, Reply> {
  definition: ProtocolDefinition<Frame, Reply>;
  observer: ServerObserver;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxQueuedFrames: number;
}

type HandlerOutcome<Reply> =
  | { kind: "reply"; reply: Reply | undefined }
  | { kind: "error"; error: unknown }
  | { kind: "deadline" };

export class Connection<Frame, Reply> {
  private readonly decoder;
  private readonly queue: Frame[] = [];
  /** A frame is being handled or its reply written. */
  private busy = false;
  private readingPaused = false;
  private peerEnded = false;
  private draining = false;
  private ending = false;
  private closed = false;
  private current: AbortController | undefined;

  constructor(
    private readonly socket: net.Socket,
    readonly peer: PeerInfo,
    private readonly log: Logger,
    private readonly session: Session<Frame, Reply>,
    private readonly settings: ConnectionSettings<Frame, Reply>,
    private readonly onClosed: (connection: Connection<Frame, Reply>) => void,
  ) {
    this.decoder = settings.definition.createDecoder();
    socket.setNoDelay(true);
    socket.setTimeout(settings.idleTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onPeerEnd());
    socket.on("timeout", () => this.onIdle());
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET are the peer's business; count them and carry on.
      this.log.debug({ code: error.code, reason: sanitizePeerString(error.message) }, "socket error");
      settings.observer.error("socket");
    });
    socket.on("close", () => this.onClose());
  }

  /** True when a request is being handled or waits in the queue. */
  get inFlight(): boolean {
    return this.busy || this.queue.length > 0;
  }

  /** Graceful close: drop frames not yet started, finish the current one and write its reply, then close. */
  shutdown(): void {
    if (this.closed) return;
    this.draining = true;
    this.queue.length = 0;
    this.socket.pause();
    if (!this.busy) this.endGracefully();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.draining || this.ending) return;
    let events: ReturnType<typeof this.decoder.push>;
    try {
      events = this.decoder.push(chunk);
    } catch (error) {
      // Decoders return errors rather than throw; a throw is a codec bug, treated the same way.
      this.failFraming("protocol.malformed", error instanceof Error ? error.message : String(error));
      return;
    }
    for (const event of events) {
      if (event.kind === "error") {
        this.failFraming(event.error.code, event.error.message);
        return;
      }
      this.queue.push(event.frame);
    }
    // One chunk can carry many small frames, so the queue may pass the limit
    // by one chunk's worth; pausing here keeps it bounded by that.
    if (this.queue.length >= this.settings.maxQueuedFrames && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private failFraming(code: string, reason: string): void {
    this.log.warn({ code, reason: sanitizePeerString(reason) }, "protocol error; closing connection");
    this.settings.observer.error("protocol");
    this.queue.length = 0;
    this.socket.destroy();
  }

  private onPeerEnd(): void {
    this.peerEnded = true;
    if (this.decoder.buffered > 0) {
      this.log.debug({ buffered: this.decoder.buffered }, "peer closed in the middle of a frame");
    }
    // Half-closed: queued requests still get their replies, then we close.
    if (!this.busy && this.queue.length === 0) this.endGracefully();
  }

  private onIdle(): void {
    // A handler at work is ours to finish (its deadline bounds it); the timer is re-armed when it is done.
    if (this.current !== undefined) return;
    // No bytes either way for the whole idle period: either nothing is pending, or a reply waits for a
    // peer that stopped reading, which would otherwise hold the connection (and its queue) forever.
    const stalled = this.inFlight || this.socket.writableLength > 0;
    const reason = stalled ? "peer stopped reading; closing connection" : "idle timeout; closing connection";
    this.log.debug({ idleTimeoutMs: this.settings.idleTimeoutMs }, reason);
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.current?.abort(new TransientError("transient.internal", "connection closed"));
    try {
      this.session.close?.();
    } catch (error) {
      this.log.error({ err: error }, "session close failed");
    }
    this.log.debug("connection closed");
    this.onClosed(this);
  }

  private endGracefully(): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    // Wait until our last reply is flushed, then release the socket even if the peer never closes its side.
    this.socket.end(() => this.socket.destroy());
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closed && !this.draining) {
        const frame = this.queue.shift() as Frame;
        if (this.readingPaused && this.queue.length < this.settings.maxQueuedFrames) {
          this.readingPaused = false;
          this.socket.resume();
        }
        await this.serve(frame);
      }
    } finally {
      this.busy = false;
    }
    if (this.closed) return;
    if (this.draining || this.peerEnded) this.endGracefully();
    // Restart the idle clock: a slow request that wrote no reply must not leave the timer disarmed.
    else this.socket.setTimeout(this.settings.idleTimeoutMs);
  }

  private async serve(frame: Frame): Promise<void> {
    const { definition, observer } = this.settings;
    const started = performance.now();
    if (this.log.isLevelEnabled("debug")) this.log.debug({ request: describeForLog(frame) }, "request");
    const outcome = await this.runHandler(frame);
    let reply: Reply | undefined;
    switch (outcome.kind) {
      case "reply":
        reply = outcome.reply;
        break;
      case "error":
        // The error text stays in our log; the peer only ever sees the fail-safe reply.
        this.log.error({ err: outcome.error }, "handler failed; answering fail-safe");
        observer.error("handler");
        reply = this.failSafe(frame);
        break;
      case "deadline":
        this.log.warn(
          { requestTimeoutMs: this.settings.requestTimeoutMs },
          "request deadline passed; answering fail-safe",
        );
        observer.error("deadline");
        reply = this.failSafe(frame);
        break;
      default: {
        const unknown: never = outcome;
        throw new Error(`unknown handler outcome ${JSON.stringify(unknown)}`);
      }
    }
    if (reply === undefined || this.closed) {
      this.log.debug({ ms: Math.round(performance.now() - started) }, "no reply");
      return;
    }
    const bytes = this.encode(frame, reply);
    if (bytes === undefined) return;
    await this.write(bytes.data);
    const seconds = (performance.now() - started) / 1000;
    const label = definition.outcomeLabel(bytes.reply);
    observer.request(label, seconds);
    this.log.debug({ outcome: label, ms: Math.round(seconds * 1000) }, "reply");
  }

  /**
   * Runs the session's handler. A handler that answers synchronously (verifyd's
   * maps, most policy decisions) costs no timer, no promise and no
   * AbortController: the signal is made only when the handler asks for it,
   * and the deadline only guards answers that are still pending.
   */
  private runHandler(frame: Frame): HandlerOutcome<Reply> | Promise<HandlerOutcome<Reply>> {
    let controller: AbortController | undefined;
    const signalFor = (): AbortSignal => {
      controller ??= new AbortController();
      this.current = controller;
      return controller.signal;
    };
    const context: RequestContext = {
      log: this.log,
      peer: this.peer,
      get signal() {
        return signalFor();
      },
    };
    let result: Reply | undefined | PromiseLike<Reply | undefined>;
    try {
      result = this.session.handle(frame, context);
    } catch (error) {
      if (controller !== undefined && this.current === controller) this.current = undefined;
      return { kind: "error", error };
    }
    if (!isPromiseLike(result)) {
      if (controller !== undefined && this.current === controller) this.current = undefined;
      return { kind: "reply", reply: result };
    }
    const pending = result;
    // The signal the handler may still ask for later must be this one.
    controller ??= new AbortController();
    const active = controller;
    this.current = active;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: HandlerOutcome<Reply>) => {
        if (settled) return; // a late result after the deadline is dropped here
        settled = true;
        clearTimeout(deadline);
        if (this.current === active) this.current = undefined;
        resolve(outcome);
      };
      const deadline = setTimeout(() => {
        const ms = this.settings.requestTimeoutMs;
        active.abort(new TransientError("transient.timeout", `request deadline of ${ms} ms passed`));
        finish({ kind: "deadline" });
      }, this.settings.requestTimeoutMs);
      pending.then(
        (reply) => finish({ kind: "reply", reply }),
        (error: unknown) => finish({ kind: "error", error }),
      );
    });
  }

  /** The protocol's temporary answer; a broken fail-safe leaves the stream unusable, so close. */
  private failSafe(frame: Frame): Reply | undefined {
    try {
      return this.settings.definition.failSafeReply(frame);
    } catch (error) {
      this.log.error({ err: error }, "fail-safe reply failed; closing connection");
      this.socket.destroy();
      return undefined;
    }
  }

  private encode(frame: Frame, reply: Reply): { data: Uint8Array; reply: Reply } | undefined {
    const { definition, observer } = this.settings;
    try {
      return { data: definition.encodeReply(reply), reply };
    } catch (error) {
      // e.g. a reply above the peer's size limit: send the temporary answer instead.
      this.log.error({ err: error }, "reply could not be encoded; answering fail-safe");
      observer.error("handler");
    }
    const fallback = this.failSafe(frame);
    if (fallback === undefined || this.closed) return undefined;
    try {
      return { data: definition.encodeReply(fallback), reply: fallback };
    } catch (error) {
      this.log.error({ err: error }, "fail-safe reply could not be encoded; closing connection");
      this.socket.destroy();
      return undefined;
    }
  }

  /** Write with backpressure: wait for "drain" before the next frame is handled. */
  private async write(data: Uint8Array): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"
  );
}
