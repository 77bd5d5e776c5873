/**
 * One client connection of the protocol server: bytes go through the
 * protocol's decoder, frames wait in a bounded queue and are handled one at
 * a time in arrival order (Postfix and Dovecot match replies to requests by
 * order), each under its own deadline, and every reply goes out through the
 * protocol's encoder. A handler that throws or misses its deadline yields
 * the protocol's fail-safe (temporary) reply; broken framing closes only
 * this connection.
 *
 * Most answers are at hand (a snapshot lookup), so the fast path is
 * synchronous: a frame whose handler returns a value is answered, encoded
 * and written inside the socket's 'data' event, with no promise, timer or
 * AbortController, and the replies to all frames of one chunk leave in one
 * corked write. Only a handler that returns a promise gets a deadline, and
 * everything behind it waits until it is answered.
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
import { isPromiseLike } from "../maybe-promise.js";
import type { PeerInfo, ProtocolDefinition, RequestContext, ServerObserver, Session } from "./protocol.js";
import { describeForLog } from "./sanitize.js";

export interface ConnectionSettings<Frame, Reply> {
  definition: ProtocolDefinition<Frame, Reply>;
  observer: ServerObserver;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxQueuedFrames: number;
}

type PendingOutcome<Reply> =
  | { kind: "reply"; reply: Reply | undefined }
  | { kind: "error"; error: unknown }
  | { kind: "deadline" };

/**
 * What a handler gets with its frame. The AbortSignal is made only when the
 * handler reads it; a signal asked for after the request was aborted (the
 * deadline passed, the connection closed) comes already aborted.
 */
class HandlerContext implements RequestContext {
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;

  constructor(
    readonly log: Logger,
    readonly peer: PeerInfo,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}

export class Connection<Frame, Reply> {
  private readonly decoder;
  private readonly queue: Frame[] = [];
  /** A pending (async) answer or a full socket buffer holds the frames behind it. */
  private busy = false;
  private awaitingDrain = false;
  private readingPaused = false;
  private peerEnded = false;
  private draining = false;
  private ending = false;
  private closed = false;
  /** The request whose answer is pending, if any. */
  private current: HandlerContext | undefined;
  private readonly debug: boolean;

