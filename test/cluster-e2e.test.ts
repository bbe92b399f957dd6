// The whole system: a controller, two or three agents (each with its supervisor) and their
// nodes as real processes on loopback, driven through the Controller API exactly as
// zeek-client drives it.

import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import {
  ControllerClient,
  resultConfiguration,
  resultInstances,
  resultNodeStatuses,
  resultString,
} from "../src/client/controller-client.js";
import type { Configuration, Node, NodeStatus, Result } from "../src/management/types.js";
import { TestEnv, freePort, pidAlive } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { QUICK_AGENT_ARGS as AGENT_ARGS } from "./helpers/scope.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

function node(name: string, instance: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

async function connect(port: number): Promise<ControllerClient> {
  const c = await ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs: 20_000 });
  clients.push(c);
  return c;
}

async function waitInstances(client: ControllerClient, n: number): Promise<void> {
  await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === n, 15_000, `${n} instances`);
}

async function nodeStates(client: ControllerClient): Promise<Map<string, NodeStatus & { instance: string }>> {
  const out = new Map<string, NodeStatus & { instance: string }>();
  for (const r of await client.getNodes()) {
    for (const s of resultNodeStatuses(r) ?? []) if (s.mgmtRole === "NONE") out.set(s.node, { ...s, instance: r.instance! });
  }
  return out;
}

async function allRunning(client: ControllerClient, count: number): Promise<Map<string, NodeStatus & { instance: string }>> {
  return eventually(
    async () => {
      const m = await nodeStates(client);
      return m.size === count && [...m.values()].every((s) => s.state === "RUNNING") ? m : undefined;
    },
    15_000,
    `${count} nodes RUNNING`,
  );
}

function twoInstanceConfig(): Configuration {
  return {
    id: randomUUID(),
    instances: [
      { name: "instance-1", host: "0.0.0.0" },
      { name: "instance-2", host: "0.0.0.0" },
    ],
    nodes: [
      node("manager", "instance-1", "MANAGER"),
      node("logger-01", "instance-1", "LOGGER"),
      node("proxy-01", "instance-2", "PROXY"),
      node("worker-01", "instance-1", "WORKER", { interface: "lo" }),
      node("worker-02", "instance-2", "WORKER", { interface: "lo", env: { ROLE_NOTE: "second" } }),
    ],
  };
}

async function twoAgentCluster(): Promise<{ client: ControllerClient; controllerPort: number }> {
  env = new TestEnv();
  const controller = await env.startController({ requestTimeoutSec: 8 });
  await env.startAgent({ name: "instance-1", controllerPort: controller.port, extraArgs: AGENT_ARGS });
  await env.startAgent({ name: "instance-2", controllerPort: controller.port, extraArgs: AGENT_ARGS });
  const client = await connect(controller.port);
  await waitInstances(client, 2);
  return { client, controllerPort: controller.port };
}

function successIds(results: Result[]): string[] {
  return results.filter((r) => r.success && !r.node && !r.instance && r.data?.type === "string").map((r) => resultString(r)!);
}

