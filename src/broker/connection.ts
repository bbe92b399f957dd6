// One WebSocket to a Broker endpoint: connect, handshake, exchange data messages, close. It
// never reconnects, so connect() can say why it failed (refused, DNS, TLS, not a Broker
// endpoint, timeout, closed), which a reconnecting peer hides and a command-line client
// must report.

import { readFileSync, readdirSync } from "node:fs";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import WebSocket from "ws";
import type { BrokerData } from "./data.js";
import type { ProtocolError } from "./errors.js";
import { type ZeekEvent, dataToEvent, decodeServerFrame, eventToData } from "./messages.js";
import { type AckInfo, PeerSession } from "./session.js";

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

// ---------------------------------------------------------------------------------------
// Classified connect errors.

export type ConnectErrorCode =
  /** Nothing listens on the port. */
  | "connection_refused"
  /** The host name does not resolve. */
  | "dns_failure"
  /** The TLS handshake failed (certificate, protocol or cipher mismatch). */
  | "tls_failure"
  /** An HTTP answer without a WebSocket upgrade: an HTTP server, or another path. */
  | "not_broker_endpoint"
  /** The endpoint refused us: an HTTP 401/403, an error frame, or a first frame that is not an ack. */
  | "handshake_rejected"
  /** No upgrade (phase "connect") or no ack (phase "handshake") in time. */
  | "timeout"
  /** The other side closed or reset the connection before the ack. */
  | "closed"
  /** Any other socket error (unreachable host, ...). */
  | "socket_error";

/** "connect": TCP, TLS and the WebSocket upgrade; "handshake": waiting for Broker's ack. */
export type ConnectPhase = "connect" | "handshake";

export class ConnectError extends Error {
  constructor(
    readonly code: ConnectErrorCode,
    readonly phase: ConnectPhase,
    message: string,
    /** The underlying error's own text (a socket error, an HTTP status line, a frame problem). */
    readonly detail: string,
    /** For handshake_rejected: the frame received instead of the ack. */
    readonly frame?: string,
  ) {
    super(message);
    this.name = "ConnectError";
  }
}

export function isConnectError(err: unknown): err is ConnectError {
  return err instanceof ConnectError;
}

/** The Broker error the endpoint sent in place of the ack, when that is why connecting failed. */
export function connectRefusal(err: unknown): { code: string; context: string } | undefined {
  if (!isConnectError(err) || err.frame === undefined) return undefined;
  try {
    const frame = decodeServerFrame(err.frame);
    return frame.kind === "error" ? { code: frame.code, context: frame.context } : undefined;
  } catch {
    // Not a Broker message: an ordinary failure.
    return undefined;
  }
}

const TLS_CODE = /^(ERR_SSL|ERR_TLS|ERR_OSSL|EPROTO|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH)/;
const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);

type SocketError = Error & { code?: unknown; errors?: Array<{ code?: unknown }> };

/** Sorts an error `ws` reported before the ack into a ConnectError. */
export function classifyConnectError(err: SocketError, phase: ConnectPhase, url: string): ConnectError {
  // Connecting to "localhost" tries every address and fails with an AggregateError.
  const codes = [err.code, ...(err.errors ?? []).map((e) => e.code)].filter((c): c is string => typeof c === "string");
  const detail = err.message;
  const make = (code: ConnectErrorCode, what: string): ConnectError => new ConnectError(code, phase, `${url}: ${what}`, detail);
  if (codes.includes("ECONNREFUSED")) return make("connection_refused", "connection refused");
  if (codes.some((c) => DNS_CODES.has(c))) return make("dns_failure", `host name not resolved (${detail})`);
  if (codes.includes("ETIMEDOUT") || /handshake has timed out/i.test(detail)) return make("timeout", `timed out in ${phase}`);
  if (codes.some((c) => TLS_CODE.test(c))) return make("tls_failure", `TLS error: ${detail}`);
  const status = /^Unexpected server response: (\d+)/.exec(detail);
  if (status) {
    if (status[1] === "401" || status[1] === "403") return make("handshake_rejected", `refused by the endpoint (HTTP ${status[1]})`);
    return make(
      "not_broker_endpoint",
      `HTTP ${status[1]} instead of a WebSocket upgrade: not a Broker WebSocket endpoint (an HTTP server, or a wrong path?)`,
    );
  }
  if (codes.some((c) => c === "ECONNRESET" || c === "EPIPE") || /socket hang up/i.test(detail)) {
    return make("closed", `connection closed by the other side in ${phase}`);
  }
  // ws's own upgrade checks (Sec-WebSocket-Accept, subprotocols) fail without a code.
  if (codes.length === 0 && phase === "connect") return make("not_broker_endpoint", `not a WebSocket endpoint: ${detail}`);
  return make("socket_error", detail);
}

// ---------------------------------------------------------------------------------------

