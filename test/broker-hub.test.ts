import { afterEach, describe, expect, it } from "vitest";
import { B } from "../src/broker/data.js";
import { Hub, deliveryEvent, type Delivery, type Origin } from "../src/broker/hub.js";
import { HubServer } from "../src/broker/server.js";
import { Peer } from "../src/broker/peer.js";
import { awaitResponse, request } from "../src/broker/request.js";
import { encodeEventMessage, type ZeekEvent } from "../src/broker/messages.js";
import { defineEvent, string, count } from "../src/broker/schema.js";
import { ProtocolError } from "../src/broker/errors.js";
import { RawClient, eventually } from "./helpers/ws.js";

const Ping = defineEvent("Test::ping_request", string, count);
const Pong = defineEvent("Test::ping_response", string, count);

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function startHub(maxFrameBytes?: number): Promise<{ hub: Hub; server: HubServer }> {
  const hub = new Hub({ endpointId: "hub-under-test", version: "9.9.9", ...(maxFrameBytes ? { maxFrameBytes } : {}) });
  const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
  cleanups.push(() => server.close());
  return { hub, server };
}

function startPeer(url: string, topics: string[]): Peer {
  const peer = new Peer({ url, topics, initialDelayMs: 50, maxDelayMs: 200 }).start();
  cleanups.push(() => peer.close());
  return peer;
}

