// Serves a Hub over real WebSocket connections (plain or TLS) at /v1/messages/json.

import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
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

export interface HubServerOptions {
  host: string;
  /** 0 picks a free port; read it back from `port`. */
  port: number;
  tls?: TlsServerOptions;
  /**
   * Checked before the upgrade. false answers HTTP 401 and no WebSocket is opened; a
   * string admits the peer under that principal name (see Origin.principal).
   */
  authorize?: (req: IncomingMessage) => boolean | string;
  /**
   * Ping interval; peers that miss two pongs in a row are dropped. 0 disables. Peers
   * awaiting an answer are not pinged (HubConnection.awaitingReply); TCP keep-alive, which
   * starts after the same interval, covers them.
   */
  pingIntervalMs?: number;
  /** A peer whose unsent backlog exceeds this is disconnected rather than buffered forever. */
  maxBufferedBytes?: number;
}

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
    const http = tls
      ? createHttpsServer({
          cert: readFileSync(tls.certFile),
          key: readFileSync(tls.keyFile),
          ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
          ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
          requestCert: tls.verifyClients === true,
          rejectUnauthorized: tls.verifyClients === true,
        })
      : createHttpServer();
    http.on("request", (_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" });
      res.end(`WebSocket endpoint: ${WEBSOCKET_PATH}\n`);
    });
    // The hard cap protects memory; the hub's own (smaller) limit answers with an error
    // message and keeps the connection, as Broker does for undecodable input.
    const wss = new WebSocketServer({ noServer: true, maxPayload: hub.maxFrameBytes * 4 + 1024 });
    const alive = new WeakMap<WebSocket, number>();
    const sentSincePing = new WeakSet<WebSocket>();
    const sessions = new WeakMap<WebSocket, HubConnection>();
    const interval = options.pingIntervalMs ?? 5000;
    const maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;

    http.on("upgrade", (req, socket: Socket, head) => {
      socket.on("error", () => socket.destroy());
      const verdict = options.authorize ? options.authorize(req) : true;
      if (verdict === false) {
        socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const principal = typeof verdict === "string" ? verdict : undefined;
      wss.handleUpgrade(req, socket, head, (ws) => {
        const path = (req.url ?? "").split("?")[0];
        if (path !== WEBSOCKET_PATH) {
          ws.send(encodeError("invalid_uri", `Invalid URI - use ${WEBSOCKET_PATH}`));
          ws.close(1008, "invalid URI");
          return;
        }
        if (interval > 0) req.socket.setKeepAlive(true, interval);
        sessions.set(ws, attach(hub, ws, req, alive, sentSincePing, maxBuffered, principal));
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

function attach(
  hub: Hub,
  ws: WebSocket,
  req: IncomingMessage,
  alive: WeakMap<WebSocket, number>,
  sentSincePing: WeakSet<WebSocket>,
  maxBuffered: number,
  principal: string | undefined,
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
  ws.on("pong", () => alive.set(ws, 0));
  // A peer that pings us is alive too, also while we do not ping it.
  ws.on("ping", () => alive.set(ws, 0));
  ws.on("message", (data, isBinary) => {
    alive.set(ws, 0);
    if (isBinary) conn.receiveBinary();
    // ws hands message listeners a Buffer under its default binaryType.
    else conn.receive((data as Buffer).toString("utf8"));
  });
  ws.on("close", () => conn.transportClosed());
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
