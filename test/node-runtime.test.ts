// Node programs under a real agent: the managed-node library in a program of its own, and
// the default node program's script loading.

import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type { Peer } from "../src/broker/peer.js";
import { request } from "../src/broker/request.js";
import { AgentApi, agentTopic } from "../src/agent/api.js";
import { NodeOutputsCodec } from "../src/management/records.js";
import type { Configuration, Node, Result } from "../src/management/types.js";
import { TestEnv, freePort } from "./helpers/cluster.js";
import { resultString } from "../src/client/controller-client.js";
import { toZeekJson, zeekPort } from "../src/node/managed-node.js";

let env: TestEnv;
afterEach(async () => {
  await env?.cleanup();
});

const AGENT = "instance-1";
const fixture = (name: string): string => resolve(import.meta.dirname, "fixtures", name);

function config(nodes: Node[]): Configuration {
  return { id: randomUUID(), instances: [{ name: AGENT, host: "127.0.0.1" }], nodes };
}

async function setup(): Promise<Peer> {
  env = new TestEnv();
  const agent = await env.startAgent({ name: AGENT, extraArgs: ["--request-timeout", "4", "--restart-delay", "0.2"] });
  return env.dialAgent(agent.url, AGENT);
}

async function deploy(peer: Peer, cfg: Configuration): Promise<Result[]> {
  const [, results] = await request(
    peer,
    agentTopic(AGENT),
    AgentApi.deploy_request.make(randomUUID(), cfg, false),
    AgentApi.deploy_response,
    10_000,
  );
  return results;
}

async function dispatch(peer: Peer, action: string[], nodes: string[]): Promise<Result[]> {
  const [, results] = await request(
    peer,
    agentTopic(AGENT),
    AgentApi.node_dispatch_request.make(randomUUID(), action, nodes),
    AgentApi.node_dispatch_response,
    8000,
  );
  return results;
}

describe("node runtime", () => {
  it("runs any Node.js program built on the managed-node library", async () => {
    const peer = await setup();
    const results = await deploy(
      peer,
      config([
        {
          name: "custom",
          instance: AGENT,
          role: "WORKER",
          state: "RUNNING",
          env: { ZMGMT_NODE_COMMAND: `${process.execPath} ${fixture("custom-node.mjs")}` },
        },
      ]),
    );
    expect(results).toEqual([{ reqid: results[0]!.reqid, success: true, instance: AGENT, node: "custom" }]);
    const [greeting] = await dispatch(peer, ["get_id_value", "Custom::greeting"], ["custom"]);
    expect(greeting!.data).toEqual({ type: "string", value: '"hello from a custom node"' });
    const [bumped] = await dispatch(peer, ["bump", "5"], ["custom"]);
    expect(bumped!.data).toEqual({ type: "string", value: "5" });
    const [hits] = await dispatch(peer, ["get_id_value", "Custom::hits"], ["custom"]);
    expect(hits!.data).toEqual({ type: "string", value: "5" });
    const [failed] = await dispatch(peer, ["explode"], ["custom"]);
    expect(failed).toMatchObject({ success: false, error: "dispatch explode failed: deliberate failure", node: "custom" });
  });

  it("loads a node's scripts, and a broken script fails the deploy with its error output", async () => {
    const peer = await setup();
    const results = await deploy(
      peer,
      config([
        { name: "manager", instance: AGENT, role: "MANAGER", state: "RUNNING", env: {}, scripts: [fixture("script-sets-value.mjs")] },
        { name: "logger", instance: AGENT, role: "LOGGER", state: "RUNNING", env: {}, scripts: [fixture("script-broken.mjs")] },
      ]),
    );
    // Like upstream's deploy-error test: the agent times out, the broken node fails with
    // its output, the others succeed.
    expect(results[0]).toMatchObject({ success: false, error: "request timed out" });
    expect(results.find((r) => r.node === "manager")!.success).toBe(true);
    const logger = results.find((r) => r.node === "logger")!;
    expect(logger.success).toBe(false);
    expect(NodeOutputsCodec.decode(logger.data!, "data").stderr).toContain("this script is broken on purpose");
    const [value] = await dispatch(peer, ["get_id_value", "Site::loaded_by_script"], ["manager"]);
    expect(JSON.parse(resultString(value!)!)).toEqual({ ok: true, node: "manager" });
  });
});

describe("metrics", () => {
  it("serves Prometheus metrics on the node's metrics port", async () => {
    const peer = await setup();
    const metricsPort = await freePort();
    const results = await deploy(
      peer,
      config([{ name: "worker-01", instance: AGENT, role: "WORKER", state: "RUNNING", env: {}, metricsPort }]),
    );
    expect(results[0]!.success).toBe(true);
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).toContain('node="worker-01"');
  });
});

describe("Zeek-style JSON rendering", () => {
  it("renders ports, non-finite numbers, maps and sets as Zeek's to_json does", () => {
    expect(toZeekJson({ p: zeekPort(9000), n: Number.NaN, m: new Map([["a", 1]]), s: new Set([1, 2]), u: undefined })).toBe(
      '{"p":{"port":9000,"proto":"tcp"},"n":null,"m":{"a":1},"s":[1,2]}',
    );
  });
});
