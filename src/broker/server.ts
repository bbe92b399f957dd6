// Serves a Hub over real WebSocket connections (plain or TLS) at /v1/messages/json.

import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { type Hub, type HubConnection } from "./hub.js";
import { WEBSOCKET_PATH, encodeError } from "./messages.js";

export interface TlsServerOptions {
  certFile: string;
  keyFile: string;
  /** CA bundle used to verify client certificates when `verifyClients` is set. */
  caFile?: string;
  passphrase?: string;
  /** Require and verify a client certificate (mutual TLS). */
  verifyClients?: boolean;
}

/**
 * Answers a plain (non-WebSocket) HTTP request. Returns true when it answered (or will
 * answer) the request, false to let the next handler, and finally the 426 reply, have it.
 * It sees the whole request (peer address, headers, TLS socket) so it can apply its own
 * access rules; see isLoopbackRequest.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/**
 * Tries handlers in order; the first that returns true owns the request. The list is read
 * at each request, so routes pushed onto it after the server started count too.
 */
export function chainHttpHandlers(handlers: readonly HttpHandler[]): HttpHandler {
  return async (req, res) => {
    for (const handler of handlers) if (await handler(req, res)) return true;
    return false;
  };
}

/** True when the request arrived over loopback (both ends), where no credentials are asked. */
export function isLoopbackRequest(req: IncomingMessage): boolean {
  const local = normalizeAddress(req.socket.localAddress ?? "");
  const remote = normalizeAddress(req.socket.remoteAddress ?? "");
  return isLoopbackAddress(local) && isLoopbackAddress(remote);
}

function isLoopbackAddress(address: string): boolean {
  return address === "::1" || address.startsWith("127.");
}

export interface HubServerOptions {
  host: string;
  /** 0 picks a free port; read it back from `port`. */
  port: number;
  tls?: TlsServerOptions;
  /**
   * Checked before the upgrade. false answers HTTP 401 and no WebSocket is opened; a
   * string admits the peer under that principal name (see Origin.principal); a Refusal
   * opens the WebSocket only to send the peer why, as a Broker error message, and close.
   */
  authorize?: (req: IncomingMessage) => boolean | string | Refusal;
  /**
   * Peers without a principal (clients) connected at once; more are refused with an error
   * message. Peers with a principal are authenticated and not counted, so a flood of
   * clients never locks agents or nodes out. Default 512.
   */
  maxConnections?: number;
  /**
   * Whether a peer admitted under this principal is authenticated (not counted against
   * maxConnections, not rate limited). Default: every principal is. A listener that gives
   * clients principals too (access levels) says which principals are peers of its own.
   */
  exemptPrincipal?: (principal: string) => boolean;
  /** A peer that has not completed the handshake by then is dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * Messages per second (sustained, and the burst allowed above it) from a peer without a
   * principal; what exceeds it is refused, and a peer that keeps going is dropped.
   */
  rateLimit?: { perSecond: number; burst: number };
  /**
   * Ping interval; peers that miss two pongs in a row are dropped. 0 disables. Peers
   * awaiting an answer are not pinged (HubConnection.awaitingReply); TCP keep-alive, which
   * starts after the same interval, covers them.
   */
  pingIntervalMs?: number;
  /** A peer whose unsent backlog exceeds this is disconnected rather than buffered forever. */
  maxBufferedBytes?: number;
  /**
   * Plain HTTP requests (GET /metrics and the like) on the same port. Requests it does not
   * answer, and all of them without a handler, get 426 naming the WebSocket endpoint. A
   * handler that throws answers 500.
   */
  httpHandler?: HttpHandler;
}

/** Why an upgrade is refused: sent as a Broker error message before the close. */
export interface Refusal {
  refuse: { code: string; message: string };
}

export const DEFAULT_MAX_CONNECTIONS = 512;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_RATE_LIMIT = { perSecond: 200, burst: 400 };

/** A daemon's `--client-rate-limit N`: N messages per second, in bursts of up to 2N. */
export function clientRate(perSecond: number): { perSecond: number; burst: number } {
  return { perSecond, burst: 2 * perSecond };
}
/** Raw sockets beyond the peers' limit, for upgrades in progress and refusals being sent. */
const RAW_SOCKET_SLACK = 256;

export class HubServer {
  private constructor(
    private readonly http: Server,
    private readonly wss: WebSocketServer,
    private readonly pingTimer: NodeJS.Timeout | undefined,
    readonly host: string,
    readonly port: number,
    readonly tls: boolean,
  ) {}

  get url(): string {
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `${this.tls ? "wss" : "ws"}://${host}:${this.port}${WEBSOCKET_PATH}`;
  }

