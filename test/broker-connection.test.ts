// One-socket connections against real listeners: connect() resolves on the ack, and every
// way of failing before it comes out as a ConnectError with its own code.

import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Hub } from "../src/broker/hub.js";
import { HubServer } from "../src/broker/server.js";
import { Connection, ConnectError, type ConnectErrorCode } from "../src/broker/connection.js";
import { ProtocolError } from "../src/broker/errors.js";
import { request } from "../src/broker/request.js";
import { defineEvent, count, string } from "../src/broker/schema.js";
import { WebSocketServer } from "ws";
import { freePort } from "./helpers/cluster.js";

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function listen(server: Server | HttpServer): Promise<number> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)));
}

async function connectError(
  url: string,
  options: { openTimeoutMs?: number; ackTimeoutMs?: number; tls?: object } = {},
): Promise<ConnectError> {
  const conn = new Connection({ url, topics: ["t"], ...options });
  cleanups.push(() => conn.close());
  const err: unknown = await conn.connect().then(
    () => new Error("connected"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

function expectCode(err: ConnectError, code: ConnectErrorCode, phase: "connect" | "handshake"): void {
  expect({ code: err.code, phase: err.phase }).toEqual({ code, phase });
}

describe("Connection.connect", () => {
  it("resolves on the ack of a real hub, carries data, and reports the drop once", async () => {
    const hub = new Hub({ endpointId: "hub-x", version: "9.9.9" });
    const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const conn = new Connection({ url: server.url, topics: ["t"] });
    const ack = await conn.connect();
    expect(ack).toEqual({ endpoint: "hub-x", version: "9.9.9" });
    expect(conn.connected).toBe(true);
    const downs: string[] = [];
    conn.on("down", (r) => downs.push(r));
    await server.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(conn.connected).toBe(false);
    expect(downs).toHaveLength(1);
  });

  it("connection refused: a port nobody listens on fails at once", async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await connectError(`ws://127.0.0.1:${port}/v1/messages/json`, { openTimeoutMs: 5000 });
    expectCode(err, "connection_refused", "connect");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("an HTTP server is not a Broker endpoint", async () => {
    const port = await listen(createHttpServer((_req, res) => res.end("hello")));
    const err = await connectError(`ws://127.0.0.1:${port}/v1/messages/json`);
    expectCode(err, "not_broker_endpoint", "connect");
    expect(err.detail).toBe("Unexpected server response: 200");
    expect(err.message).toMatch(/not a Broker WebSocket endpoint/);
  });

  it("a listener that never answers times out in connect", async () => {
    const port = await listen(createServer(() => undefined));
    const started = Date.now();
    const err = await connectError(`ws://127.0.0.1:${port}/v1/messages/json`, { openTimeoutMs: 300 });
    expectCode(err, "timeout", "connect");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("a listener that hangs up is reported as closed", async () => {
    const port = await listen(createServer((s) => s.destroy()));
    const err = await connectError(`ws://127.0.0.1:${port}/v1/messages/json`);
    expectCode(err, "closed", "connect");
  });

  it("a WebSocket server that upgrades but never acks times out in the handshake", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => r());
        }),
    );
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    const err = await connectError(`ws://127.0.0.1:${port}/v1/messages/json`, { ackTimeoutMs: 300 });
    expectCode(err, "timeout", "handshake");
  });

  it("a hub asked on the wrong path rejects the handshake, and the frame is kept", async () => {
    const hub = new Hub({ endpointId: "hub-x", version: "9.9.9" });
    const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const err = await connectError(server.url.replace("/v1/messages/json", "/elsewhere"));
    expectCode(err, "handshake_rejected", "handshake");
    expect(JSON.parse(err.frame!)).toMatchObject({ type: "error", code: "invalid_uri" });
  });

  it("TLS to a plain listener is a TLS failure", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    const err = await connectError(`wss://127.0.0.1:${port}/v1/messages/json`, { tls: { rejectUnauthorized: false } });
    expectCode(err, "tls_failure", "connect");
  });

  it("a host name that does not resolve is a DNS failure", async () => {
    const err = await connectError("ws://no-such-host.invalid:2149/v1/messages/json", { openTimeoutMs: 8000 });
    expectCode(err, "dns_failure", "connect");
  }, 15_000);
});

describe("requests over one connection", () => {
  const Ping = defineEvent("Test::ping_request", string, count);
  const Pong = defineEvent("Test::ping_response", string, count);

  it("fail as soon as the link goes down when asked to, instead of at the timeout", async () => {
    const hub = new Hub({ endpointId: "hub-x", version: "9.9.9" });
    const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    const conn = new Connection({ url: server.url, topics: ["t"] });
    cleanups.push(() => conn.close());
    await conn.connect();
    const started = Date.now();
    const pending = request(conn, "nobody/home", Ping.make("r-1", 1), Pong, { timeoutMs: 10_000, failOnDown: true }).catch(
      (e: unknown) => e,
    );
    await server.close();
    const err = await pending;
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("disconnected");
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
