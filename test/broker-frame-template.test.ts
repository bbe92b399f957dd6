import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { EventFrameTemplate } from "../src/broker/frame-template.js";
import { Hub, type Origin } from "../src/broker/hub.js";
import { dataToEvent, decodeDataMessage, encodeEventMessage, encodeHandshake } from "../src/broker/messages.js";
import { HubServer } from "../src/broker/server.js";
import { AgentApi, agentTopic } from "../src/agent/api.js";
import type { Configuration } from "../src/management/types.js";
import { configurationArb } from "./chaos/arbitraries.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function templateFor(config: Configuration, force: boolean): EventFrameTemplate {
  const sample = AgentApi.deploy_request.make("", config, force);
  return new EventFrameTemplate(sample.name, sample.args.slice(1));
}

const reqidArb = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 20 }));
const instanceArb = fc.oneof(fc.constantFrom("agent-1", "sim-0001", "a b"), fc.string({ maxLength: 16 }));

describe("EventFrameTemplate", () => {
  it("splices topic and request id into exactly the bytes a full encoding gives", () => {
    fc.assert(
      fc.property(configurationArb, reqidArb, instanceArb, fc.boolean(), (config, reqid, instance, force) => {
        const topic = agentTopic(instance);
        const full = encodeEventMessage(topic, AgentApi.deploy_request.make(reqid, config, force));
        expect(templateFor(config, force).frame(topic, reqid)).toBe(full);
      }),
      { numRuns: 300 },
    );
  });

  it("gives a frame that decodes to the same deploy_request as the full encoding", () => {
    fc.assert(
      fc.property(configurationArb, reqidArb, instanceArb, (config, reqid, instance) => {
        const topic = agentTopic(instance);
        const spliced = decodeDataMessage(templateFor(config, false).frame(topic, reqid));
        const full = decodeDataMessage(encodeEventMessage(topic, AgentApi.deploy_request.make(reqid, config, false)));
        expect(spliced).toEqual(full);
        const [gotId, gotConfig, gotForce] = AgentApi.deploy_request.parse(dataToEvent(spliced.data));
        expect(gotId).toBe(reqid);
        expect(gotForce).toBe(false);
        expect(gotConfig).toEqual(AgentApi.deploy_request.parse(dataToEvent(full.data))[1]);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps the shared tail identical for every request id and topic", () => {
    const config: Configuration = { id: "c1", instances: [{ name: "a", host: "0.0.0.0" }], nodes: [] };
    const t = templateFor(config, false);
    expect(t.splice("x/a", "r1").tail).toBe(t.splice("x/b", "r2").tail);
    expect(t.tailBuffer().toString("utf8")).toBe(t.tail);
  });
});

describe("a spliced frame over a real socket", () => {
  it("arrives as one text message equal to the full encoding, also when its tail is sent as a second fragment", async () => {
    const hub = new Hub({ relayBetweenPeers: false });
    const server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    cleanups.push(() => server.close());
    const origins: Origin[] = [];
    hub.on("connect", (o: Origin) => origins.push(o));
    const topic = agentTopic("big");
    const ws = new WebSocket(server.url);
    cleanups.push(() => ws.terminate());
    const frames: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.once("error", reject);
      ws.once("open", () => ws.send(encodeHandshake([topic])));
      ws.on("message", (raw) => {
        frames.push((raw as Buffer).toString("utf8"));
        if (frames.length === 1) resolve();
      });
    });
    // Large enough that the tail goes out as its own fragment, and with multi-byte text.
    const nodes = Array.from({ length: 200 }, (_, i) => ({
      name: `worker-${i}-\u00e9\u4e2d`,
      instance: "big",
      role: "WORKER" as const,
      state: "RUNNING" as const,
      env: { K: "v".repeat(100) },
    }));
    const config: Configuration = { id: randomUUID(), instances: [{ name: "big", host: "0.0.0.0" }], nodes };
    const t = templateFor(config, false);
    expect(t.tail.length).toBeGreaterThan(16 * 1024);
    const reqids = [randomUUID(), randomUUID()];
    for (const reqid of reqids) expect(hub.sendFrameTo(origins[0]!.id, t.splice(topic, reqid), () => t.tailBuffer())).toBe(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("frames did not arrive")), 10_000);
      const check = (): void => {
        if (frames.length >= 3) {
          clearTimeout(timer);
          resolve();
        } else setTimeout(check, 20);
      };
      check();
    });
    expect(frames.slice(1)).toEqual(reqids.map((r) => encodeEventMessage(topic, AgentApi.deploy_request.make(r, config, false))));
  });
});