  static async listen(hub: Hub, options: HubServerOptions): Promise<HubServer> {
    const tls = options.tls;
    const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    // Sockets that never finish an HTTP request are dropped after the same bound.
    const httpLimits = {
      headersTimeout: handshakeTimeoutMs,
      requestTimeout: handshakeTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, handshakeTimeoutMs / 2)),
    };
    const http = tls
      ? createHttpsServer({
          ...httpLimits,
          cert: readFileSync(tls.certFile),
          key: readFileSync(tls.keyFile),
          ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
          ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
          requestCert: tls.verifyClients === true,
          rejectUnauthorized: tls.verifyClients === true,
        })
      : createHttpServer(httpLimits);
    const handler = options.httpHandler;
    http.on("request", (req, res) => {
      void answerHttp(handler, req, res);
    });
    // The hard cap protects memory; the hub's own (smaller) limit answers with an error
    // message and keeps the connection, as Broker does for undecodable input.
    const wss = new WebSocketServer({ noServer: true, maxPayload: hub.maxFrameBytes * 4 + 1024 });
    const alive = new WeakMap<WebSocket, number>();
    const sentSincePing = new WeakSet<WebSocket>();
    const sessions = new WeakMap<WebSocket, HubConnection>();
    const interval = options.pingIntervalMs ?? 5000;
    const maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const limits: PeerLimits = { handshakeTimeoutMs, rate: options.rateLimit ?? DEFAULT_RATE_LIMIT };
    let clients = 0;
    let rawSockets = 0;
    // Bounds file descriptors before any byte is read: beyond the peers' limit and the slack,
    // a socket is closed at once. Authenticated peers are exempt from the peers' limit, so
    // the slack is what keeps room for them while clients flood the port.
    http.on("connection", (socket: Socket) => {
      rawSockets++;
      socket.once("close", () => rawSockets--);
      if (rawSockets > maxConnections + RAW_SOCKET_SLACK * 2) socket.destroy();
    });

    http.on("upgrade", (req, socket: Socket, head) => {
      socket.on("error", () => socket.destroy());
      const verdict = options.authorize ? options.authorize(req) : true;
      if (verdict === false) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      if (typeof verdict === "object") {
        refuse(wss, req, socket, head, verdict.refuse.code, verdict.refuse.message);
        return;
      }
      const principal = typeof verdict === "string" ? verdict : undefined;
      const exempt = principal !== undefined && (options.exemptPrincipal?.(principal) ?? true);
      if (!exempt) {
        if (clients >= maxConnections || rawSockets > maxConnections + RAW_SOCKET_SLACK) {
          const message = `connection limit of ${maxConnections} clients reached; try again later`;
          refuse(wss, req, socket, head, "connection_limit", message, 1013);
          return;
        }
        clients++;
        socket.once("close", () => clients--);
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const path = (req.url ?? "").split("?")[0];
        if (path !== WEBSOCKET_PATH) {
          ws.send(encodeError("invalid_uri", `Invalid URI - use ${WEBSOCKET_PATH}`));
          ws.close(1008, "invalid URI");
          return;
        }
        if (interval > 0) req.socket.setKeepAlive(true, interval);
        sessions.set(ws, attach(hub, ws, req, alive, sentSincePing, maxBuffered, principal, exempt, limits));
      });
    });

    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(options.port, options.host, () => {
        http.off("error", reject);
        resolve();
      });
    });

    const pingTimer =
      interval > 0
        ? setInterval(() => {
            for (const ws of wss.clients) {
              if (sessions.get(ws)?.awaitingReply) continue;
              // A ping sent behind our own data cannot be answered before the peer has read
              // that data: a deploy of a large configuration to 1,000 agents dropped every
              // slow reader for missing pongs. A peer we sent to since the last round is
              // judged by TCP instead (write errors, keep-alive) and by maxBufferedBytes.
              if (sentSincePing.has(ws)) {
                sentSincePing.delete(ws);
                alive.set(ws, 0);
                continue;
              }
              const missed = alive.get(ws) ?? 0;
              if (missed >= 2) {
                ws.terminate();
                continue;
              }
              alive.set(ws, missed + 1);
              ws.ping();
            }
          }, interval)
        : undefined;
    pingTimer?.unref();

    const addr = http.address() as AddressInfo;
    return new HubServer(http, wss, pingTimer, options.host, addr.port, tls !== undefined);
  }

  /** Closes all connections (1001) and stops listening. */
  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const ws of this.wss.clients) ws.close(1001, "Terminating");
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        for (const ws of this.wss.clients) ws.terminate();
      }, 1000);
      force.unref();
      this.wss.close(() => {
        this.http.close(() => {
          clearTimeout(force);
          resolve();
        });
        this.http.closeAllConnections();
      });
    });
  }
}

