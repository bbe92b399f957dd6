// A reconnecting client of the WebSocket JSON API: a Connection (one socket: connect,
// handshake, ack, data) opened again with backoff whenever it fails or drops. The protocol
// logic without sockets is PeerSession; request/response matching is in request.ts.

import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { BrokerData } from "./data.js";
import { ProtocolError } from "./errors.js";
import { Connection, type LinkEvents, type PeerTlsOptions } from "./connection.js";
import { type ZeekEvent, eventToData } from "./messages.js";
import type { AckInfo } from "./session.js";

export { PeerSession, type AckInfo, type SessionHandlers } from "./session.js";
export { clientTlsSocketOptions, loadCaCertificates, type PeerTlsOptions } from "./connection.js";
export { awaitResponse, newReqId, request } from "./request.js";

export interface PeerOptions {
  url: string;
  topics: string[];
  headers?: Record<string, string>;
  tls?: PeerTlsOptions;
  /** Keep reconnecting after failures and drops (default true). */
  reconnect?: boolean;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Bound on one connect + handshake attempt. */
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  /**
   * Ping the server this often and drop the link after two unanswered pings (default 5 s,
   * 0 disables). Without it a link whose traffic is silently dropped looks alive forever,
   * and a reconnect never starts.
   */
  pingIntervalMs?: number;
}

export type PeerEvents = LinkEvents;

/**
 * A reconnecting client. Emits "ready" after every successful handshake, "down" when a
 * link is lost, "event" for each Zeek event received (and "data" for every message).
 */
export class Peer extends EventEmitter<PeerEvents> {
  readonly id = randomUUID();
  private conn: Connection | undefined;
  private stopped = false;
  private delay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastAck: AckInfo | undefined;
  private retryPromptly = false;

  constructor(private readonly options: PeerOptions) {
    super();
    this.delay = options.initialDelayMs ?? 250;
  }

  get connected(): boolean {
    return this.conn?.connected === true;
  }

  get ack(): AckInfo | undefined {
    return this.connected ? this.lastAck : undefined;
  }

  get url(): string {
    return this.options.url;
  }

  /** Connects, after `delayMs` if given (retryNow() cuts that wait short). */
  start(delayMs = 0): this {
    this.stopped = false;
    if (delayMs > 0) this.scheduleConnect(delayMs);
    else this.connect();
    return this;
  }

  /** Resolves once connected (immediately if already), rejects after the timeout. */
  waitReady(timeoutMs: number): Promise<AckInfo> {
    if (this.connected && this.lastAck) return Promise.resolve(this.lastAck);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("ready", onReady);
        reject(new ProtocolError("request_timeout", `no connection to ${this.options.url} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = (ack: AckInfo): void => {
        clearTimeout(timer);
        resolve(ack);
      };
      this.once("ready", onReady);
    });
  }

  publish(topic: string, data: BrokerData): boolean {
    return this.conn?.publish(topic, data) ?? false;
  }

  publishEvent(topic: string, event: ZeekEvent): boolean {
    return this.publish(topic, eventToData(event));
  }

  /**
   * The other side says it is listening now: a pending retry starts at once (and the
   * backoff starts over), and an attempt under way that fails is retried without a wait.
   */
  retryNow(): void {
    if (this.stopped || this.connected) return;
    this.delay = this.options.initialDelayMs ?? 250;
    if (this.retryTimer !== undefined && this.conn === undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.connect();
    } else this.retryPromptly = true;
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const conn = this.conn;
    this.conn = undefined;
    await conn?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const o = this.options;
    const timeoutMs = o.connectTimeoutMs ?? 5000;
    const conn = new Connection({
      url: o.url,
      topics: o.topics,
      openTimeoutMs: timeoutMs,
      ackTimeoutMs: timeoutMs,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.maxFrameBytes !== undefined ? { maxFrameBytes: o.maxFrameBytes } : {}),
      ...(o.pingIntervalMs !== undefined ? { pingIntervalMs: o.pingIntervalMs } : {}),
    });
    this.conn = conn;
    conn.on("ready", (info) => {
      this.lastAck = info;
      this.delay = o.initialDelayMs ?? 250;
      this.retryPromptly = false;
      this.emit("ready", info);
    });
    conn.on("data", (topic, data) => this.emit("data", topic, data));
    // The connection decodes events only while someone listens for them; so does this.
    conn.on("event", (topic, event) => this.emit("event", topic, event));
    conn.on("server-error", (code, context) => this.emit("server-error", code, context));
    conn.on("bad-frame", (err) => this.emit("bad-frame", err));
    conn.on("down", (reason) => {
      if (this.conn === conn) this.conn = undefined;
      this.emit("down", reason);
      this.scheduleRetry();
    });
    conn.connect().catch((err: unknown) => {
      if (this.conn === conn) this.conn = undefined;
      this.emit("connect-error", err instanceof Error ? err : new Error(String(err)));
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped || this.options.reconnect === false) return;
    const wait = this.retryPromptly ? 0 : this.delay;
    this.retryPromptly = false;
    this.delay = Math.min(this.delay * 2, this.options.maxDelayMs ?? 5000);
    this.scheduleConnect(wait);
  }

  private scheduleConnect(wait: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, wait);
  }
}
