// The other direction of agent identity: an agent that waits for its controller (c2a) and
// holds its instance secret takes requests only from a connection that proves it is the
// controller. Real controller and agent processes on ephemeral loopback ports; the
// impostor is a raw WebSocket client on the agent's port.

import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { encodeEventMessage, encodeHandshake } from "../src/broker/messages.js";
import { AgentApi, ZmgmtAgentApi, agentTopic } from "../src/agent/api.js";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import { CONTROLLER_PROOF_HEADER, CONTROLLER_UNAUTHORIZED, controllerHeaders, writeSecretFile } from "../src/management/agent-auth.js";
import type { Configuration, NodeStatus } from "../src/management/types.js";
import { TEST_AGENT_MASTER_SECRET, freePort, type Proc } from "./helpers/cluster.js";
import { QUICK_AGENT_ARGS as AGENT_ARGS, useTestScope } from "./helpers/scope.js";
import { RawClient, eventually } from "./helpers/ws.js";

const scope = useTestScope();

const AGENT = "agent-c";

const connect = (port: number): Promise<ControllerClient> => scope.connect(port, { requestTimeoutMs: 20_000 });

/** A raw client on the agent's port that completed the Broker handshake on the agent's topic. */
async function impostor(port: number, headers?: Record<string, string>): Promise<RawClient> {
  const r = await scope.raw(port, headers);
  r.send(encodeHandshake([agentTopic(AGENT)]));
  await r.waitFrames(1);
  expect(JSON.parse(r.frames[0]!)).toMatchObject({ type: "ack" });
  return r;
}

function config(listenPort: number, nodes = ["manager"]): Configuration {
  return {
    id: randomUUID(),
    instances: [{ name: AGENT, host: "127.0.0.1", listenPort }],
    nodes: nodes.map((name, i) => ({ name, instance: AGENT, role: i === 0 ? "MANAGER" : "WORKER", state: "RUNNING", env: {} })),
  };
}

async function running(client: ControllerClient, count: number): Promise<NodeStatus[]> {
  return eventually(
    async () => {
      const nodes = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
      return nodes.length === count && nodes.every((n) => n.state === "RUNNING" && n.pid !== undefined) ? nodes : undefined;
    },
    20_000,
    `${count} node(s) to run`,
  );
}

const pids = (nodes: NodeStatus[]): Array<[string, number | undefined]> =>
  nodes.map((n) => [n.node, n.pid] as [string, number | undefined]).sort((a, b) => a[0].localeCompare(b[0]));

/** Messages of a process's management log. */
function messages(stateDir: string, name: string): string {
  return scope.env.logMessages(stateDir, name);
}

/** Sends the agent a get_nodes_request and waits for its answer to that request. */
async function answersGetNodes(r: RawClient, reqid: string): Promise<void> {
  r.send(encodeEventMessage(agentTopic(AGENT), AgentApi.get_nodes_request.make(reqid)));
  await eventually(() => r.frames.some((f) => f.includes(AgentApi.get_nodes_response.name) && f.includes(reqid)), 5000, "an answer");
}

function errorFrames(r: RawClient): Array<{ code: string; context: string }> {
  return r.frames
    .map((f) => JSON.parse(f) as { type?: string; code?: string; context?: string })
    .filter((m) => m.type === "error")
    .map((m) => ({ code: m.code!, context: m.context! }));
}

