// A Broker-style publish/subscribe hub speaking the WebSocket JSON API v1. The routing
// logic (Hub) knows nothing about sockets: a connection is a send callback plus a
// receive method, and in-process endpoints attach without any transport at all.
// HubServer (./server.ts) wires real WebSocket connections to it.

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { type BrokerData } from "./data.js";
import { ProtocolError, errorMessage } from "./errors.js";
import {
  type ZeekEvent,
  dataToEvent,
  decodeDataMessage,
  decodeHandshake,
  encodeAck,
  encodeDataMessage,
  encodeError,
  eventToData,
} from "./messages.js";

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

export interface HubOptions {
  /** Sent in every ack; a fresh UUID by default. */
  endpointId?: string;
  /** Sent in every ack as `version`. */
  version?: string;
  /** Frames above this size are refused with an error message; the connection stays up. */
  maxFrameBytes?: number;
  /**
   * Whether a message from one remote peer is relayed to other remote peers (Broker's
   * behaviour, the default). Our daemons are endpoints, not routers: their peers (clients,
   * agents, nodes) only ever talk to the daemon itself, and relaying would send every node's
   * check-in to every other node and make each message cost a scan of all connections.
   */
  relayBetweenPeers?: boolean;
}

/** Where a message came from, as seen by the hub. */
export interface Origin {
  /** Unique per connection or local endpoint. */
  id: string;
  kind: "remote" | "local";
  remoteAddress?: string;
  remotePort?: number;
  /** Who the transport authenticated this peer as (a token or certificate), if anyone. */
  principal?: string;
}

export interface Delivery {
  topic: string;
  data: BrokerData;
  origin: Origin;
}

export type DeliveryHandler = (delivery: Delivery) => void;

export function topicMatches(prefixes: readonly string[], topic: string): boolean {
  return prefixes.some((p) => topic.startsWith(p));
}

export interface RemoteConnectionIo {
  send(text: string): void;
  /** Closes the underlying transport with a WebSocket close code. */
  close(code: number, reason: string): void;
  remoteAddress?: string;
  remotePort?: number;
  principal?: string;
}

/** A remote peer's session on the hub: handshake first, then data messages. */
export class HubConnection {
  readonly origin: Origin;
  private topics: string[] | undefined;
  private closed = false;
  /** Counts frames after the handshake, for error contexts. */
  private received = 0;

  constructor(
    private readonly hub: Hub,
    private readonly io: RemoteConnectionIo,
  ) {
    this.origin = {
      id: randomUUID(),
      kind: "remote",
      ...(io.remoteAddress !== undefined ? { remoteAddress: io.remoteAddress } : {}),
      ...(io.remotePort !== undefined ? { remotePort: io.remotePort } : {}),
      ...(io.principal !== undefined ? { principal: io.principal } : {}),
    };
  }

  get subscribed(): readonly string[] | undefined {
    return this.topics;
  }

  /** Feeds one text frame from the peer. Never throws. */
  receive(text: string): void {
    if (this.closed) return;
    const limit = this.hub.maxFrameBytes;
    if (text.length > limit) {
      this.sendError("deserialization_failed", `frame of ${text.length} bytes exceeds the limit of ${limit} bytes`);
      return;
    }
    if (this.topics === undefined) {
      try {
        this.topics = decodeHandshake(text);
      } catch (err) {
        this.sendError("deserialization_failed", errorMessage(err));
        this.close(1008, "handshake failed");
        return;
      }
      this.io.send(encodeAck(this.hub.endpointId, this.hub.version));
      this.hub.register(this);
      return;
    }
    this.received++;
    let message;
    try {
      message = decodeDataMessage(text);
    } catch (err) {
      this.hub.emit("bad-frame", { origin: this.origin, error: err, frame: text.slice(0, 200) });
      this.sendError("deserialization_failed", errorMessage(err));
      return;
    }
    this.hub.route(this.origin, message.topic, message.data);
  }

  /** Binary frames carry nothing in this protocol. */
  receiveBinary(): void {
    this.sendError("deserialization_failed", "binary frames are not supported; send JSON text frames");
  }

  sendError(code: string, context: string): void {
    if (!this.closed) this.io.send(encodeError(code, context));
  }

  sendText(text: string): void {
    if (!this.closed) this.io.send(text);
  }

