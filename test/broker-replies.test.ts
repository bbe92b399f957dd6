// Request/answer routing on the hub (ReplyRouting): a peer waiting for an answer gets only
// its answer and no pings, since either would restart a zeek-client's receive timeout, and
// a request too large to decode still gets an answer its sender understands.

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { B } from "../src/broker/data.js";
import { Hub, type ReplyRouting } from "../src/broker/hub.js";
import { HubServer } from "../src/broker/server.js";
import {
  dataToEvent,
  decodeDataMessage,
  encodeEventMessage,
  eventToData,
  sniffEventFrame,
  type ZeekEvent,
} from "../src/broker/messages.js";
import { defineEvent, string } from "../src/broker/schema.js";
import { encodeDataPayload } from "../src/broker/codec.js";
import { eventually } from "./helpers/ws.js";

const Request = defineEvent("Test::get_request", string);
const Response = defineEvent("Test::get_response", string, string);
const Notice = defineEvent("Test::notify_change", string);

const routing: ReplyRouting = {
  topics: ["svc"],
  requestId: (e) => (e.name.endsWith("_request") && e.args[0]?.type === "string" ? e.args[0].value : undefined),
  responseId: (e) => (e.name.endsWith("_response") && e.args[0]?.type === "string" ? e.args[0].value : undefined),
  refusal: ({ name, reqid }, error) => (name === Request.name ? Response.make(reqid, `refused: ${error}`) : undefined),
};

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A subscribed raw peer that records events and pings. */
class Listener {
  readonly events: ZeekEvent[] = [];
  readonly errors: string[] = [];
  pings = 0;
  private constructor(readonly ws: WebSocket) {
    ws.on("ping", () => this.pings++);
    ws.on("message", (data) => {
      const text = (data as Buffer).toString("utf8");
      const json = JSON.parse(text) as { type: string };
      if (json.type === "data-message") this.events.push(dataToEvent(decodeDataMessage(text).data));
      else if (json.type === "error") this.errors.push(text);
    });
  }

  static async open(url: string, topics: string[]): Promise<Listener> {
    const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    const l = new Listener(ws);
    cleanups.push(() => ws.terminate());
    await new Promise<void>((res, rej) => {
      ws.once("open", () => res());
      ws.once("error", rej);
    });
    const acked = new Promise<void>((res) => ws.once("message", () => res()));
    ws.send(JSON.stringify(topics));
    await acked;
    return l;
  }

  names(): string[] {
    return this.events.map((e) => `${e.name}(${(e.args[0] as { value: string }).value})`);
  }
}

