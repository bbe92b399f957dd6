// A Broker-style publish/subscribe hub speaking the WebSocket JSON API v1. The routing
// logic (Hub) knows nothing about sockets: a connection is a send callback plus a
// receive method, and in-process endpoints attach without any transport at all.
// HubServer (./server.ts) wires real WebSocket connections to it.

import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { type BrokerData } from "./data.js";
import { ProtocolError, errorMessage } from "./errors.js";
import type { SplicedFrame } from "./frame-template.js";
import {
  type ZeekEvent,
  dataToEvent,
  decodeDataMessage,
  decodeHandshake,
  encodeAck,
  encodeDataMessage,
  encodeError,
  eventToData,
  sniffEventFrame,
} from "./messages.js";

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Below this, a split frame is sent joined (see HubConnection.sendSplit). */
const SPLIT_MIN_CHARS = 16 * 1024;
/** Unanswered requests remembered per peer; the oldest are forgotten beyond this. */
export const MAX_AWAITED_REPLIES = 256;

/**
 * A request/response API on some topics (the Management framework's): requests from peers
 * carry an id, and the daemon's responses carry the id of the request they answer.
 *
 * Why the hub cares: clients such as zeek-client wait for their answer with a receive
 * timeout that restarts on every frame that arrives, keep-alive pings and other clients'
 * traffic included, so a steady stream of either keeps them waiting forever for an answer
 * that never comes. A peer with an unanswered request therefore receives its answers and
 * nothing else, and is not pinged (see HubConnection.awaitingReply). Peers without one
 * still receive everything they subscribed to, other clients' responses included, as
 * Broker delivers them.
 */