export interface ConnectionOptions {
  url: string;
  topics: string[];
  headers?: Record<string, string>;
  tls?: PeerTlsOptions;
  /** Bound on TCP connect, TLS and the WebSocket upgrade (default 5 s). */
  openTimeoutMs?: number;
  /** Bound on the wait for the ack once the upgrade is done (default: openTimeoutMs). */
  ackTimeoutMs?: number;
  maxFrameBytes?: number;
  /**
   * Ping the server this often and drop the link after two unanswered pings (default 5 s,
   * 0 disables). Without it a link whose traffic is silently dropped looks alive forever.
   */
  pingIntervalMs?: number;
}

/** Events of a link to a Broker endpoint, shared by Connection and the reconnecting Peer. */
export interface LinkEvents {
  /** The handshake was acknowledged. */
  ready: [AckInfo];
  /** A link that had been acknowledged is gone. */
  down: [string];
  data: [string, BrokerData];
  event: [string, ZeekEvent];
  "server-error": [string, string];
  "bad-frame": [ProtocolError];
  /** Peer only: an attempt failed before the ack (a retry follows unless stopped). */
  "connect-error": [Error];
}

/** One socket; connect() may be called once. */
export class Connection extends EventEmitter<LinkEvents> {
  private ws: WebSocket | undefined;
  private session: PeerSession | undefined;
  private lastAck: AckInfo | undefined;

  constructor(private readonly options: ConnectionOptions) {
    super();
  }

  get url(): string {
    return this.options.url;
  }

  get connected(): boolean {
    return this.session?.isAcked === true && this.ws?.readyState === WebSocket.OPEN;
  }

  get ack(): AckInfo | undefined {
    return this.connected ? this.lastAck : undefined;
  }

  /** Connects and handshakes; resolves on the ack, rejects with a ConnectError. */
  connect(): Promise<AckInfo> {
    if (this.ws) return Promise.reject(new Error("Connection.connect() called twice"));
    const opts = this.options;
    const url = opts.url;
    const openTimeoutMs = opts.openTimeoutMs ?? 5000;
    const tls = opts.tls;
    const ws = new WebSocket(url, {
      handshakeTimeout: Math.max(1, openTimeoutMs),
      maxPayload: (opts.maxFrameBytes ?? 4 * 1024 * 1024) * 4 + 1024,
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(tls ? clientTlsSocketOptions(tls) : {}),
      ...(tls ? { rejectUnauthorized: tls.rejectUnauthorized ?? (tls.caFile !== undefined || tls.caPath !== undefined) } : {}),
    });
    this.ws = ws;
    return new Promise<AckInfo>((resolve, reject) => {
      let settled = false;
      let phase: ConnectPhase = "connect";
      let ackTimer: NodeJS.Timeout | undefined;
      let pingTimer: NodeJS.Timeout | undefined;
      let missedPongs = 0;
      let frame = "";
      const fail = (err: ConnectError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(ackTimer);
        ws.terminate();
        reject(err);
      };
      const rejected = (why: string): ConnectError =>
        new ConnectError("handshake_rejected", "handshake", `${url}: handshake not acknowledged: ${why}`, why, frame);
      const session = new PeerSession(opts.topics, (text) => ws.send(text), {
        ack: (info) => {
          if (settled) return;
          settled = true;
          clearTimeout(ackTimer);
          this.lastAck = info;
          const interval = opts.pingIntervalMs ?? 5000;
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
          // Emitted before anything else is read, so listeners are set up before the first data message.
          this.emit("ready", info);
          resolve(info);
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
        serverError: (code, context) => {
          if (!session.isAcked) fail(rejected(`error ${code}: ${context}`));
          else this.emit("server-error", code, context);
        },
        badFrame: (err) => {
          if (!session.isAcked) fail(rejected(err.message));
          else this.emit("bad-frame", err);
        },
      });
      this.session = session;
      ws.on("pong", () => (missedPongs = 0));
      ws.on("open", () => {
        phase = "handshake";
        session.start();
        ackTimer = setTimeout(
          () => fail(new ConnectError("timeout", "handshake", `${url}: no handshake ack in time`, "timed out")),
          opts.ackTimeoutMs ?? openTimeoutMs,
        );
      });
      ws.on("message", (data, isBinary) => {
        missedPongs = 0;
        if (isBinary) return;
        // ws hands message listeners a Buffer under its default binaryType.
        const text = (data as Buffer).toString("utf8");
        if (!session.isAcked) frame = text;
        session.receive(text);
      });
      ws.on("error", (err: SocketError) => fail(classifyConnectError(err, phase, url)));
      ws.on("close", (code, reason) => {
        clearTimeout(ackTimer);
        clearInterval(pingTimer);
        if (!settled) {
          const detail = phase === "connect" ? "connection closed" : "Connection to remote host was lost.";
          fail(new ConnectError("closed", phase, `${url}: connection closed in ${phase}`, detail));
          return;
        }
        if (session.isAcked) this.emit("down", `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ""})`);
      });
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
    const ws = this.ws;
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
}
