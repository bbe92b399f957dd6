// Plain HTTP on a hub's WebSocket port: handlers answer what they own, everything else
// keeps the 426 that names the WebSocket endpoint, and the WebSocket endpoint still works.

import { afterEach, describe, expect, it } from "vitest";
import { Hub } from "../src/broker/hub.js";
import { Connection } from "../src/broker/connection.js";
import { HubServer, chainHttpHandlers, isLoopbackRequest, type HttpHandler } from "../src/broker/server.js";

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function serve(httpHandler?: HttpHandler): Promise<HubServer> {
  const server = await HubServer.listen(new Hub({ version: "test" }), {
    host: "127.0.0.1",
    port: 0,
    ...(httpHandler ? { httpHandler } : {}),
  });
  cleanups.push(() => server.close());
  return server;
}

describe("HubServer httpHandler", () => {
  it("routes plain requests to the handler chain and answers the rest with 426", async () => {
    const seen: boolean[] = [];
    const hello: HttpHandler = (req, res) => {
      if (req.url !== "/hello") return false;
      seen.push(isLoopbackRequest(req));
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("hi\n");
      return true;
    };
    const later: HttpHandler = async (req, res) => {
      await new Promise((r) => setTimeout(r, 10));
      if (req.url !== "/later") return false;
      res.end("later\n");
      return true;
    };
    const broken: HttpHandler = (req) => {
      if (req.url === "/broken") throw new Error("boom");
      return false;
    };
    const server = await serve(chainHttpHandlers([hello, later, broken]));
    const base = `http://127.0.0.1:${server.port}`;

    const a = await fetch(`${base}/hello`);
    expect([a.status, await a.text()]).toEqual([200, "hi\n"]);
    expect(seen).toEqual([true]);
    const b = await fetch(`${base}/later`);
    expect([b.status, await b.text()]).toEqual([200, "later\n"]);
    const c = await fetch(`${base}/broken`);
    expect([c.status, await c.text()]).toEqual([500, "internal error: boom\n"]);
    const d = await fetch(`${base}/nothing`);
    expect([d.status, await d.text()]).toEqual([426, "WebSocket endpoint: /v1/messages/json\n"]);

    // The WebSocket endpoint on the same port is untouched.
    const conn = new Connection({ url: server.url, topics: ["t"] });
    cleanups.push(() => conn.close());
    await conn.connect();
  });

  it("without a handler every plain request gets 426", async () => {
    const server = await serve();
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(426);
  });
});
