// Per-connection limits of the WebSocket server: unauthenticated peers that flood messages
// are refused and then dropped, silent sockets are dropped after the handshake timeout, and
// peers the server authenticated are exempt from both the rate limit and the client cap.

import { afterEach, describe, expect, it } from "vitest";
import { Hub } from "../src/broker/hub.js";
import { HubServer, type HubServerOptions } from "../src/broker/server.js";
import { RawClient } from "./helpers/ws.js";

const servers: HubServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function serve(options: Partial<HubServerOptions>): Promise<HubServer> {
  const hub = new Hub();
  hub.local(["t"], () => undefined);
  const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0, pingIntervalMs: 0, ...options });
  servers.push(server);
  return server;
}

async function open(server: HubServer, headers?: Record<string, string>): Promise<RawClient> {
  const c = await RawClient.open(server.url, headers);
  clients.push(c);
  return c;
}

const message = JSON.stringify({ type: "data-message", topic: "t", "@data-type": "string", data: "x" });

describe("HubServer limits", () => {
  it("refuses a client's messages beyond its rate, then drops a client that keeps going", async () => {
    const server = await serve({ rateLimit: { perSecond: 5, burst: 5 } });
    const c = await open(server);
    c.send(JSON.stringify(["t"]));
    await c.waitFrames(1);
    for (let i = 0; i < 8; i++) c.send(message);
    const frames = await c.waitFrames(4);
    expect(frames.slice(1).every((f) => (JSON.parse(f) as { code?: string }).code === "rate_limited")).toBe(true);
    for (let i = 0; i < 20; i++) c.send(message);
    expect((await c.waitClosed()).code).toBe(1008);
  });

  it("does not rate-limit peers it authenticated", async () => {
    const server = await serve({
      rateLimit: { perSecond: 1, burst: 1 },
      authorize: (req) => (req.headers["x-test"] === "yes" ? "trusted" : true),
    });
    const c = await open(server, { "x-test": "yes" });
    c.send(JSON.stringify(["t"]));
    await c.waitFrames(1);
    for (let i = 0; i < 50; i++) c.send(message);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.frames).toHaveLength(1);
    expect(c.closed).toBeUndefined();
  });

  it("drops a peer that sends no handshake in time", async () => {
    const server = await serve({ handshakeTimeoutMs: 300 });
    const c = await open(server);
    const closed = await c.waitClosed(3000);
    expect(closed.code).toBe(1008);
    expect(JSON.parse(c.frames[0]!)).toMatchObject({ type: "error", code: "handshake_timeout" });
  });

  it("caps clients but not authenticated peers", async () => {
    const server = await serve({ maxConnections: 1, authorize: (req) => (req.headers["x-test"] === "yes" ? "trusted" : true) });
    const first = await open(server);
    first.send(JSON.stringify(["t"]));
    await first.waitFrames(1);
    const second = await open(server);
    expect(JSON.parse((await second.waitFrames(1))[0]!)).toMatchObject({ type: "error", code: "connection_limit" });
    expect((await second.waitClosed()).code).toBe(1013);
    const trusted = await open(server, { "x-test": "yes" });
    trusted.send(JSON.stringify(["t"]));
    expect(JSON.parse((await trusted.waitFrames(1))[0]!)).toMatchObject({ type: "ack" });
  });
});
