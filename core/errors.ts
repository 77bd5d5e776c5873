/**
 * The few error classes every emailng program uses, each with a stable code.
 *
 * - TransientError: a backend is down or slow; the caller answers temporarily
 *   (socketmap TEMP, policy DEFER_IF_PERMIT, dict failure) and the peer retries.
 * - PermanentError: the request itself is wrong (bad query); the protocol's
 *   permanent error form is allowed, never for a lookup failure.
 * - ProtocolError: framing is broken; the connection is closed and logged once.
 *
 * Library errors are wrapped once, at the edge that calls the library.
 */

export type ErrorCode =
  | "transient.backend_down"
  | "transient.timeout"
  | "transient.internal"
  | "permanent.bad_request"
  | "protocol.oversized"
  | "protocol.malformed"
  | "protocol.unexpected_eof"
  | "config.invalid";

export abstract class EmailngError extends Error {
  abstract readonly code: ErrorCode;
}

export class TransientError extends EmailngError {
  constructor(
    readonly code: Extract<ErrorCode, `transient.${string}`>,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "TransientError";
  }
}

export class PermanentError extends EmailngError {
  readonly code = "permanent.bad_request" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentError";
  }
}

export class ProtocolError extends EmailngError {
  constructor(
    readonly code: Extract<ErrorCode, `protocol.${string}`>,
    message: string,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}