async function answerHttp(handler: HttpHandler | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (handler && (await handler(req, res))) return;
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    if (!res.writableEnded) res.end(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    return;
  }
  if (res.headersSent) return;
  res.writeHead(426, { "content-type": "text/plain" });
  res.end(`WebSocket endpoint: ${WEBSOCKET_PATH}\n`);
}

interface PeerLimits {
  handshakeTimeoutMs: number;
  rate: { perSecond: number; burst: number };
}

/** Opens the WebSocket only to say why the peer is not taken, then closes it. */
function refuse(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  code: string,
  message: string,
  closeCode = 1008,
): void {
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(encodeError(code, message));
    // Close reasons are limited to 123 bytes; the full text went in the error message.
    ws.close(closeCode, Buffer.from(message).subarray(0, 120).toString());
    const force = setTimeout(() => ws.terminate(), 2000);
    force.unref();
    ws.once("close", () => clearTimeout(force));
  });
}

/**
 * A token bucket per peer: true when a message may pass. Counting refusals lets a peer that
 * ignores them be dropped instead of costing a refusal per message forever.
 */
function rateLimiter(rate: { perSecond: number; burst: number }): () => "pass" | "refuse" | "drop" {
  let tokens = rate.burst;
  let last = performance.now();
  let refused = 0;
  return () => {
    const now = performance.now();
    tokens = Math.min(rate.burst, tokens + ((now - last) / 1000) * rate.perSecond);
    last = now;
    if (tokens >= 1) {
      tokens--;
      refused = 0;
      return "pass";
    }
    return ++refused > rate.burst ? "drop" : "refuse";
  };
}

function attach(
  hub: Hub,
  ws: WebSocket,
  req: IncomingMessage,
  alive: WeakMap<WebSocket, number>,
  sentSincePing: WeakSet<WebSocket>,
  maxBuffered: number,
  principal: string | undefined,
  exempt: boolean,
  limits: PeerLimits,
): HubConnection {
  let conn: HubConnection | undefined = undefined;
  conn = hub.accept({
    send(text) {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > maxBuffered) {
        ws.close(1008, "send buffer overflow");
        return;
      }
      ws.send(text);
      sentSincePing.add(ws);
    },
    sendSplit(head, tail) {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > maxBuffered) {
        ws.close(1008, "send buffer overflow");
        return;
      }
      // Two fragments of one text message: the shared tail is queued on the socket as is,
      // so a deploy to many agents holds one copy of the configuration, not one per agent.
      ws.send(head, { fin: false });
      ws.send(tail, { fin: true, binary: false });
      sentSincePing.add(ws);
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    ...(req.socket.remoteAddress !== undefined ? { remoteAddress: normalizeAddress(req.socket.remoteAddress) } : {}),
    ...(req.socket.remotePort !== undefined ? { remotePort: req.socket.remotePort } : {}),
    ...(principal !== undefined ? { principal } : {}),
  });
  alive.set(ws, 0);
  const handshakeTimer = setTimeout(() => {
    if (conn.subscribed !== undefined) return;
    conn.sendError("handshake_timeout", `no handshake within ${limits.handshakeTimeoutMs} ms`);
    conn.close(1008, "handshake timeout");
  }, limits.handshakeTimeoutMs);
  handshakeTimer.unref();
  const limited = exempt ? undefined : rateLimiter(limits.rate);
  ws.on("pong", () => alive.set(ws, 0));
  // A peer that pings us is alive too, also while we do not ping it.
  ws.on("ping", () => alive.set(ws, 0));
  ws.on("message", (data, isBinary) => {
    alive.set(ws, 0);
    // ws hands message listeners a Buffer under its default binaryType.
    const text = isBinary ? undefined : (data as Buffer).toString("utf8");
    const verdict = limited?.() ?? "pass";
    if (verdict === "drop") {
      conn.sendError("rate_limited", `more than ${limits.rate.perSecond} messages per second; closing`);
      conn.close(1008, "rate limit exceeded");
      return;
    }
    if (verdict === "refuse") {
      conn.refuse(text ?? "", `rate limit of ${limits.rate.perSecond} messages per second exceeded`, "rate_limited");
      return;
    }
    if (text === undefined) conn.receiveBinary();
    else conn.receive(text);
  });
  ws.on("close", () => {
    clearTimeout(handshakeTimer);
    conn.transportClosed();
  });
  ws.on("error", (err) => {
    // A frame over the hard cap ends here (ws closes with 1009); the hub just forgets it.
    hub.emit("transport-error", { origin: conn.origin, error: err });
    conn.transportClosed();
  });
  return conn;
}

/** IPv4 peers on a dual-stack socket show up as ::ffff:a.b.c.d; report the plain form. */
export function normalizeAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