export interface ReplyRouting {
  topics: readonly string[];
  /** The request id when a peer's event is a request, else undefined. */
  requestId(event: ZeekEvent): string | undefined;
  /** The id of the request a daemon's event answers, else undefined. */
  responseId(event: ZeekEvent): string | undefined;
  /**
   * The answer to a request the hub refused before decoding it (too large), so that clients
   * which ignore error messages still learn why; undefined when there is no such answer.
   */
  refusal?(request: { name: string; reqid: string }, error: string): ZeekEvent | undefined;
}

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
  /** Request/answer correlation on the daemon's request topics; none by default. */
  replies?: ReplyRouting;
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
  /**
   * Sends one text message made of `head` and then `tail` (UTF-8), without joining them:
   * a tail shared by many peers is written to each as it is. Optional; `send` is used
   * with the joined text otherwise.
   */
  sendSplit?(head: string, tail: Buffer): void;
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
  /** Ids of this peer's requests that have not been answered yet, oldest first. */
  private readonly awaited = new Set<string>();

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

  /**
   * True while a request of this peer is unanswered (see ReplyRouting): the peer then gets
   * nothing but its answers, and the server sends it no pings, which would restart the
   * peer's receive timeout; TCP keep-alive still notices a vanished host.
   */
  get awaitingReply(): boolean {
    return this.awaited.size > 0;
  }

  expectReply(reqid: string): void {
    this.awaited.delete(reqid);
    this.awaited.add(reqid);
    if (this.awaited.size > MAX_AWAITED_REPLIES) this.awaited.delete(this.awaited.values().next().value!);
  }

  /** Forgets an awaited request id; true when this peer was waiting for it. */
  settleReply(reqid: string): boolean {
    return this.awaited.delete(reqid);
  }

  /** Feeds one text frame from the peer. Never throws. */
  receive(text: string): void {
    if (this.closed) return;
    const limit = this.hub.maxFrameBytes;
    if (text.length > limit) {
      this.refuse(text, `frame of ${text.length} bytes exceeds the limit of ${limit} bytes`);
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

  /**
   * Turns a frame down unread: an error message, plus the failed answer ReplyRouting builds
   * for the request the frame names, which clients that skip error messages show.
   */
  refuse(text: string, error: string, code = "deserialization_failed"): void {
    this.sendError(code, error);
    if (this.topics === undefined) return;
    const answer = this.hub.refusalFor(text, error);
    if (answer) this.sendText(encodeDataMessage(answer.topic, answer.data));
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

  /** One message `head + tail`, where `tailBytes` is `tail` already in UTF-8. */
  sendSplit(head: string, tail: string, tailBytes: () => Buffer): void {
    if (this.closed) return;
    // A small tail is cheaper joined: two fragments cost two writes.
    if (this.io.sendSplit && tail.length >= SPLIT_MIN_CHARS) this.io.sendSplit(head, tailBytes());
    else this.io.send(head + tail);
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
  private readonly replies: ReplyRouting | undefined;
  private readonly localEndpoints = new Map<string, LocalEndpoint>();
  private readonly connections = new Map<string, HubConnection>();

  constructor(options: HubOptions = {}) {
    super();
    this.endpointId = options.endpointId ?? randomUUID();
    this.version = options.version ?? "zmgmt";
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.relayBetweenPeers = options.relayBetweenPeers ?? true;
    this.replies = options.replies;
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
    let answers: string | undefined;
    if (this.replies && topicMatches(this.replies.topics, topic)) {
      const event = eventOrUndefined(data);
      if (event && from.kind === "remote") {
        const reqid = this.replies.requestId(event);
        if (reqid !== undefined) this.connections.get(from.id)?.expectReply(reqid);
      } else if (event) {
        answers = this.replies.responseId(event);
      }
    }
    if (from.kind === "local" || this.relayBetweenPeers) {
      for (const [id, conn] of this.connections) {
        if (id === from.id) continue;
        // Settled even where it is not delivered, or a peer that asks without subscribing
        // would count as waiting forever and never be pinged again.
        const settled = answers !== undefined && conn.settleReply(answers);
        if (!topicMatches(conn.subscribed ?? [], topic)) continue;
        // A waiting peer hears only its own answers (see ReplyRouting).
        if (conn.awaitingReply && !settled) continue;
        conn.sendText(lazyText());
      }
    }
    for (const [id, ep] of this.localEndpoints) {
      if (id === from.id) continue;
      if (topicMatches(ep.topics, topic)) ep.deliver({ topic, data, origin: from });
    }
  }

  /**
   * The answer to an oversized request frame, when ReplyRouting can build one for the
   * request the frame's first bytes name.
   */
  refusalFor(text: string, error: string): { topic: string; data: BrokerData } | undefined {
    if (!this.replies?.refusal) return undefined;
    const sniffed = sniffEventFrame(text);
    if (sniffed.topic === undefined || sniffed.name === undefined || sniffed.firstArg === undefined) return undefined;
    if (!topicMatches(this.replies.topics, sniffed.topic)) return undefined;
    const answer = this.replies.refusal({ name: sniffed.name, reqid: sniffed.firstArg }, error);
    return answer ? { topic: sniffed.topic, data: eventToData(answer) } : undefined;
  }

  /** Sends to one remote peer only, bypassing subscriptions' fan-out. */
  sendTo(originId: string, topic: string, data: BrokerData): boolean {
    const conn = this.connections.get(originId);
    if (!conn) return false;
    conn.sendText(encodeDataMessage(topic, data));
    return true;
  }

  /** Like sendTo, for a frame already encoded (see EventFrameTemplate). */
  sendFrameTo(originId: string, frame: SplicedFrame, tailBytes: () => Buffer): boolean {
    const conn = this.connections.get(originId);
    if (!conn) return false;
    conn.sendSplit(frame.head, frame.tail, tailBytes);
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

function eventOrUndefined(data: BrokerData): ZeekEvent | undefined {
  try {
    return dataToEvent(data);
  } catch (err) {
    if (err instanceof ProtocolError) return undefined;
    throw err;
  }
}

/** Decodes a delivery as a Zeek event, or undefined when it is not one. */
export function deliveryEvent(delivery: Delivery): ZeekEvent | undefined {
  return eventOrUndefined(delivery.data);
}
