/**
 * The contract between the pure codecs in core/protocols and the socket
 * server in core/net: a decoder is fed raw bytes as they arrive and returns
 * complete frames, or a ProtocolError once framing is broken (after which the
 * connection is closed). Decoders never buffer more than their limit: an
 * oversized frame is reported as soon as its size is known, before the rest
 * of it arrives.
 */
import type { ProtocolError } from "../errors.js";

export type DecodeEvent<Frame> = { kind: "frame"; frame: Frame } | { kind: "error"; error: ProtocolError };

export interface StreamDecoder<Frame> {
  /** Feed bytes; returns every frame completed by them, in order. After an error event the decoder is dead. */
  push(chunk: Uint8Array): DecodeEvent<Frame>[];
  /** Bytes held for an incomplete frame (for memory accounting and tests). */
  readonly buffered: number;
}
