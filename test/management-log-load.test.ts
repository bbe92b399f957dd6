// Management logs of a real controller, agent and supervisor under client load: what a
// get-nodes costs in log bytes at the default level, that a client's 3 MB reqid is not
// copied into the log, and that rotation bounds the disk a busy daemon uses.

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { request } from "../src/broker/peer.js";
import { Peer } from "../src/broker/peer.js";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import { CONTROLLER_TOPIC, ControllerApi } from "../src/controller/api.js";
import type { Configuration } from "../src/management/types.js";
import { TestEnv } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
const peers: Peer[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const p of peers.splice(0)) await p.close();
  await env?.cleanup();
});

const AGENT_ARGS = ["--request-timeout", "10", "--restart-delay", "0.2", "--stop-timeout", "3"];

/** Bytes in every management log file (rotated ones included) under `dir`, per file. */
function managementLogs(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith("management-")) out.set(p, statSync(p).size);
    }
  };
  walk(dir);
  return out;
}

function total(m: Map<string, number>): number {
  return [...m.values()].reduce((a, b) => a + b, 0);
}

async function cluster(logEnv: Record<string, string> = {}): Promise<{ client: ControllerClient; url: string }> {
  env = new TestEnv("zmgmt-logload-");
  const controller = await env.startController({ requestTimeoutSec: 8, env: logEnv });
  await env.startAgent({ name: "inst-1", controllerPort: controller.port, extraArgs: AGENT_ARGS, env: logEnv });
  const client = await ControllerClient.connect({ url: `127.0.0.1:${controller.port}`, requestTimeoutMs: 20_000 });
  clients.push(client);
  await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === 1, 15_000, "agent check-in");
  const config: Configuration = {
    id: randomUUID(),
    instances: [{ name: "inst-1", host: "0.0.0.0" }],
    nodes: ["manager", "worker-01", "worker-02"].map((name, i) => ({
      name,
      instance: "inst-1",
      role: i === 0 ? "MANAGER" : "WORKER",
      state: "RUNNING",
      env: {},
    })),
  };
  expect((await client.stageConfiguration(config)).filter((r) => !r.success)).toEqual([]);
  expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
  await eventually(
    async () => (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.state === "RUNNING").length >= 3,
    15_000,
    "nodes running",
  );
  return { client, url: controller.url };
}

describe("management logs under load", () => {
  it("a get-nodes costs little log volume at the default level, across controller, agent and supervisor", async () => {
    const { client } = await cluster();
    // Let start-up and deploy lines settle before measuring.
    await new Promise((r) => setTimeout(r, 500));
    const before = total(managementLogs(env.dir));
    const requests = 200;
    for (let i = 0; i < requests; i++) await client.getNodes();
    await new Promise((r) => setTimeout(r, 500));
    const perRequest = (total(managementLogs(env.dir)) - before) / requests;
    console.log(`management log bytes per get-nodes (controller + agent + supervisor): ${perRequest.toFixed(0)}`);
    // Read-only queries are DEBUG traffic; at INFO they must not write a line each (they
    // wrote about 1.2 kB per request before).
    expect(perRequest).toBeLessThan(50);
  });

  it("does not copy a client's 3 MB reqid into the log, and rotation bounds a daemon's log files", async () => {
    const maxBytes = 20_000;
    const { url } = await cluster({ ZMGMT_LOG_MAX_BYTES: String(maxBytes), ZMGMT_LOG_KEEP: "2" });
    const peer = new Peer({ url, topics: [CONTROLLER_TOPIC], initialDelayMs: 50, maxDelayMs: 200 }).start();
    peers.push(peer);
    await peer.waitReady(10_000);
    const controllerDir = join(env.dir, "state", "nodes", "controller");
    const requests = 8;
    for (let i = 0; i < requests; i++) {
      const huge = `${i}-${"q".repeat(3 * 1024 * 1024)}`;
      // A request the controller logs at INFO: a stage of a configuration that fails validation.
      const bad: Configuration = {
        id: `cfg-${i}`,
        instances: [],
        nodes: [{ name: "n", instance: "nowhere", role: "WORKER", state: "RUNNING", env: {} }],
      };
      const [, results] = await request(
        peer,
        CONTROLLER_TOPIC,
        ControllerApi.stage_configuration_request.make(huge, bad),
        ControllerApi.stage_configuration_response,
        20_000,
      );
      expect(results.length).toBeGreaterThan(0);
      expect(results.filter((r) => r.success)).toEqual([]);
    }
    await new Promise((r) => setTimeout(r, 500));
    const files = managementLogs(controllerDir);
    // Each request quotes its 3 MB id (rx and tx): in full that would be 60 MB. Capped, the
    // lines still fill more than one file, and rotation keeps the live file and two more.
    expect([...files.keys()].map((f) => f.slice(controllerDir.length + 1)).sort()).toEqual([
      "management-controller.log",
      "management-controller.log.1",
      "management-controller.log.2",
    ]);
    for (const size of files.values()) expect(size).toBeLessThanOrEqual(maxBytes);
  });
});