async function start(opts: { pingIntervalMs: number; maxFrameBytes?: number }) {
  const hub = new Hub({ relayBetweenPeers: false, replies: routing, ...(opts.maxFrameBytes ? { maxFrameBytes: opts.maxFrameBytes } : {}) });
  const requests: string[] = [];
  const local = hub.local(["svc"], (d) => {
    const e = dataToEvent(d.data);
    if (e.name === Request.name) requests.push(Request.parse(e)[0]);
  });
  const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0, pingIntervalMs: opts.pingIntervalMs });
  cleanups.push(() => server.close());
  return { hub, server, local, requests };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("reply routing", () => {
  it("a waiting peer hears only its own answer and no pings; an idle peer hears everything", async () => {
    const { server, local, requests } = await start({ pingIntervalMs: 100 });
    const waiting = await Listener.open(server.url, ["svc"]);
    const idle = await Listener.open(server.url, ["svc"]);
    waiting.ws.send(encodeEventMessage("svc", Request.make("mine")));
    await eventually(() => requests.includes("mine"), 3000, "request delivered");
    const pingsBefore = waiting.pings;
    const idlePingsBefore = idle.pings;

    // Traffic meant for others while the answer is outstanding.
    local.publishEvent("svc", Response.make("someone-else", "x"));
    local.publishEvent("svc", Notice.make("worker-01"));
    await sleep(700);
    expect(waiting.events).toEqual([]);
    expect(waiting.pings).toBe(pingsBefore);
    // The idle peer still gets all of it, pings included.
    expect(idle.names()).toEqual(["Test::get_response(someone-else)", "Test::notify_change(worker-01)"]);
    expect(idle.pings).toBeGreaterThan(idlePingsBefore + 2);

    local.publishEvent("svc", Response.make("mine", "answer"));
    await eventually(() => waiting.events.length === 1, 3000, "the answer");
    expect(waiting.names()).toEqual(["Test::get_response(mine)"]);
    expect(idle.names()).toContain("Test::get_response(mine)");

    // Answered, it is an ordinary peer again: pinged, and hearing broadcasts.
    await eventually(() => waiting.pings > pingsBefore, 3000, "pings to resume");
    local.publishEvent("svc", Notice.make("worker-02"));
    await eventually(() => waiting.events.length === 2, 3000, "the broadcast");
    expect(waiting.names()[1]).toBe("Test::notify_change(worker-02)");
  });

  it("keeps waiting for every outstanding request of a peer, each answered once", async () => {
    const { server, local, requests } = await start({ pingIntervalMs: 0 });
    const peer = await Listener.open(server.url, ["svc"]);
    peer.ws.send(encodeEventMessage("svc", Request.make("a")));
    peer.ws.send(encodeEventMessage("svc", Request.make("b")));
    await eventually(() => requests.length === 2, 3000, "requests delivered");
    local.publishEvent("svc", Response.make("a", "1"));
    local.publishEvent("svc", Notice.make("skipped: b is still outstanding"));
    local.publishEvent("svc", Response.make("b", "2"));
    local.publishEvent("svc", Notice.make("heard"));
    await eventually(() => peer.events.length === 3, 3000, "answers and the last notice");
    await sleep(100);
    expect(peer.names()).toEqual(["Test::get_response(a)", "Test::get_response(b)", "Test::notify_change(heard)"]);
  });

  it("settles the request of a peer that publishes without subscribing, so it is pinged again", async () => {
    const { server, local, requests } = await start({ pingIntervalMs: 100 });
    const peer = await Listener.open(server.url, []);
    peer.ws.send(encodeEventMessage("svc", Request.make("q")));
    await eventually(() => requests.includes("q"), 3000, "request delivered");
    await sleep(300);
    const before = peer.pings;
    await sleep(400);
    expect(peer.pings).toBe(before);
    local.publishEvent("svc", Response.make("q", "answer"));
    await eventually(() => peer.pings > before, 3000, "pings to resume");
    expect(peer.events).toEqual([]);
  });

  it("answers a request too large to decode with the response its sender waits for", async () => {
    const { server, requests } = await start({ pingIntervalMs: 0, maxFrameBytes: 64 * 1024 });
    const peer = await Listener.open(server.url, ["svc"]);
    const big = "x".repeat(70 * 1024);
    const event = { name: Request.name, args: [B.str("zeek-client-style"), B.str(big)] };
    // zeek-client's key order: sorted, with Python's separators.
    const sorted = `{"@data-type": "vector", "data": ${encodeDataPayload(eventToData(event)).replaceAll('","data":', '", "data": ')}, "topic": "svc", "type": "data-message"}`;
    peer.ws.send(sorted);
    // Our own encoder's order: the topic comes first.
    peer.ws.send(encodeEventMessage("svc", { name: Request.name, args: [B.str("ours"), B.str(big)] }));
    await eventually(() => peer.events.length === 2, 3000, "two answers");
    expect(requests).toEqual([]);
    expect(peer.errors).toHaveLength(2);
    const answers = peer.events.map((e) => Response.parse(e));
    expect(answers.map(([id]) => id)).toEqual(["zeek-client-style", "ours"]);
    for (const [, error] of answers) expect(error).toMatch(/^refused: frame of \d+ bytes exceeds the limit of 65536 bytes$/);
  });

  it("sends only the error message for oversized frames it cannot attribute to a request", async () => {
    const { server } = await start({ pingIntervalMs: 0, maxFrameBytes: 1024 });
    const peer = await Listener.open(server.url, ["svc"]);
    // Another topic, and an event that is not a request of this API.
    peer.ws.send(encodeEventMessage("elsewhere", Request.make("x".repeat(2000))));
    peer.ws.send(encodeEventMessage("svc", Notice.make("x".repeat(2000))));
    await eventually(() => peer.errors.length === 2, 3000, "two errors");
    await sleep(100);
    expect(peer.events).toEqual([]);
  });
});

describe("sniffEventFrame", () => {
  it("finds topic, event name and first argument in either key order, escapes included", () => {
    const event = { name: 'Test::a"b_request', args: [B.str("id\\1"), B.vec([B.str("later")])] };
    expect(sniffEventFrame(encodeEventMessage("t/x", event))).toEqual({ topic: "t/x", name: 'Test::a"b_request', firstArg: "id\\1" });
    const payload = encodeDataPayload(eventToData(event));
    const pythonOrder = `{"@data-type": "vector", "data": ${payload}, "topic": "t/x", "type": "data-message"}`;
    expect(sniffEventFrame(pythonOrder.replaceAll('","data":', '", "data": '))).toEqual({
      topic: "t/x",
      name: 'Test::a"b_request',
      firstArg: "id\\1",
    });
    const dataFirst = encodeEventMessage("t/x", event).replace(
      /\{"@data-type":"string","data":("(?:[^"\\]|\\.)*")\}/g,
      '{"data":$1,"@data-type":"string"}',
    );
    expect(dataFirst).toContain('{"data":"Test::a\\"b_request","@data-type":"string"}');
    expect(sniffEventFrame(dataFirst)).toEqual({ topic: "t/x", name: 'Test::a"b_request', firstArg: "id\\1" });
    expect(sniffEventFrame('{"topic":"t","@data-type":"count","data":1}')).toEqual({ topic: "t" });
  });
});
