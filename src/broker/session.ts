// The protocol state of one client connection to a Broker WebSocket endpoint, with no
// socket: the handshake, the ack, and data frames. Connection adds the socket.

import type { BrokerData } from "./data.js";
import { ProtocolError, errorMessage } from "./errors.js";
import { decodeServerFrame, encodeDataMessage, encodeHandshake } from "./messages.js";

export interface AckInfo {
  endpoint: string;
  version: string;
}

export interface SessionHandlers {
  ack(info: AckInfo): void;
  data(topic: string, data: BrokerData): void;
  serverError(code: string, context: string): void;
  /** A frame we could not decode; the session carries on. */
  badFrame(error: ProtocolError): void;
}

/** Protocol state of one client connection, independent of the transport. */
export class PeerSession {
  private acked = false;

  constructor(
    private readonly topics: string[],
    private readonly send: (text: string) => void,
    private readonly handlers: SessionHandlers,
  ) {}

  get isAcked(): boolean {
    return this.acked;
  }

  start(): void {
    this.send(encodeHandshake(this.topics));
  }

  receive(text: string): void {
    let frame;
    try {
      frame = decodeServerFrame(text);
    } catch (err) {
      this.handlers.badFrame(err instanceof ProtocolError ? err : new ProtocolError("deserialization_failed", errorMessage(err)));
      return;
    }
    if (frame.kind === "ack") {
      this.acked = true;
      this.handlers.ack({ endpoint: frame.endpoint, version: frame.version });
    } else if (frame.kind === "error") {
      this.handlers.serverError(frame.code, frame.context);
    } else if (!this.acked) {
      this.handlers.badFrame(new ProtocolError("handshake_failed", "data message before the ack"));
    } else {
      this.handlers.data(frame.message.topic, frame.message.data);
    }
  }

  publish(topic: string, data: BrokerData): void {
    if (!this.acked) throw new ProtocolError("disconnected", "not connected");
    this.send(encodeDataMessage(topic, data));
  }
}