describe("hub over real sockets", () => {
  it("acks the handshake with endpoint and version", async () => {
    const { server } = await startHub();
    const raw = await RawClient.open(server.url);
    cleanups.push(() => raw.close());
    raw.send('["a/b"]');
    const [ack] = await raw.waitFrames(1);
    expect(JSON.parse(ack!)).toEqual({ type: "ack", endpoint: "hub-under-test", version: "9.9.9" });
  });

  it("routes events between two peers by topic prefix, never back to the sender", async () => {
    const { server } = await startHub();
    const a = startPeer(server.url, ["test/a"]);
    const b = startPeer(server.url, ["test/b"]);
    await Promise.all([a.waitReady(3000), b.waitReady(3000)]);
    const seenByA: ZeekEvent[] = [];
    a.on("event", (_t, e) => seenByA.push(e));
    // b answers pings on its topic.
    b.on("event", (_topic, event) => {
      if (event.name !== Ping.name) return;
      const [reqid, n] = Ping.parse(event);
      b.publishEvent("test/a/replies", Pong.make(reqid, n + 1));
    });
    const [reqid, value] = await request(a, "test/b/requests", Ping.make("r-1", 41), Pong, 3000);
    expect([reqid, value]).toEqual(["r-1", 42]);
    // a published on test/b/..., which a is not subscribed to: no echo.
    expect(seenByA.map((e) => e.name)).toEqual([Pong.name]);
  });

  it("can keep peers from hearing each other, so only the daemon itself receives their messages", async () => {
    const hub = new Hub({ relayBetweenPeers: false });
    const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const got: Delivery[] = [];
    const local = hub.local(["n"], (d) => got.push(d));
    const a = startPeer(server.url, ["n"]);
    const b = startPeer(server.url, ["n"]);
    await Promise.all([a.waitReady(3000), b.waitReady(3000)]);
    const heardByB: ZeekEvent[] = [];
    b.on("event", (_t, e) => heardByB.push(e));
    a.publishEvent("n", Ping.make("from-a", 1));
    await eventually(() => got.length === 1);
    // The daemon's own messages still reach every subscribed peer.
    local.publishEvent("n", Pong.make("from-daemon", 2));
    await eventually(() => heardByB.length === 1);
    expect(heardByB.map((e) => e.name)).toEqual([Pong.name]);
  });

  it("delivers to in-process endpoints with the sender's origin", async () => {
    const { hub, server } = await startHub();
    const got: Delivery[] = [];
    const local = hub.local(["svc"], (d) => got.push(d));
    const peer = startPeer(server.url, ["svc/out"]);
    await peer.waitReady(3000);
    const reply = awaitResponse(peer, Pong, "r-2", 3000);
    peer.publishEvent("svc/in", Ping.make("r-2", 1));
    await eventually(() => got.length === 1);
    expect(got[0]!.origin.kind).toBe("remote");
    expect(got[0]!.origin.remoteAddress).toBe("127.0.0.1");
    expect(deliveryEvent(got[0]!)?.name).toBe(Ping.name);
    local.publishEvent("svc/out", Pong.make("r-2", 2));
    expect(await reply).toEqual(["r-2", 2]);
  });

  it("answers bad frames with error messages and keeps serving everyone", async () => {
    const { server } = await startHub(64 * 1024);
    const bad = await RawClient.open(server.url);
    cleanups.push(() => bad.close());
    bad.send("[]");
    await bad.waitFrames(1);
    const good = startPeer(server.url, ["t"]);
    await good.waitReady(3000);
    const received: ZeekEvent[] = [];
    good.on("event", (_t, e) => received.push(e));

    const cases: Array<[string, string]> = [
      ["{not json", "failed to decode JSON object"],
      ['{"type":"data-message","@data-type":"count","data":1}', "no topic in top-level JSON object"],
      ['{"type":"data-message","topic":"t","@data-type":"bogus","data":1}', "failed to decode JSON object"],
      ['{"type":"data-message","topic":"t","@data-type":"count","data":"1"}', "failed to decode JSON object"],
      ["[1,2,3]", "failed to decode JSON object"],
      [`{"type":"data-message","topic":"t","@data-type":"string","data":"${"x".repeat(70 * 1024)}"}`, "exceeds the limit"],
    ];
    for (const [i, [frame, context]] of cases.entries()) {
      bad.send(frame);
      const frames = await bad.waitFrames(i + 2);
      const err = JSON.parse(frames[i + 1]!) as { type: string; code: string; context: string };
      expect(err.type).toBe("error");
      expect(err.code).toBe("deserialization_failed");
      expect(err.context).toContain(context);
    }
    expect(bad.closed).toBeUndefined();
    // The same connection still publishes fine afterwards.
    bad.send(encodeEventMessage("t", Ping.make("still-here", 7)));
    await eventually(() => received.length === 1);
    expect(Ping.parse(received[0]!)).toEqual(["still-here", 7]);
  });

  it("rejects a bad handshake and closes that connection only", async () => {
    const { server } = await startHub();
    const raw = await RawClient.open(server.url);
    raw.send('{"topics":["x"]}');
    const frames = await raw.waitFrames(1);
    expect(JSON.parse(frames[0]!)).toEqual({ type: "error", code: "deserialization_failed", context: "subscriptions not an array" });
    expect((await raw.waitClosed()).code).toBe(1008);
  });

  it("refuses other URIs with invalid_uri and close code 1008", async () => {
    const { server } = await startHub();
    const raw = await RawClient.open(server.url.replace("/v1/messages/json", "/v2/other"));
    const frames = await raw.waitFrames(1);
    expect(JSON.parse(frames[0]!)).toEqual({ type: "error", code: "invalid_uri", context: "Invalid URI - use /v1/messages/json" });
    expect((await raw.waitClosed()).code).toBe(1008);
  });

  it("drops frames far above the limit by closing with 1009, and survives", async () => {
    const { server } = await startHub(1024);
    const raw = await RawClient.open(server.url);
    raw.send("[]");
    await raw.waitFrames(1);
    raw.send("x".repeat(10 * 1024));
    expect((await raw.waitClosed()).code).toBe(1009);
    const peer = startPeer(server.url, []);
    await peer.waitReady(3000);
  });

  it("treats an abrupt EOF as a disconnect", async () => {
    const { hub, server } = await startHub();
    const disconnects: string[] = [];
    hub.on("disconnect", (o: Origin) => disconnects.push(o.id));
    const raw = await RawClient.open(server.url);
    raw.send("[]");
    await raw.waitFrames(1);
    expect(hub.peers.length).toBe(1);
    raw.ws.terminate();
    await eventually(() => disconnects.length === 1);
    expect(hub.peers.length).toBe(0);
  });

  it("reconnects with backoff after the server comes back", async () => {
    const hub = new Hub();
    let server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    const port = server.port;
    const peer = startPeer(server.url, ["x"]);
    await peer.waitReady(3000);
    const downs: string[] = [];
    peer.on("down", (why) => downs.push(why));
    await server.close();
    await eventually(() => downs.length === 1);
    expect(peer.publishEvent("x", Ping.make("r", 1))).toBe(false);
    server = await HubServer.listen(hub, { host: "127.0.0.1", port });
    cleanups.push(() => server.close());
    await peer.waitReady(5000);
    expect(peer.connected).toBe(true);
  });

  it("times out a request nobody answers with a typed error", async () => {
    const { server } = await startHub();
    const peer = startPeer(server.url, ["x"]);
    await peer.waitReady(3000);
    const err = await request(peer, "nobody/home", Ping.make("r-9", 1), Pong, 200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("request_timeout");
  });

  it("does not deliver data that is not an event as an event", async () => {
    const { hub } = await startHub();
    const got: Delivery[] = [];
    hub.local(["d"], (d) => got.push(d));
    const other = hub.local([], () => undefined);
    other.publish("d", B.count(3));
    expect(got).toHaveLength(1);
    expect(deliveryEvent(got[0]!)).toBeUndefined();
  });
});
