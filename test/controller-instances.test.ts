import { describe, expect, it } from "vitest";
import type { Origin } from "../src/broker/hub.js";
import { InstanceRegistry, type CheckedIn } from "../src/controller/instances.js";

function hubAgent(name: string, originId: string, host = "10.0.0.1"): CheckedIn {
  const origin: Origin = { id: originId, kind: "remote", remoteAddress: host };
  return { observed: { name, host }, agentId: `id-${originId}`, link: { kind: "hub", origin } };
}

function registry() {
  const dropped: string[] = [];
  return { dropped, instances: new InstanceRegistry((reqid) => dropped.push(reqid)) };
}

describe("instance registry", () => {
  it("welcomes only wanted, checked-in instances and makes them ready", () => {
    const { instances } = registry();
    instances.checkIn(hubAgent("a", "o1"));
    expect(instances.welcoming("a", "w1")).toBe(false);
    instances.want({ name: "a", host: "10.0.0.1" });
    expect(instances.welcoming("a", "w1")).toBe(true);
    expect(instances.welcoming("a", "w2")).toBe(false);
    expect(instances.phase("a")).toMatchObject({ kind: "welcoming", reqid: "w1" });
    instances.welcomeEnded("a", "other");
    expect(instances.phase("a").kind).toBe("welcoming");
    instances.welcomeEnded("a", "w1");
    expect(instances.markReady("a")).toBe(true);
    expect(instances.readyNames()).toEqual(["a"]);
    expect(instances.allReady()).toBe(true);
    expect(instances.markReady("nobody")).toBe(false);
  });

  it("drops a pending welcome whenever the agent or the want goes away", () => {
    const { instances, dropped } = registry();
    instances.want({ name: "a", host: "h" });
    instances.want({ name: "b", host: "h" });
    instances.checkIn(hubAgent("a", "o1"));
    instances.checkIn(hubAgent("b", "o2"));
    instances.welcoming("a", "wa");
    instances.welcoming("b", "wb");
    instances.forget("a");
    instances.unwant("b");
    expect(dropped).toEqual(["wa", "wb"]);
    expect(instances.phase("a").kind).toBe("offline");
    expect(instances.phase("b").kind).toBe("checked-in");
    expect(instances.wantedNames()).toEqual(["a"]);
    expect(instances.knownNames()).toEqual(["b"]);
    expect(instances.allReady()).toBe(false);
  });

  it("keeps the phase when an agent checks in again on its link, and starts over on a new one", () => {
    const { instances, dropped } = registry();
    instances.want({ name: "a", host: "h" });
    expect(instances.checkIn(hubAgent("a", "o1"))).toBeUndefined();
    instances.welcoming("a", "w1");
    instances.welcomeEnded("a", "w1");
    instances.markReady("a");
    expect(instances.checkIn(hubAgent("a", "o1"))?.agentId).toBe("id-o1");
    expect(instances.isReady("a")).toBe(true);
    instances.checkIn(hubAgent("a", "o2"));
    expect(instances.phase("a").kind).toBe("checked-in");
    expect(instances.agent("a")?.agentId).toBe("id-o2");
    instances.welcoming("a", "w2");
    instances.checkIn(hubAgent("a", "o3"));
    expect(dropped).toEqual(["w2"]);
  });

  it("lists agents and wanted instances by name, and forgets entries that hold nothing", () => {
    const { instances } = registry();
    for (const [name, origin] of [
      ["c", "o3"],
      ["a", "o1"],
      ["b", "o2"],
    ] as const)
      instances.checkIn(hubAgent(name, origin));
    expect(instances.knownNames()).toEqual(["a", "b", "c"]);
    instances.forget("b");
    instances.forget("missing");
    expect(instances.knownNames()).toEqual(["a", "c"]);
    expect(instances.isKnown("b")).toBe(false);
    expect(instances.wanted()).toEqual([]);
    // With nothing wanted, every wanted instance is (vacuously) ready, as upstream counts it.
    expect(instances.allReady()).toBe(true);
  });
});
