// The agent API end to end: a real supervisor + agent process tree with real node
// processes, driven by a test-side controller that dials the agent (c2a).

import { afterEach, describe, expect, it } from "vitest";
import { createServer, createConnection, type Server } from "node:net";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import type { Peer } from "../src/broker/peer.js";
import { request } from "../src/broker/request.js";
import type { ZeekEvent } from "../src/broker/messages.js";
import { AGENT_API_VERSION, AgentApi, agentTopic } from "../src/agent/api.js";
import { NodeOutputsCodec, NodeStatusVecCodec } from "../src/management/records.js";
import type { Configuration, Node, NodeStatus, Result } from "../src/management/types.js";
import { TestEnv, freePort, pidAlive } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { QUICK_AGENT_ARGS as FAST } from "./helpers/scope.js";

let env: TestEnv;
afterEach(async () => {
  await env?.cleanup();
});

const AGENT = "instance-1";

function node(name: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance: AGENT, role, state: "RUNNING", env: {}, ...extra };
}

function config(nodes: Node[], id = randomUUID()): Configuration {
  return { id, instances: [{ name: AGENT, host: "127.0.0.1" }], nodes };
}

async function setup(extraArgs: string[] = []): Promise<{ peer: Peer; events: ZeekEvent[]; stateDir: string; agentPort: number }> {
  env = new TestEnv();
  const agent = await env.startAgent({ name: AGENT, extraArgs: [...FAST, ...extraArgs] });
  const events: ZeekEvent[] = [];
  const peer = await env.dialAgent(agent.url, AGENT, events);
  return { peer, events, stateDir: agent.stateDir, agentPort: agent.port };
}

async function deploy(peer: Peer, cfg: Configuration, force = false, timeoutMs = 10_000): Promise<Result[]> {
  const reqid = randomUUID();
  const [, results] = await request(
    peer,
    agentTopic(AGENT),
    AgentApi.deploy_request.make(reqid, cfg, force),
    AgentApi.deploy_response,
    timeoutMs,
  );
  return results;
}

async function getNodes(peer: Peer): Promise<NodeStatus[]> {
  const [, result] = await request(
    peer,
    agentTopic(AGENT),
    AgentApi.get_nodes_request.make(randomUUID()),
    AgentApi.get_nodes_response,
    5000,
  );
  expect(result.success).toBe(true);
  return NodeStatusVecCodec.decode(result.data!, "data");
}

async function clusterNodes(peer: Peer): Promise<Map<string, NodeStatus>> {
  return new Map((await getNodes(peer)).filter((n) => n.mgmtRole === "NONE").map((n) => [n.node, n]));
}

function portAnswers(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host: "127.0.0.1" });
    let data = "";
    sock.on("data", (d) => (data += d.toString()));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