  constructor(
    private readonly socket: net.Socket,
    readonly peer: PeerInfo,
    private readonly log: Logger,
    private readonly session: Session<Frame, Reply>,
    private readonly settings: ConnectionSettings<Frame, Reply>,
    private readonly onClosed: (connection: Connection<Frame, Reply>) => void,
  ) {
    this.decoder = settings.definition.createDecoder();
    // Asked once per connection instead of per request; a level change applies to new connections.
    this.debug = log.isLevelEnabled("debug");
    socket.setNoDelay(true);
    socket.setTimeout(settings.idleTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onPeerEnd());
    socket.on("timeout", () => this.onIdle());
    socket.on("drain", () => this.onDrain());
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
    this.pump();
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

  private onDrain(): void {
    if (!this.awaitingDrain) return;
    this.awaitingDrain = false;
    this.busy = false;
    this.pump();
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

  /**
   * Handles queued frames in order until the queue is empty or one of them
   * must wait (a pending answer, a full socket buffer); that one calls pump
   * again when it is done. Replies written meanwhile are corked into one write.
   */
  private pump(): void {
    if (this.busy) return;
    const corked = this.queue.length > 1;
    if (corked) this.socket.cork();
    while (this.queue.length > 0 && !this.closed && !this.draining) {
      const frame = this.queue.shift() as Frame;
      if (this.readingPaused && this.queue.length < this.settings.maxQueuedFrames) {
        this.readingPaused = false;
        this.socket.resume();
      }
      this.serve(frame);
      if (this.busy) break;
    }
    if (corked) this.socket.uncork();
    if (this.busy || this.closed) return;
    if (this.draining || this.peerEnded) this.endGracefully();
  }

  /** Answers one frame now, or sets busy until its pending answer is written. */
  private serve(frame: Frame): void {
    const started = performance.now();
    if (this.debug) this.log.debug({ request: describeForLog(frame) }, "request");
    const context = new HandlerContext(this.log, this.peer);
    let result: Reply | undefined | PromiseLike<Reply | undefined>;
    try {
      result = this.session.handle(frame, context);
    } catch (error) {
      this.reply(frame, started, this.afterFailure(frame, { kind: "error", error }));
      return;
    }
    if (!isPromiseLike(result)) {
      this.reply(frame, started, result);
      return;
    }
    this.busy = true;
    this.current = context;
    this.waitFor(result, context).then((outcome) => {
      if (this.current === context) this.current = undefined;
      this.busy = false;
      if (this.closed) return;
      const reply = outcome.kind === "reply" ? outcome.reply : this.afterFailure(frame, outcome);
      this.reply(frame, started, reply);
      // Restart the idle clock: a slow request that wrote no reply must not leave the timer disarmed.
      if (!this.closed) this.socket.setTimeout(this.settings.idleTimeoutMs);
      this.pump();
    });
  }

  /** A pending answer, bounded by the request deadline; a late result after the deadline is dropped. */
  private waitFor(
    pending: PromiseLike<Reply | undefined>,
    context: HandlerContext,
  ): Promise<PendingOutcome<Reply>> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: PendingOutcome<Reply>) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(outcome);
      };
      const deadline = setTimeout(() => {
        const ms = this.settings.requestTimeoutMs;
        context.abort(new TransientError("transient.timeout", `request deadline of ${ms} ms passed`));
        finish({ kind: "deadline" });
      }, this.settings.requestTimeoutMs);
      pending.then(
        (reply) => finish({ kind: "reply", reply }),
        (error: unknown) => finish({ kind: "error", error }),
      );
    });
  }

  /** Logs and counts a failed request; returns its fail-safe reply. */
  private afterFailure(
    frame: Frame,
    outcome: Exclude<PendingOutcome<Reply>, { kind: "reply" }>,
  ): Reply | undefined {
    switch (outcome.kind) {
      case "error":
        // The error text stays in our log; the peer only ever sees the fail-safe reply.
        this.log.error({ err: outcome.error }, "handler failed; answering fail-safe");
        this.settings.observer.error("handler");
        break;
      case "deadline":
        this.log.warn(
          { requestTimeoutMs: this.settings.requestTimeoutMs },
          "request deadline passed; answering fail-safe",
        );
        this.settings.observer.error("deadline");
        break;
      default: {
        const unknown: never = outcome;
        throw new Error(`unknown handler outcome ${JSON.stringify(unknown)}`);
      }
    }
    return this.failSafe(frame);
  }

  /** Encodes and writes a reply (or the fail-safe if it cannot be encoded), then counts it. */
  private reply(frame: Frame, started: number, reply: Reply | undefined): void {
    if (reply === undefined || this.closed) {
      if (this.debug) this.log.debug({ ms: Math.round(performance.now() - started) }, "no reply");
      return;
    }
    const { definition, observer } = this.settings;
    let sent = reply;
    let data: Uint8Array;
    try {
      data = definition.encodeReply(reply);
    } catch (error) {
      // e.g. a reply above the peer's size limit: send the temporary answer instead.
      this.log.error({ err: error }, "reply could not be encoded; answering fail-safe");
      observer.error("handler");
      const fallback = this.failSafe(frame);
      if (fallback === undefined || this.closed) return;
      try {
        data = definition.encodeReply(fallback);
        sent = fallback;
      } catch (fallbackError) {
        this.log.error({ err: fallbackError }, "fail-safe reply could not be encoded; closing connection");
        this.socket.destroy();
        return;
      }
    }
    this.write(data);
    const seconds = (performance.now() - started) / 1000;
    const label = definition.outcomeLabel(sent);
    observer.request(label, seconds);
    if (this.debug) this.log.debug({ outcome: label, ms: Math.round(seconds * 1000) }, "reply");
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

  /** Write with backpressure: a full socket buffer holds the next frame until "drain". */
  private write(data: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.write(data)) return;
    this.busy = true;
    this.awaitingDrain = true;
  }
}