describe("controller + agents + nodes", () => {
  it("passes agents' change, log and error notices on to clients: `zmgmt monitor --json` shows a crash as it happens", async () => {
    const { client, controllerPort } = await twoAgentCluster();
    await client.stageConfiguration(twoInstanceConfig());
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const victim = (await allRunning(client, 5)).get("worker-02")!;
    // The crash must come after monitor has subscribed: the controller counts completed
    // handshakes (a fixed wait was sometimes shorter than a CLI start on a loaded CI host).
    const handshakes = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${controllerPort}/metrics`)).text();
      return Number(/^zmgmt_websocket_connections_total (\d+)$/m.exec(text)?.[1]);
    };
    const before = await handshakes();
    expect(before).toBeGreaterThan(0);
    const monitor = env.spawnCli(["--controller", `127.0.0.1:${controllerPort}`, "monitor", "--json"]);
    await eventually(async () => (await handshakes()) > before, 15_000, "monitor's handshake with the controller");
    process.kill(victim.pid!, "SIGKILL");
    const lines = await eventually(
      () => {
        const parsed = monitor
          .output()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        const text = JSON.stringify(parsed);
        return text.includes("CRASHED") && text.includes("SIGKILL") ? parsed : undefined;
      },
      15_000,
      "monitor to show worker-02's crash",
    );
    expect(JSON.stringify(lines)).toContain("worker-02");
  });

  it("stages, deploys across two agents and reports every node RUNNING", async () => {
    const { client } = await twoAgentCluster();
    const cfg = twoInstanceConfig();
    const staged = await client.stageConfiguration(cfg);
    expect(staged).toEqual([{ reqid: staged[0]!.reqid, success: true, data: { type: "string", value: cfg.id } }]);

    const deployed = await client.deploy();
    expect(deployed.filter((r) => !r.success)).toEqual([]);
    expect(successIds(deployed)).toEqual([cfg.id]);
    expect(
      deployed
        .filter((r) => r.node)
        .map((r) => `${r.instance}/${r.node}`)
        .sort(),
    ).toEqual(["instance-1/logger-01", "instance-1/manager", "instance-1/worker-01", "instance-2/proxy-01", "instance-2/worker-02"]);

    const nodes = await allRunning(client, 5);
    // Auto-assigned from the start port: one counter across instances, sorted by instance,
    // then role, then name (upstream's rules).
    const base = env.brokerStartPort;
    expect(nodes.get("manager")).toMatchObject({ instance: "instance-1", clusterRole: "MANAGER", port: base });
    expect(nodes.get("logger-01")).toMatchObject({ port: base + 1 });
    expect(nodes.get("proxy-01")).toMatchObject({ instance: "instance-2", port: base + 2 });
    expect(nodes.get("worker-02")!.port).toBeUndefined();
    for (const n of nodes.values()) expect(pidAlive(n.pid!)).toBe(true);

    // The deployed config has the observed hosts and assigned ports; the staged one is as sent.
    const deployedCfg = resultConfiguration(await client.getConfiguration(true))!;
    expect(deployedCfg.instances.map((i) => i.host)).toEqual(["127.0.0.1", "127.0.0.1"]);
    const stagedCfg = resultConfiguration(await client.getConfiguration(false))!;
    expect(stagedCfg.nodes.find((n) => n.name === "manager")!.port).toBeUndefined();
  });

  it("answers get_id_value from every node, with per-node errors", async () => {
    const { client } = await twoAgentCluster();
    const cfg = twoInstanceConfig();
    await client.stageConfiguration(cfg);
    await client.deploy();
    await allRunning(client, 5);
    const all = await client.getIdValue("Cluster::node");
    expect(
      all
        .filter((r) => r.node)
        .map((r) => [r.node, resultString(r)])
        .sort(),
    ).toEqual([
      ["logger-01", '"logger-01"'],
      ["manager", '"manager"'],
      ["proxy-01", '"proxy-01"'],
      ["worker-01", '"worker-01"'],
      ["worker-02", '"worker-02"'],
    ]);
    const mixed = await client.getIdValue("ROLE_NOTE", ["worker-02", "worker-03"]);
    expect(mixed.find((r) => r.node === "worker-02")).toMatchObject({ success: true, data: { type: "string", value: '"second"' } });
    expect(mixed.find((r) => r.node === "worker-03")).toMatchObject({ success: false, error: "unknown cluster node" });
    const nodesValue = await client.getIdValue("Cluster::nodes", ["manager"]);
    const layout = JSON.parse(resultString(nodesValue.find((r) => r.node === "manager")!)!) as Record<string, unknown>;
    expect(layout["proxy-01"]).toMatchObject({
      node_type: "Cluster::PROXY",
      ip: "127.0.0.1",
      p: { port: env.brokerStartPort + 2, proto: "tcp" },
      manager: "manager",
    });
  });

  it("restarts exactly the named nodes: new pids for them, the same for the rest", async () => {
    const { client } = await twoAgentCluster();
    await client.stageConfiguration(twoInstanceConfig());
    await client.deploy();
    const before = await allRunning(client, 5);
    const results = await client.restart(["worker-01", "proxy-01", "nope"]);
    expect(results.find((r) => r.node === "nope")).toMatchObject({ success: false, error: "unknown cluster node" });
    expect(
      results
        .filter((r) => r.node && r.node !== "nope")
        .map((r) => [r.node, r.success])
        .sort(),
    ).toEqual([
      ["proxy-01", true],
      ["worker-01", true],
    ]);
    const after = await allRunning(client, 5);
    for (const [name, s] of after) {
      if (name === "worker-01" || name === "proxy-01") expect(s.pid).not.toBe(before.get(name)!.pid);
      else expect(s.pid).toBe(before.get(name)!.pid);
    }
  });

  it("times out a deploy whose instance never connects, naming it, and keeps the previous deployment", async () => {
    env = new TestEnv();
    const controller = await env.startController({ requestTimeoutSec: 3 });
    await env.startAgent({ name: "instance-1", controllerPort: controller.port, extraArgs: AGENT_ARGS });
    const client = await connect(controller.port);
    await waitInstances(client, 1);
    const cfg = twoInstanceConfig();
    await client.stageConfiguration(cfg);
    const results = await client.deploy();
    const errors = results.filter((r) => !r.success).map((r) => r.error);
    expect(errors).toContain("request timed out");
    expect(errors.join("\n")).toContain("instance-2");
    const deployed = await client.getConfiguration(true);
    expect(deployed).toMatchObject({ success: false, error: "no deployed configuration available" });
  });

  it("dials an agent that listens (c2a) when the config gives its port, and reports that port", async () => {
    env = new TestEnv();
    const controller = await env.startController({ requestTimeoutSec: 8 });
    const agent = await env.startAgent({ name: "instance-1", extraArgs: AGENT_ARGS });
    const client = await connect(controller.port);
    // Nothing has checked in yet: the controller only learns of the agent from the config.
    expect(resultInstances(await client.getInstances())).toEqual([]);
    const cfg: Configuration = {
      id: randomUUID(),
      instances: [{ name: "instance-1", host: "127.0.0.1", listenPort: agent.port }],
      nodes: [node("manager", "instance-1", "MANAGER"), node("worker-01", "instance-1", "WORKER")],
    };
    expect((await client.stageConfiguration(cfg))[0]!.success).toBe(true);
    const results = await client.deploy();
    expect(results.filter((r) => !r.success)).toEqual([]);
    await allRunning(client, 2);
    expect(resultInstances(await client.getInstances())).toEqual([{ name: "instance-1", host: "127.0.0.1", listenPort: agent.port }]);
  });

  it("survives a controller restart without touching any node", async () => {
    env = new TestEnv();
    const controllerPort = await freePort();
    let controller = await env.startController({ requestTimeoutSec: 8, port: controllerPort });
    await env.startAgent({ name: "instance-1", controllerPort, extraArgs: AGENT_ARGS });
    await env.startAgent({ name: "instance-2", controllerPort, extraArgs: AGENT_ARGS });
    let client = await connect(controllerPort);
    await waitInstances(client, 2);
    const cfg = twoInstanceConfig();
    await client.stageConfiguration(cfg);
    await client.deploy();
    const before = await allRunning(client, 5);

    process.kill(controller.proc.pid, "SIGKILL");
    await eventually(() => !pidAlive(controller.proc.pid), 5000, "controller gone");
    controller = await env.startController({ requestTimeoutSec: 8, port: controllerPort });
    client = await connect(controllerPort);
    await waitInstances(client, 2);
    // The restarted controller still has both configs, and the cluster is untouched.
    expect(resultConfiguration(await client.getConfiguration(false))!.id).toBe(cfg.id);
    expect(resultConfiguration(await client.getConfiguration(true))!.id).toBe(cfg.id);
    const after = await allRunning(client, 5);
    for (const [name, s] of before) expect(after.get(name)!.pid).toBe(s.pid);
    // And it can drive them.
    const value = await client.getIdValue("Cluster::node", ["worker-02"]);
    expect(value.find((r) => r.node === "worker-02")!.success).toBe(true);
  });

  it("rejects invalid configurations with messages an operator can act on", async () => {
    env = new TestEnv();
    const controller = await env.startController({ requestTimeoutSec: 5 });
    const client = await connect(controller.port);
    const bad: Configuration = {
      id: randomUUID(),
      instances: [{ name: "instance-1", host: "0.0.0.0", listenPort: 3000 }],
      nodes: [
        node("manager", "instance-1", "MANAGER", { port: 3000 }),
        node("logger", "instance-1", "LOGGER", { port: 5000 }),
        node("proxy", "instance-1", "PROXY", { port: 5000 }),
        node("worker", "instance-9", "WORKER"),
        node("instance-1", "instance-1", "WORKER"),
      ],
    };
    const results = await client.stageConfiguration(bad);
    const errors = results.map((r) => r.error);
    expect(results.every((r) => !r.success)).toBe(true);
    expect(errors).toEqual(
      expect.arrayContaining([
        "multiple nodes on instance 'instance-1' using port 5000/tcp",
        "node 'manager' port 3000/tcp conflicts with agent port on instance 'instance-1'",
        "node 'worker' has undeclared instance name 'instance-9'",
        "node and instance names collide: instance-1",
      ]),
    );
    expect([...errors]).toEqual([...errors].sort());
    expect(await client.getConfiguration(false)).toMatchObject({ success: false, error: "no staged configuration available" });
    // The controller keeps serving after bad input.
    expect((await client.getNodes())[0]).toMatchObject({ success: false, error: "no instances connected" });
  });
});
