// The client side of the WebSocket JSON API: connect, send the subscription handshake,
// await the ack, then exchange data messages; reconnect with backoff when the link drops.
// PeerSession holds the protocol logic (no sockets); Peer adds the WebSocket and retries.

import { readFileSync, readdirSync } from "node:fs";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import type { BrokerData } from "./data.js";
import { ProtocolError, errorMessage } from "./errors.js";
import { type ZeekEvent, dataToEvent, decodeServerFrame, encodeDataMessage, encodeHandshake, eventToData } from "./messages.js";
import type { Codec, EventSpec } from "./schema.js";

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

export interface PeerTlsOptions {
  caFile?: string;
  /** A directory of CA certificates (OpenSSL's capath); added to `caFile`'s. */
  caPath?: string;
  certFile?: string;
  keyFile?: string;
  passphrase?: string;
  /** OpenSSL cipher list for TLS 1.2 and below; TLS 1.3 suites are not affected by it. */
  ciphers?: string;
  /** Verify the server's certificate (default true when a CA is given). */
  rejectUnauthorized?: boolean;
}

/**
 * The trust anchors for `caFile` and `caPath`, or undefined for the system's. Node has no
 * capath lookup, so every PEM certificate found in the directory is loaded up front.
 */
export function loadCaCertificates(caFile: string | undefined, caPath: string | undefined): string[] | undefined {
  if (!caFile && !caPath) return undefined;
  const pems: string[] = [];
  if (caFile) pems.push(readFileSync(caFile, "utf8"));
  if (caPath) {
    for (const entry of readdirSync(caPath).sort()) {
      let text: string;
      try {
        text = readFileSync(join(caPath, entry), "utf8");
      } catch {
        continue; // subdirectories, dangling hash links
      }
      pems.push(...(text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []));
    }
  }
  return pems;
}

