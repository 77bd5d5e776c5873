/**
 * Netstrings (`<decimal length>:<payload>,`), the framing of Postfix socketmap
 * tables (docs/protocols/postfix-socketmap.md). NetstringDecoder checks the
 * length prefix byte by byte and refuses a length above its limit as soon as
 * the digits say so — before any payload arrives — as well as a prefix that
 * never ends, a non-digit where the length belongs, and a missing comma.
 * The payload buffer is allocated once at the announced size, so memory is
 * bounded by the limit whatever the peer sends.
 */
import { ProtocolError } from "../errors.js";
import type { DecodeEvent, StreamDecoder } from "./stream.js";
import { utf8Encode } from "./text.js";

/** Postfix sends socketmap queries of at most 10,000 bytes. */
export const DEFAULT_MAX_NETSTRING_PAYLOAD = 10_000;
/** More digits than this cannot be a length we would accept anyway (guards "000000…"). */
const MAX_LENGTH_DIGITS = 10;

const COLON = 0x3a;
const COMMA = 0x2c;

type State =
  | { phase: "length"; digits: number; value: number }
  | { phase: "payload"; payload: Uint8Array; filled: number }
  | { phase: "comma"; payload: Uint8Array }
  | { phase: "dead"; error: ProtocolError };

export class NetstringDecoder implements StreamDecoder<Uint8Array> {
  private state: State = { phase: "length", digits: 0, value: 0 };

  constructor(private readonly maxPayloadBytes = DEFAULT_MAX_NETSTRING_PAYLOAD) {}

  get buffered(): number {
    switch (this.state.phase) {
      case "payload":
        return this.state.filled;
      case "comma":
        return this.state.payload.length;
      case "length":
      case "dead":
        return 0;
      default: {
        const unreachable: never = this.state;
        return unreachable;
      }
    }
  }

  push(chunk: Uint8Array): DecodeEvent<Uint8Array>[] {
    const events: DecodeEvent<Uint8Array>[] = [];
    let index = 0;
    while (index < chunk.length || this.state.phase === "dead") {
      const state = this.state;
      switch (state.phase) {
        case "dead":
          events.push({ kind: "error", error: state.error });
          return events;
        case "length": {
          const byte = chunk[index++] as number;
          if (byte >= 0x30 && byte <= 0x39) {
            state.digits++;
            state.value = state.value * 10 + (byte - 0x30);
            if (state.value > this.maxPayloadBytes) {
              this.fail(
                "protocol.oversized",
                `netstring length exceeds the limit of ${this.maxPayloadBytes}`,
              );
            } else if (state.digits > MAX_LENGTH_DIGITS) {
              this.fail("protocol.malformed", "netstring length prefix is too long");
            }
          } else if (byte === COLON && state.digits > 0) {
            this.state = { phase: "payload", payload: new Uint8Array(state.value), filled: 0 };
          } else {
            this.fail("protocol.malformed", `netstring length expected, got byte 0x${hex(byte)}`);
          }
          break;
        }
        case "payload": {
          const take = Math.min(state.payload.length - state.filled, chunk.length - index);
          state.payload.set(chunk.subarray(index, index + take), state.filled);
          state.filled += take;
          index += take;
          if (state.filled === state.payload.length) this.state = { phase: "comma", payload: state.payload };
          break;
        }
        case "comma": {
          const byte = chunk[index++] as number;
          if (byte !== COMMA) {
            this.fail("protocol.malformed", `netstring must end with ',', got byte 0x${hex(byte)}`);
            break;
          }
          events.push({ kind: "frame", frame: state.payload });
          this.state = { phase: "length", digits: 0, value: 0 };
          break;
        }
        default: {
          const unreachable: never = state;
          return unreachable;
        }
      }
    }
    return events;
  }

  private fail(code: "protocol.oversized" | "protocol.malformed", message: string): void {
    this.state = { phase: "dead", error: new ProtocolError(code, message) };
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

export function encodeNetstring(payload: Uint8Array | string): Uint8Array {
  // A string is encoded whole, prefix and comma included: one (pooled) Buffer, no copy.
  if (typeof payload === "string") return utf8Encode(`${Buffer.byteLength(payload, "utf8")}:${payload},`);
  const body = payload;
  const prefix = utf8Encode(`${body.length}:`);
  const out = new Uint8Array(prefix.length + body.length + 1);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  out[out.length - 1] = COMMA;
  return out;
}