describe("agent API with real processes", () => {
  it("says hello with its API version when a controller connects", async () => {
    const { events } = await setup();
    const hello = await eventually(() => events.find((e) => e.name === AgentApi.notify_agent_hello.name), 5000, "hello");
    const [instance, id, connecting, version] = AgentApi.notify_agent_hello.parse(hello);
    expect(instance).toBe(AGENT);
    expect(id).not.toBe("");
    expect(connecting).toBe(false);
    expect(version).toBe(AGENT_API_VERSION);
  });

  it("answers agent_welcome with a success result for its instance", async () => {
    const { peer } = await setup();
    const [, result] = await request(
      peer,
      agentTopic(AGENT),
      AgentApi.agent_welcome_request.make("w1"),
      AgentApi.agent_welcome_response,
      5000,
    );
    expect(result).toMatchObject({ reqid: "w1", success: true, instance: AGENT });
  });

  it("deploys its nodes, reports them RUNNING with real pids and listening ports, and skips an unchanged config", async () => {
    const { peer, agentPort } = await setup();
    const managerPort = await freePort();
    const cfg = config([node("manager", "MANAGER", { port: managerPort }), node("worker-01", "WORKER", { interface: "lo" })]);
    cfg.nodes.push({ name: "worker-elsewhere", instance: "instance-2", role: "WORKER", state: "RUNNING", env: {} });
    cfg.instances.push({ name: "instance-2", host: "127.0.0.2" });
    const results = await deploy(peer, cfg);
    expect(results.map((r) => [r.node, r.success, r.instance])).toEqual(
      expect.arrayContaining([
        ["manager", true, AGENT],
        ["worker-01", true, AGENT],
      ]),
    );
    expect(results).toHaveLength(2);

    const nodes = await clusterNodes(peer);
    expect([...nodes.keys()].sort()).toEqual(["manager", "worker-01"]);
    for (const n of nodes.values()) {
      expect(n.state).toBe("RUNNING");
      expect(pidAlive(n.pid!)).toBe(true);
    }
    expect(nodes.get("manager")).toMatchObject({ clusterRole: "MANAGER", port: managerPort });
    expect(JSON.parse(await portAnswers(managerPort))).toMatchObject({ node: "manager", pid: nodes.get("manager")!.pid });
    // The agent lists itself, with its port since the controller dials it.
    const all = await getNodes(peer);
    expect(all.find((n) => n.mgmtRole === "AGENT")).toMatchObject({ node: AGENT, state: "RUNNING", port: agentPort });

    // Same id again: nothing restarts.
    const again = await deploy(peer, cfg);
    expect(again).toEqual([{ reqid: again[0]!.reqid, success: true, instance: AGENT }]);
    const after = await clusterNodes(peer);
    expect(after.get("manager")!.pid).toBe(nodes.get("manager")!.pid);

    // force redeploys even with the same id.
    await deploy(peer, cfg, true);
    const forced = await clusterNodes(peer);
    expect(forced.get("manager")!.pid).not.toBe(nodes.get("manager")!.pid);
    expect(pidAlive(nodes.get("manager")!.pid!)).toBe(false);
  });

  it("answers at once, exactly once, when none of the config's nodes are its own (upstream timed out and replied twice)", async () => {
    const { peer, events } = await setup();
    const cfg: Configuration = {
      id: randomUUID(),
      instances: [
        { name: AGENT, host: "127.0.0.1" },
        { name: "instance-2", host: "127.0.0.2" },
      ],
      nodes: [{ name: "w", instance: "instance-2", role: "WORKER", state: "RUNNING", env: {} }],
    };
    const started = Date.now();
    const results = await deploy(peer, cfg);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(results).toEqual([{ reqid: results[0]!.reqid, success: true, instance: AGENT }]);
    // Wait past the agent's request timeout: no stray second response may follow.
    await new Promise((r) => setTimeout(r, 5000));
    expect(events.filter((e) => e.name === AgentApi.deploy_response.name)).toHaveLength(1);
  });

  it("answers get_id_value dispatches per node, with errors for unknown ids and a timeout for silent nodes", async () => {
    const { peer } = await setup();
    await deploy(peer, config([node("manager", "MANAGER", { port: await freePort(), env: { SITE: "lab" } }), node("worker-01", "WORKER")]));
    const dispatch = async (action: string[], nodes: string[] = []): Promise<Result[]> => {
      const [, results] = await request(
        peer,
        agentTopic(AGENT),
        AgentApi.node_dispatch_request.make(randomUUID(), action, nodes),
        AgentApi.node_dispatch_response,
        8000,
      );
      return results;
    };
    const all = await dispatch(["get_id_value", "Cluster::node"]);
    expect(all.map((r) => [r.node, r.success, r.instance, r.data]).sort()).toEqual([
      ["manager", true, AGENT, { type: "string", value: '"manager"' }],
      ["worker-01", true, AGENT, { type: "string", value: '"worker-01"' }],
    ]);
    const one = await dispatch(["get_id_value", "SITE"], ["manager"]);
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ node: "manager", success: true, data: { type: "string", value: '"lab"' } });
    const unknown = await dispatch(["get_id_value", "No::such"], ["worker-01"]);
    expect(unknown[0]).toMatchObject({ node: "worker-01", success: false, error: "unknown id" });
    expect((await dispatch(["frobnicate"], ["manager"]))[0]).toMatchObject({ success: false, error: "dispatch frobnicate unknown" });
    expect(await dispatch(["get_id_value", "Cluster::node"], ["nope"])).toEqual([]);
    const pidData = (await dispatch(["get_id_value", "zmgmt::pid"], ["manager"]))[0]!.data!;
    const pid = JSON.parse(pidData.type === "string" ? pidData.value : "0") as number;
    expect(pidAlive(pid)).toBe(true);
  });

  it("restarts running nodes: PENDING, then RUNNING with a new pid, answering once they are back", async () => {
    const { peer, events } = await setup();
    await deploy(peer, config([node("manager", "MANAGER", { port: await freePort() }), node("worker-01", "WORKER")]));
    const before = await clusterNodes(peer);
    const seenBefore = events.length;
    const [, results] = await request(
      peer,
      agentTopic(AGENT),
      AgentApi.restart_request.make("rs-1", ["worker-01"]),
      AgentApi.restart_response,
      8000,
    );
    expect(results).toEqual([{ reqid: "rs-1", success: true, instance: AGENT, node: "worker-01" }]);
    const after = await clusterNodes(peer);
    expect(after.get("worker-01")!.state).toBe("RUNNING");
    expect(after.get("worker-01")!.pid).not.toBe(before.get("worker-01")!.pid);
    expect(after.get("manager")!.pid).toBe(before.get("manager")!.pid);
    const changes = events
      .slice(seenBefore)
      .filter((e) => e.name === AgentApi.notify_change.name)
      .map((e) => AgentApi.notify_change.parse(e));
    expect(changes.filter(([, n]) => n.name === "worker-01").map(([, , o, s]) => `${o}->${s}`)).toEqual([
      "RUNNING->PENDING",
      "PENDING->RUNNING",
    ]);
  });

  it("revives a crashed node with backoff and reports the crash with its output", async () => {
    const { peer, events } = await setup();
    await deploy(peer, config([node("worker-01", "WORKER")]));
    const pid = (await clusterNodes(peer)).get("worker-01")!.pid!;
    process.kill(pid, "SIGKILL");
    const crashLog = await eventually(
      () => events.find((e) => e.name === AgentApi.notify_log.name && AgentApi.notify_log.parse(e)[1].includes("SIGKILL")),
      5000,
      "crash report",
    );
    expect(AgentApi.notify_log.parse(crashLog)[2]).toBe("worker-01");
    const revived = await eventually(
      async () => {
        const n = (await clusterNodes(peer)).get("worker-01");
        return n && n.state === "RUNNING" && n.pid !== pid ? n : undefined;
      },
      10_000,
      "revival",
    );
    expect(pidAlive(revived.pid!)).toBe(true);
    const states = events
      .filter((e) => e.name === AgentApi.notify_change.name)
      .map((e) => AgentApi.notify_change.parse(e))
      .map(([, , , s]) => s);
    expect(states).toContain("CRASHED");
  });

  it("restarts a CRASHED node at once instead of waiting out its revival delay", async () => {
    // A revival delay far longer than the test, so the node stays CRASHED until restarted.
    const { peer } = await setup(["--restart-delay", "120"]);
    await deploy(peer, config([node("worker-01", "WORKER"), node("worker-02", "WORKER")]));
    const pid = (await clusterNodes(peer)).get("worker-01")!.pid!;
    process.kill(pid, "SIGKILL");
    await eventually(async () => (await clusterNodes(peer)).get("worker-01")?.state === "CRASHED", 10_000, "worker-01 CRASHED");
    const [, results] = await request(
      peer,
      agentTopic(AGENT),
      AgentApi.restart_request.make(randomUUID(), ["worker-01"]),
      AgentApi.restart_response,
      10_000,
    );
    expect(results).toEqual([expect.objectContaining({ node: "worker-01", success: true })]);
    const after = (await clusterNodes(peer)).get("worker-01")!;
    expect(after.state).toBe("RUNNING");
    expect(after.pid).not.toBe(pid);
  });

  it("shows a node the supervisor cannot start (an impossible cpu_affinity) as FAILED, with the reason in the deploy answer", async () => {
    const { peer } = await setup();
    const results = await deploy(peer, config([node("worker-01", "WORKER", { cpuAffinity: 4096 }), node("worker-02", "WORKER")]));
    const failed = results.find((r) => r.node === "worker-01");
    expect(failed).toMatchObject({ success: false });
    expect(failed?.error).toMatch(/^failed to create node worker-01: cannot pin node 'worker-01' to CPU 4096: this machine has \d+ CPUs?/);
    expect(results.find((r) => r.node === "worker-02")?.success).toBe(true);
    const nodes = await clusterNodes(peer);
    expect(nodes.get("worker-01")).toMatchObject({ state: "FAILED", clusterRole: "WORKER" });
    expect(nodes.get("worker-01")?.pid).toBeUndefined();
    expect(nodes.get("worker-02")?.state).toBe("RUNNING");
  });

  it("reports a port conflict with the node's stderr in the deploy result", async () => {
    const { peer } = await setup();
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", () => r()));
    try {
      const results = await deploy(peer, config([node("manager", "MANAGER", { port }), node("worker-01", "WORKER")]));
      expect(results[0]).toMatchObject({ success: false, error: "request timed out", instance: AGENT });
      const manager = results.find((r) => r.node === "manager")!;
      expect(manager.success).toBe(false);
      const outputs = NodeOutputsCodec.decode(manager.data!, "data");
      expect(outputs.stderr).toContain(`cannot listen on cluster port 127.0.0.1:${port}: address already in use`);
      expect(results.find((r) => r.node === "worker-01")!.success).toBe(true);
    } finally {
      blocker.close();
    }
  });

  it("reports a node that never checks in, by timeout", async () => {
    const { peer } = await setup();
    const results = await deploy(peer, config([node("silent", "WORKER", { env: { ZMGMT_NODE_COMMAND: "sleep 60" } })]));
    expect(results[0]).toMatchObject({ success: false, error: "request timed out" });
    expect(results[1]).toMatchObject({ node: "silent", success: false });
    expect(results[1]!.error).toContain("did not check in");
    const nodes = await clusterNodes(peer);
    expect(nodes.get("silent")!.state).toBe("PENDING");
  });

  it("gives up on a node that keeps crashing and says so", async () => {
    const { peer, events } = await setup(["--restart-max-attempts", "2"]);
    const cfg = config([node("broken", "WORKER", { env: { ZMGMT_NODE_COMMAND: "sh -c 'echo about to fail; echo boom >&2; exit 3'" } })]);
    const results = await deploy(peer, cfg);
    const broken = results.find((r) => r.node === "broken")!;
    expect(broken.success).toBe(false);
    const outputs = NodeOutputsCodec.decode(broken.data!, "data");
    expect(outputs).toEqual({ stdout: "about to fail", stderr: "boom" });
    await eventually(async () => (await clusterNodes(peer)).get("broken")?.state === "FAILED", 10_000, "FAILED state");
    const err = events.find((e) => e.name === AgentApi.notify_error.name);
    expect(err && AgentApi.notify_error.parse(err)[1]).toContain("giving up");
  });

  it("keeps nodes running when the agent process dies, and the revived agent re-adopts them", async () => {
    const { peer } = await setup();
    const cfg = config([node("manager", "MANAGER", { port: await freePort() }), node("worker-01", "WORKER")]);
    await deploy(peer, cfg);
    const before = await clusterNodes(peer);
    const agentPid = (await getNodes(peer)).find((n) => n.mgmtRole === "AGENT")!.pid!;
    process.kill(agentPid, "SIGKILL");
    // The supervisor revives the agent; the test's controller link reconnects on its own.
    const newAgent = await eventually(
      async () => {
        const a = (await getNodes(peer).catch(() => [])).find((n) => n.mgmtRole === "AGENT");
        return a && a.pid !== agentPid ? a : undefined;
      },
      15_000,
      "revived agent",
    );
    expect(pidAlive(agentPid)).toBe(false);
    expect(pidAlive(newAgent.pid!)).toBe(true);
    const after = await eventually(
      async () => {
        const m = await clusterNodes(peer);
        return [...m.values()].every((n) => n.state === "RUNNING") ? m : undefined;
      },
      10_000,
      "nodes re-adopted as RUNNING",
    );
    for (const [name, n] of before) expect(after.get(name)!.pid).toBe(n.pid);
    // It knows it still runs this config: a redeploy of the same id changes nothing.
    const again = await deploy(peer, cfg);
    expect(again).toEqual([{ reqid: again[0]!.reqid, success: true, instance: AGENT }]);
    expect((await clusterNodes(peer)).get("manager")!.pid).toBe(before.get("manager")!.pid);
  });

  it("pins a node to the CPU its config names", async () => {
    const { peer } = await setup();
    await deploy(peer, config([node("worker-01", "WORKER", { cpuAffinity: 0 })]));
    const pid = (await clusterNodes(peer)).get("worker-01")!.pid!;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(/Cpus_allowed_list:\s*(\S+)/.exec(status)![1]).toBe("0");
  });

  it("stands by: shuts its nodes down and keeps the connection", async () => {
    const { peer } = await setup();
    await deploy(peer, config([node("worker-01", "WORKER")]));
    const pid = (await clusterNodes(peer)).get("worker-01")!.pid!;
    const [, result] = await request(
      peer,
      agentTopic(AGENT),
      AgentApi.agent_standby_request.make("sb"),
      AgentApi.agent_standby_response,
      5000,
    );
    expect(result).toMatchObject({ success: true, instance: AGENT });
    await eventually(() => !pidAlive(pid), 10_000, "node stopped");
    await eventually(async () => (await clusterNodes(peer)).size === 0, 5000, "no cluster nodes");
    expect(peer.connected).toBe(true);
  });

  it("survives malformed and unknown requests and keeps answering", async () => {
    const { peer } = await setup();
    peer.publishEvent(agentTopic(AGENT), { name: AgentApi.deploy_request.name, args: [] });
    peer.publishEvent(agentTopic(AGENT), { name: "Management::Agent::API::no_such_request", args: [] });
    peer.publishEvent(agentTopic(AGENT), { name: AgentApi.get_nodes_request.name, args: [{ type: "count", value: 1 }] });
    const errors: string[] = [];
    peer.on("event", (_t, e) => {
      if (e.name === AgentApi.notify_error.name) errors.push(AgentApi.notify_error.parse(e)[1]);
    });
    expect((await getNodes(peer)).length).toBeGreaterThan(0);
    await eventually(() => errors.length >= 1, 3000, "error notification");
    expect(errors.join("\n")).toContain("cannot handle Management::Agent::API::deploy_request");
  });
});