  close(code = 1000, reason = ""): void {
    if (this.closed) return;
    this.closed = true;
    this.io.close(code, reason);
    this.hub.unregister(this);
  }

  /** The transport went away on its own (EOF, reset, close frame). */
  transportClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.unregister(this);
  }
}

/** An in-process participant: subscribes and publishes without a transport. */
export class LocalEndpoint {
  readonly origin: Origin;
  private closed = false;

  constructor(
    private readonly hub: Hub,
    readonly topics: string[],
    private readonly handler: DeliveryHandler,
  ) {
    this.origin = { id: randomUUID(), kind: "local" };
  }

  publish(topic: string, data: BrokerData): void {
    if (!this.closed) this.hub.route(this.origin, topic, data);
  }

  publishEvent(topic: string, event: ZeekEvent): void {
    this.publish(topic, eventToData(event));
  }

  deliver(delivery: Delivery): void {
    if (this.closed) return;
    try {
      this.handler(delivery);
    } catch (err) {
      this.hub.emit("handler-error", { origin: this.origin, error: err });
    }
  }

  close(): void {
    this.closed = true;
    this.hub.removeLocal(this);
  }
}

/**
 * Routes every published message to all subscribers whose topic prefixes match, except
 * its sender. Emits "connect"/"disconnect" (Origin) for remote peers, "bad-frame" and
 * "handler-error" for diagnostics.
 */
export class Hub extends EventEmitter {
  readonly endpointId: string;
  readonly version: string;
  readonly maxFrameBytes: number;
  private readonly relayBetweenPeers: boolean;
  private readonly localEndpoints = new Map<string, LocalEndpoint>();
  private readonly connections = new Map<string, HubConnection>();

  constructor(options: HubOptions = {}) {
    super();
    this.endpointId = options.endpointId ?? randomUUID();
    this.version = options.version ?? "zmgmt";
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.relayBetweenPeers = options.relayBetweenPeers ?? true;
  }

  /** A new remote peer; it must complete the handshake before it is subscribed. */
  accept(io: RemoteConnectionIo): HubConnection {
    return new HubConnection(this, io);
  }

  local(topics: string[], handler: DeliveryHandler): LocalEndpoint {
    const ep = new LocalEndpoint(this, topics, handler);
    this.localEndpoints.set(ep.origin.id, ep);
    return ep;
  }

  /** Remote peers currently connected (handshake done). */
  get peers(): Origin[] {
    return [...this.connections.values()].map((c) => c.origin);
  }

  connection(originId: string): HubConnection | undefined {
    return this.connections.get(originId);
  }

  route(from: Origin, topic: string, data: BrokerData): void {
    let text: string | undefined;
    const lazyText = (): string => (text ??= encodeDataMessage(topic, data));
    if (from.kind === "local" || this.relayBetweenPeers) {
      for (const [id, conn] of this.connections) {
        if (id === from.id) continue;
        if (topicMatches(conn.subscribed ?? [], topic)) conn.sendText(lazyText());
      }
    }
    for (const [id, ep] of this.localEndpoints) {
      if (id === from.id) continue;
      if (topicMatches(ep.topics, topic)) ep.deliver({ topic, data, origin: from });
    }
  }

  /** Sends to one remote peer only, bypassing subscriptions' fan-out. */
  sendTo(originId: string, topic: string, data: BrokerData): boolean {
    const conn = this.connections.get(originId);
    if (!conn) return false;
    conn.sendText(encodeDataMessage(topic, data));
    return true;
  }

  register(conn: HubConnection): void {
    this.connections.set(conn.origin.id, conn);
    this.emit("connect", conn.origin, conn.subscribed ?? []);
  }

  unregister(conn: HubConnection): void {
    if (this.connections.delete(conn.origin.id)) this.emit("disconnect", conn.origin);
  }

  removeLocal(ep: LocalEndpoint): void {
    this.localEndpoints.delete(ep.origin.id);
  }

  /** Closes every remote connection (1001, as Zeek does when it shuts down). */
  closeAll(code = 1001, reason = "Terminating"): void {
    for (const conn of [...this.connections.values()]) conn.close(code, reason);
  }
}

/** Decodes a delivery as a Zeek event, or undefined when it is not one. */
export function deliveryEvent(delivery: Delivery): ZeekEvent | undefined {
  try {
    return dataToEvent(delivery.data);
  } catch (err) {
    if (err instanceof ProtocolError) return undefined;
    throw err;
  }
}
