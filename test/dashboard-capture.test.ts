// The dashboard's reading of zmgmt's netstats answer and how it words capture health.

import { describe, expect, it } from "vitest";
// @ts-expect-error -- the page's own modules are plain browser JavaScript without types.
import { captureByNode, captureSummary } from "../src/controller/web/records.js";

interface Summary {
  text: string;
  title?: string;
  drops: boolean;
}
const summary = captureSummary as (c: unknown) => Summary;
const byNode = captureByNode as (results: unknown[]) => Map<string, unknown>;

/** A Result as the page sees it: upstream's field order, data already plain. */
function result(instance: string, data: unknown, success = true): unknown[] {
  return ["req-1", success, instance, data, undefined, undefined];
}

describe("dashboard capture health", () => {
  it("highlights drops and words the rate as zmgmt netstats does", () => {
    expect(summary({ received: 900, dropped: 100, link: 1000 })).toEqual({
      text: "recvd 900 dropped 100 (10.00%) link 1000",
      drops: true,
    });
    expect(summary({ received: 5, dropped: 0 })).toEqual({ text: "recvd 5 dropped 0 (0.00%)", drops: false });
    expect(summary({ received: 0, dropped: 0 }).text).toBe("recvd 0 dropped 0");
  });

  it("says n/a with the reason when a node cannot report, and nothing for nodes that do not capture", () => {
    expect(summary({ unavailable: "not a Zeek node: the built-in node does not capture" })).toEqual({
      text: "n/a",
      title: "not a Zeek node: the built-in node does not capture",
      drops: false,
    });
    expect(summary(undefined)).toEqual({ text: "", drops: false });
  });

  it("collects capture by node from every instance and skips failed or malformed answers", () => {
    const stats = (nodes: unknown[]) => JSON.stringify({ instance: "a", nodes });
    const map = byNode([
      result("a", stats([{ node: "w1", capture: { received: 1, dropped: 2 } }, { node: "m" }])),
      result("b", stats([{ node: "w2", capture: { unavailable: "node is CRASHED" } }])),
      result("c", "{not json"),
      result("d", undefined, false),
      result("e", JSON.stringify({ nodes: "nope" })),
    ]);
    expect([...map.keys()]).toEqual(["w1", "w2"]);
    expect(map.get("w1")).toEqual({ received: 1, dropped: 2 });
  });
});