/** Socket options for a TLS client; `rejectUnauthorized` is left to the caller. */
export function clientTlsSocketOptions(tls: PeerTlsOptions): {
  ca?: string[];
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  ciphers?: string;
} {
  const ca = loadCaCertificates(tls.caFile, tls.caPath);
  return {
    ...(ca ? { ca } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
    ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
    ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
  };
}

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

export interface PeerEvents {
  ready: [AckInfo];
  down: [string];
  data: [string, BrokerData];
  event: [string, ZeekEvent];
  "server-error": [string, string];
  "bad-frame": [ProtocolError];
}

/**
 * A reconnecting client. Emits "ready" after every successful handshake, "down" when a
 * link is lost, "event" for each Zeek event received (and "data" for every message).
 */
export class Peer extends EventEmitter<PeerEvents> {
  readonly id = randomUUID();
  private ws: WebSocket | undefined;
  private session: PeerSession | undefined;
  private stopped = false;
  private delay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastAck: AckInfo | undefined;
  private attempts = 0;

  constructor(private readonly options: PeerOptions) {
    super();
    this.delay = options.initialDelayMs ?? 250;
  }

  get connected(): boolean {
    return this.session?.isAcked === true && this.ws?.readyState === WebSocket.OPEN;
  }

  get ack(): AckInfo | undefined {
    return this.connected ? this.lastAck : undefined;
  }

  get url(): string {
    return this.options.url;
  }

  start(): this {
    this.stopped = false;
    this.connect();
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
    if (!this.connected || !this.session) return false;
    this.session.publish(topic, data);
    return true;
  }

  publishEvent(topic: string, event: ZeekEvent): boolean {
    return this.publish(topic, eventToData(event));
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = undefined;
    this.session = undefined;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      t.unref();
      ws.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
    });
  }

  private connect(): void {
    if (this.stopped) return;
    this.attempts++;
    const tls = this.options.tls;
    const ws = new WebSocket(this.options.url, {
      handshakeTimeout: this.options.connectTimeoutMs ?? 5000,
      maxPayload: (this.options.maxFrameBytes ?? 4 * 1024 * 1024) * 4 + 1024,
      ...(this.options.headers ? { headers: this.options.headers } : {}),
      ...(tls ? clientTlsSocketOptions(tls) : {}),
      ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized ?? (tls.caFile !== undefined || tls.caPath !== undefined) } : {}),
    });
    this.ws = ws;
    let ackTimer: NodeJS.Timeout | undefined;
    const session = new PeerSession(this.options.topics, (text) => ws.send(text), {
      ack: (info) => {
        if (ackTimer) clearTimeout(ackTimer);
        this.lastAck = info;
        this.delay = this.options.initialDelayMs ?? 250;
        this.attempts = 0;
        this.emit("ready", info);
      },
      data: (topic, data) => {
        this.emit("data", topic, data);
        if (this.listenerCount("event") === 0) return;
        let event: ZeekEvent;
        try {
          event = dataToEvent(data);
        } catch {
          return;
        }
        this.emit("event", topic, event);
      },
      serverError: (code, context) => this.emit("server-error", code, context),
      badFrame: (err) => this.emit("bad-frame", err),
    });
    this.session = session;
    let missedPongs = 0;
    let pingTimer: NodeJS.Timeout | undefined;
    ws.on("pong", () => (missedPongs = 0));
    ws.on("open", () => {
      session.start();
      ackTimer = setTimeout(() => ws.terminate(), this.options.connectTimeoutMs ?? 5000);
      const interval = this.options.pingIntervalMs ?? 5000;
      if (interval > 0) {
        pingTimer = setInterval(() => {
          if (missedPongs >= 2) {
            ws.terminate();
            return;
          }
          missedPongs++;
          ws.ping();
        }, interval);
        pingTimer.unref();
      }
    });
    ws.on("message", (data, isBinary) => {
      missedPongs = 0;
      if (!isBinary) session.receive(data.toString("utf8"));
    });
    ws.on("error", () => {
      // "close" follows and handles the retry; errors alone carry no extra information.
    });
    ws.on("close", (code, reason) => {
      if (ackTimer) clearTimeout(ackTimer);
      if (pingTimer) clearInterval(pingTimer);
      const wasUp = session.isAcked;
      if (this.ws === ws) {
        this.ws = undefined;
        this.session = undefined;
      }
      if (wasUp) this.emit("down", `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped || this.options.reconnect === false) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.options.maxDelayMs ?? 5000);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }
}

// ---------------------------------------------------------------------------------------
// Request/response over any event stream.

export interface EventStream {
  on(name: "event", listener: (topic: string, event: ZeekEvent) => void): unknown;
  off(name: "event", listener: (topic: string, event: ZeekEvent) => void): unknown;
}

export function newReqId(): string {
  return randomUUID();
}

/**
 * Waits for the first event matching `spec` whose first argument equals `reqid`. Events of
 * that name with bad arguments reject (the peer broke the contract); a timeout rejects
 * with code request_timeout.
 */
export function awaitResponse<A extends readonly Codec<unknown>[]>(
  stream: EventStream,
  spec: EventSpec<A>,
  reqid: string,
  timeoutMs: number,
): Promise<ReturnType<EventSpec<A>["parse"]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.off("event", listener);
      reject(new ProtocolError("request_timeout", `no ${spec.name} for request ${reqid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (_topic: string, event: ZeekEvent): void => {
      if (event.name !== spec.name) return;
      const first = event.args[0];
      if (!first || first.type !== "string" || first.value !== reqid) return;
      clearTimeout(timer);
      stream.off("event", listener);
      try {
        resolve(spec.parse(event));
      } catch (err) {
        reject(err);
      }
    };
    stream.on("event", listener);
  });
}

/**
 * Publishes a request on a peer and waits for its response by reqid. `peerName` names the
 * other side in the error when the link is down.
 */
export async function request<A extends readonly Codec<unknown>[]>(
  peer: Peer,
  topic: string,
  event: ZeekEvent,
  responseSpec: EventSpec<A>,
  timeoutMs: number,
  peerName = peer.url,
): Promise<ReturnType<EventSpec<A>["parse"]>> {
  const first = event.args[0];
  if (!first || first.type !== "string") throw new ProtocolError("invalid_event", "a request's first argument is its reqid");
  // Checked before the wait starts, so a request that cannot be sent leaves no timer behind.
  if (!peer.connected) throw new ProtocolError("disconnected", `not connected to ${peerName}`);
  const pending = awaitResponse(peer, responseSpec, first.value, timeoutMs);
  peer.publishEvent(topic, event);
  return pending;
}
