// Typed errors with stable codes. The codes double as Broker's error-message `code`
// strings where Broker defines one, so an error keeps its meaning when it crosses the wire.

export type ProtocolErrorCode =
  /** Broker's code for anything that cannot be decoded: bad JSON, bad shape, bad types. */
  | "deserialization_failed"
  /** The HTTP upgrade asked for a path other than /v1/messages/json. */
  | "invalid_uri"
  /** A frame larger than the configured maximum. */
  | "frame_too_large"
  /** A well-formed event whose name or arguments do not match the declared signature. */
  | "invalid_event"
  /** A request that got no answer within its timeout. */
  | "request_timeout"
  /** The connection went away (or was never up) while something waited on it. */
  | "disconnected"
  /** The handshake was refused or answered with something other than an ack. */
  | "handshake_failed"
  /** The peer is not allowed to connect (bad or missing credentials). */
  | "unauthorized";

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}

/** Renders anything thrown as a one-line message suitable for an error result. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