function exited(proc: Proc): boolean {
  return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

describe("an agent waiting for its controller (c2a) with its instance secret", () => {
  it("is deployed to by its controller, and a raw client on its port gets controller_unauthorized for every request while nothing is deployed or restarted", async () => {
    const env = scope.newEnv("zmgmt-c2a-");
    const controller = await env.startController({ requestTimeoutSec: 8 });
    const agent = await env.startAgent({ name: AGENT, extraArgs: AGENT_ARGS });
    const client = await connect(controller.port);
    expect((await client.stageConfiguration(config(agent.port)))[0]!.success).toBe(true);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const before = await running(client, 1);
    expect(messages(agent.stateDir, AGENT)).toContain("takes controller requests only from a connection that proves");
    expect(messages(agent.stateDir, AGENT)).not.toContain("anyone who reaches its port can control it");

    const raw = await impostor(agent.port);
    raw.frames.length = 0;
    const evil = config(agent.port, ["manager", "evil-worker"]);
    const requests = [
      AgentApi.deploy_request.make("evil-deploy", evil, true),
      AgentApi.restart_request.make("evil-restart", []),
      AgentApi.get_nodes_request.make("evil-nodes"),
      AgentApi.node_dispatch_request.make("evil-dispatch", ["get_id_value", "Cluster::node"], []),
      AgentApi.agent_standby_request.make("evil-standby"),
      AgentApi.agent_welcome_request.make("evil-welcome"),
      ZmgmtAgentApi.stop_nodes_request.make("evil-stop", ["manager"]),
    ];
    for (const event of requests) raw.send(encodeEventMessage(agentTopic(AGENT), event));
    await eventually(() => errorFrames(raw).length >= requests.length, 5000, "an error for every request");
    const errors = errorFrames(raw);
    expect(errors).toHaveLength(requests.length);
    for (const [i, e] of errors.entries()) {
      expect(e.code).toBe(CONTROLLER_UNAUTHORIZED);
      expect(e.context).toContain(requests[i]!.name);
    }
    // Nothing else came back but the agent's greeting: no answers, and none of the
    // controller's traffic either.
    expect(raw.frames.filter((f) => !f.includes('"type":"error"') && !f.includes(AgentApi.notify_agent_hello.name))).toEqual([]);
    expect(raw.closed).toBeUndefined();

    // Give a deploy or restart that wrongly went through time to show.
    await new Promise((r) => setTimeout(r, 1500));
    expect(exited(agent.proc)).toBe(false);
    const after = await running(client, 1);
    expect(pids(after)).toEqual(pids(before));
    const log = messages(agent.stateDir, AGENT);
    expect(log).not.toMatch(/rx Management::Agent::API::\w+_request evil-/);
    expect(log).toMatch(/refused Management::Agent::API::deploy_request from 127\.0\.0\.1:\d+: not the controller/);
    // Logged once per connection, not once per request.
    expect(log.match(/refused \S+ from 127\.0\.0\.1:\d+: not the controller/g)).toHaveLength(1);

    // The real controller's link is untouched: it still restarts and deploys.
    expect((await client.restart(["manager"])).filter((r) => !r.success)).toEqual([]);
    const restarted = await eventually(
      async () => {
        const nodes = await running(client, 1);
        return nodes[0]!.pid !== before[0]!.pid ? nodes : undefined;
      },
      20_000,
      "the manager to restart",
    );
    expect(restarted).toHaveLength(1);
    expect((await client.stageConfiguration(config(agent.port, ["manager", "worker-1"])))[0]!.success).toBe(true);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    await running(client, 2);
  });

  it("refuses a connection presenting a wrong proof at the upgrade, and takes one presenting the right proof as its controller", async () => {
    const env = scope.newEnv("zmgmt-c2a-");
    const agent = await env.startAgent({ name: AGENT, extraArgs: AGENT_ARGS });

    const wrong = await scope.raw(agent.port, controllerHeaders("another-master-secret-0123456789", AGENT));
    await wrong.waitClosed(5000);
    const [refusal] = errorFrames(wrong);
    expect(refusal?.code).toBe(CONTROLLER_UNAUTHORIZED);
    expect(refusal?.context).toContain("does not accept this controller");
    // The refusal never echoes a proof.
    expect(wrong.frames.join("")).not.toContain(controllerHeaders("another-master-secret-0123456789", AGENT)[CONTROLLER_PROOF_HEADER]!);

    // A proof for another instance is just as wrong.
    const otherInstance = await scope.raw(agent.port, controllerHeaders(TEST_AGENT_MASTER_SECRET, "agent-other"));
    await otherInstance.waitClosed(5000);
    expect(errorFrames(otherInstance)[0]?.code).toBe(CONTROLLER_UNAUTHORIZED);

    const right = await impostor(agent.port, controllerHeaders(TEST_AGENT_MASTER_SECRET, AGENT));
    await answersGetNodes(right, "proven-nodes");
    expect(errorFrames(right)).toEqual([]);
    expect(messages(agent.stateDir, AGENT)).toContain("refused a controller connection from 127.0.0.1");
    expect(exited(agent.proc)).toBe(false);
  });

  it("cannot be driven by a controller with another master secret, which says why in deploy errors and its log", async () => {
    const env = scope.newEnv("zmgmt-c2a-");
    const agent = await env.startAgent({ name: AGENT, extraArgs: AGENT_ARGS });
    const otherMaster = join(env.dir, "other-master-secret");
    writeSecretFile(otherMaster, "a-different-master-secret-0123456789abcdef");
    // The later --agent-master-secret-file wins over the one every test controller gets.
    const controller = await env.startController({ requestTimeoutSec: 4, extraArgs: ["--agent-master-secret-file", otherMaster] });
    const client = await connect(controller.port);
    expect((await client.stageConfiguration(config(agent.port)))[0]!.success).toBe(true);
    const results = await client.deploy();
    const mine = results.find((r) => r.instance === AGENT);
    expect(mine?.success).toBe(false);
    expect(mine?.error).toContain(`instance '${AGENT}' is not connected: its agent refused this controller`);
    expect(resultInstances(await client.getInstances()) ?? []).toEqual([]);
    const controllerLog = messages(join(env.dir, "state"), "controller");
    expect(controllerLog).toContain(`the agent of instance ${AGENT} at 127.0.0.1:${agent.port} refused this controller`);
    // Once per reason, though the dialer retries every second.
    expect(controllerLog.match(/the agent of instance \S+ at \S+ refused this controller/g)).toHaveLength(1);
    expect(messages(agent.stateDir, AGENT)).toContain("refused a controller connection");
    expect(messages(agent.stateDir, AGENT)).not.toMatch(/rx Management::Agent::API::deploy_request/);
    expect(exited(agent.proc)).toBe(false);
  });
});

describe("an agent waiting for its controller without a secret or client verification", () => {
  it("warns at start that anyone reaching its port can control it, and keeps taking requests from anyone", async () => {
    const env = scope.newEnv("zmgmt-c2a-");
    const port = await freePort();
    const stateDir = join(env.dir, "state-open");
    const proc = env.spawnCli([
      "agent",
      "--name",
      AGENT,
      "--state-dir",
      stateDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--no-controller",
      "--no-zeek",
      ...AGENT_ARGS,
    ]);
    await eventually(() => scope.env.canConnect(port), 15_000, "the agent to listen");
    const raw = await impostor(port);
    await answersGetNodes(raw, "open-nodes");
    expect(errorFrames(raw)).toEqual([]);
    const log = messages(stateDir, AGENT);
    expect(log.match(/anyone who reaches its port can control it/g)).toHaveLength(1);
    expect(log).toContain("--agent-secret-file");
    expect(exited(proc)).toBe(false);
  });
});
