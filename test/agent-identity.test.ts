// Agent identity and the one-live-agent rule, against a real controller and a real agent:
// whoever can reach the controller's port but holds no proof of an instance name cannot
// take an instance over, detach its agent or be sent its configuration, and a second agent
// with a taken name is refused and exits with the reason.

import { describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { encodeEventMessage } from "../src/broker/messages.js";
import { AgentApi, agentTopic } from "../src/agent/api.js";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import { CONTROLLER_TOPIC } from "../src/controller/api.js";
import { AGENT_REFUSED_EXIT_CODE, agentHeaders, instanceSecret } from "../src/management/agent-auth.js";
import type { Configuration, NodeStatus } from "../src/management/types.js";
import { Inspector, memoryAfterGc, type MemoryBreakdown } from "../bench/lib/inspector.js";
import { TEST_AGENT_MASTER_SECRET, exitCode, freePort, instanceNames, type Proc } from "./helpers/cluster.js";
import { QUICK_AGENT_ARGS as AGENT_ARGS, useTestScope } from "./helpers/scope.js";
import { RawClient, eventually } from "./helpers/ws.js";
import { locateZeekClient, runZeekClient } from "./helpers/zeek-client.js";

const zeekClient = locateZeekClient();

/** Stock zeek-client's get-instances, or undefined where it is not available. */
async function stockGetInstances(port: number): Promise<{ code: number | null; stdout: string; stderr: string } | undefined> {
  if (!zeekClient.found) return undefined;
  return runZeekClient(zeekClient.path, [
    "--controller",
    `127.0.0.1:${port}`,
    "--set",
    "client.peering_attempts=3",
    "--set",
    "client.request_timeout_secs=10",
    "get-instances",
  ]);
}

const scope = useTestScope();

const connect = (port: number): Promise<ControllerClient> => scope.connect(port, { requestTimeoutMs: 15_000 });
const raw = (port: number, headers?: Record<string, string>): Promise<RawClient> => scope.raw(port, headers);

function config(): Configuration {
  return {
    id: randomUUID(),
    instances: [{ name: "agent-a", host: "127.0.0.1" }],
    nodes: [{ name: "manager", instance: "agent-a", role: "MANAGER", state: "RUNNING", env: {} }],
  };
}

async function runningNodes(client: ControllerClient): Promise<NodeStatus[]> {
  return eventually(
    async () => {
      const nodes = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
      return nodes.length === 1 && nodes[0]!.state === "RUNNING" ? nodes : undefined;
    },
    20_000,
    "the manager to run",
  );
}

/** A controller and agent-a, checked in. */
async function cluster(
  controllerArgs: string[] = [],
  controllerEnv?: Record<string, string>,
): Promise<{ port: number; client: ControllerClient; agent: Proc; controller: Proc }> {
  const env = scope.newEnv("zmgmt-identity-");
  const { port, proc: controller } = await env.startController({
    requestTimeoutSec: 5,
    extraArgs: controllerArgs,
    ...(controllerEnv ? { env: controllerEnv } : {}),
  });
  const agent = await env.startAgent({ name: "agent-a", controllerPort: port, extraArgs: AGENT_ARGS });
  const client = await connect(port);
  await eventually(async () => (await instanceNames(client)).includes("agent-a"), 15_000, "agent-a to check in");
  return { port, client, agent: agent.proc, controller };
}

function hello(instance: string, version = 1): string {
  return encodeEventMessage(agentTopic(instance), AgentApi.notify_agent_hello.make(instance, "impostor", true, version));
}

describe("agent identity", () => {
  it("an impostor's hello, on either topic and in any version, neither replaces nor detaches the real agent", async () => {
    const { port, client } = await cluster();
    const impostor = await raw(port);
    impostor.send(JSON.stringify([CONTROLLER_TOPIC, agentTopic("agent-a")]));
    await impostor.waitFrames(1);
    impostor.send(hello("agent-a"));
    impostor.send(encodeEventMessage(CONTROLLER_TOPIC, AgentApi.notify_agent_hello.make("agent-a", "impostor", false, 999)));
    impostor.send(hello("agent-b"));
    // Forged agent reports must not reach clients either.
    impostor.send(encodeEventMessage(agentTopic("agent-a"), AgentApi.notify_error.make("agent-a", "forged", undefined)));
    const staged = await client.stageConfiguration(config());
    expect(staged.filter((r) => !r.success)).toEqual([]);
    const deployed = await client.deploy();
    expect(deployed.filter((r) => !r.success)).toEqual([]);
    const before = await runningNodes(client);
    // Nothing meant for agent-a went to the impostor: not the welcome, not the configuration.
    const sent = impostor.frames.slice(1).join("\n");
    expect(sent).not.toContain("agent_welcome_request");
    expect(sent).not.toContain("deploy_request");
    impostor.close();
    await new Promise((r) => setTimeout(r, 500));
    expect(await instanceNames(client)).toEqual(["agent-a"]);
    const after = await runningNodes(client);
    expect(after.map((n) => n.pid)).toEqual(before.map((n) => n.pid));
    // Still deployable through its real agent.
    const again = await client.stageConfiguration(config());
    expect(again.filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
  });

  it("refuses a connection that claims an instance with a wrong secret, saying why", async () => {
    const { port, client } = await cluster();
    const wrong = await raw(port, agentHeaders("agent-a", "0".repeat(64)));
    const [frame] = await wrong.waitFrames(1);
    expect(JSON.parse(frame!)).toMatchObject({ type: "error", code: "agent_unauthorized" });
    expect(frame).toContain("agent secret is not the one for that name");
    expect(frame).not.toContain(instanceSecret(TEST_AGENT_MASTER_SECRET, "agent-a"));
    expect((await wrong.waitClosed()).code).toBe(1008);
    expect(await instanceNames(client)).toEqual(["agent-a"]);
  });

  it("refuses an authenticated hello with API version 999 without dropping the live agent", async () => {
    const { port, client } = await cluster();
    const secret = instanceSecret(TEST_AGENT_MASTER_SECRET, "agent-a");
    const other = await raw(port, agentHeaders("agent-a", secret));
    other.send(JSON.stringify([agentTopic("agent-a")]));
    await other.waitFrames(1);
    other.send(hello("agent-a", 999));
    await other.waitClosed(5000);
    expect(other.frames.join("\n")).toContain("agent_refused");
    await new Promise((r) => setTimeout(r, 300));
    expect(await instanceNames(client)).toEqual(["agent-a"]);
    expect((await client.stageConfiguration(config())).filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    await runningNodes(client);
  });

  it("a second real agent with the same --name exits non-zero with the reason; the first keeps its nodes", async () => {
    const { port, client, agent } = await cluster();
    expect((await client.stageConfiguration(config())).filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const before = await runningNodes(client);

    const second = await scope.env.startAgent({
      name: "agent-a",
      controllerPort: port,
      extraArgs: AGENT_ARGS,
      stateDir: `${scope.env.dir}/state-second`,
    });
    expect(await exitCode(second.proc)).toBe(AGENT_REFUSED_EXIT_CODE);
    expect(second.proc.output()).toMatch(/instance agent-a already has a live agent/);

    expect(agent.child.exitCode).toBeNull();
    expect(await instanceNames(client)).toEqual(["agent-a"]);
    const after = await runningNodes(client);
    expect(after.map((n) => [n.node, n.pid, n.state])).toEqual(before.map((n) => [n.node, n.pid, n.state]));
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
  });

  it("takes a new agent once the old one is really gone", async () => {
    const { port, client, agent } = await cluster();
    process.kill(-agent.pid, "SIGKILL");
    await eventually(async () => (await instanceNames(client)).length === 0, 15_000, "agent-a to be dropped");
    await scope.env.startAgent({ name: "agent-a", controllerPort: port, extraArgs: AGENT_ARGS, stateDir: `${scope.env.dir}/state-new` });
    await eventually(async () => (await instanceNames(client)).includes("agent-a"), 15_000, "the new agent-a to check in");
  });
});

describe("connection limits", () => {
  it("refuses clients beyond --max-connections with a message, never the agent, and serves again once one leaves", async () => {
    const { port, client } = await cluster(["--max-connections", "4"]);
    // The test's own client holds one slot.
    const idle = await Promise.all([0, 1, 2].map(() => raw(port)));
    for (const r of idle) r.send(JSON.stringify([CONTROLLER_TOPIC]));
    await Promise.all(idle.map((r) => r.waitFrames(1)));
    const extra = await raw(port);
    const [frame] = await extra.waitFrames(1);
    expect(JSON.parse(frame!)).toMatchObject({ type: "error", code: "connection_limit" });
    expect(frame).toContain("connection limit of 4 clients reached");
    // Stock zeek-client shows the reason and fails, rather than hanging or being reset.
    const refused = await stockGetInstances(port);
    if (refused) {
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("connection limit of 4 clients reached");
    }
    // Agents are not counted: one joins while clients fill every slot.
    await scope.env.startAgent({ name: "agent-b", controllerPort: port, extraArgs: AGENT_ARGS });
    await eventually(async () => (await instanceNames(client)).join() === "agent-a,agent-b", 15_000, "agent-b to check in");
    idle[0]!.close();
    const later = await eventually(
      async () => {
        const c = await ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs: 5000 }).catch(() => undefined);
        return c;
      },
      10_000,
      "a free slot",
    );
    scope.onCleanup(() => later.close());
    expect((resultInstances(await later.getInstances()) ?? []).map((i) => i.name)).toEqual(["agent-a", "agent-b"]);
    await later.close();
    const served = await eventually(
      async () => {
        const run = await stockGetInstances(port);
        return run === undefined || run.code === 0 ? (run ?? "skipped") : undefined;
      },
      15_000,
      "stock zeek-client to be served",
    );
    if (served !== "skipped") expect(JSON.parse(served.stdout)).toHaveProperty("agent-a");
  });

  it("drops a connection that never completes the handshake", async () => {
    const { port } = await cluster();
    const silent = await raw(port);
    const closed = await silent.waitClosed(15_000);
    expect(closed.code).toBe(1008);
    expect(silent.frames.join("")).toContain("handshake_timeout");
  }, 30_000);
});

/** Opens `n` connections that complete the handshake and then sit idle. */
async function openIdle(port: number, n: number): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, async () => {
        const r = await RawClient.open(`ws://127.0.0.1:${port}/v1/messages/json`);
        r.send(JSON.stringify([CONTROLLER_TOPIC]));
        await r.waitFrames(1, 15_000);
        return r;
      }),
    );
    out.push(...batch);
  }
  return out;
}

describe.skipIf(process.platform !== "linux")("connection storm", () => {
  it("memory does not ratchet up over storms of 2,000 idle connections, and the cluster stays attached", async () => {
    // An inspector on loopback lets the test force a full GC, so what it compares is what
    // the controller still holds, not when V8 and malloc happen to give memory back.
    const inspectPort = await freePort();
    const { port, client, agent, controller } = await cluster(["--max-connections", "2100"], {
      NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
    });
    const inspector = await Inspector.connect(inspectPort);
    scope.onCleanup(() => inspector.close());
    // Warm up once, so lazily allocated buffers count as baseline.
    for (const r of await openIdle(port, 300)) r.close();
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = await memoryAfterGc(inspector);
    const after: MemoryBreakdown[] = [];
    for (let round = 0; round < 3; round++) {
      const storm = await openIdle(port, 2000);
      for (const r of storm) r.close();
      await new Promise((r) => setTimeout(r, 2000));
      after.push(await memoryAfterGc(inspector));
    }
    const show = (m: MemoryBreakdown): string => `heap ${m.heapUsedMb} MB, external ${m.externalMb} MB, RSS ${m.rssMb} MB`;
    console.log(`controller after a full GC: baseline ${show(baseline)}; after each storm ${after.map(show).join("; ")}`);
    // 6,000 connections came and went: a per-connection leak of even 200 bytes would show.
    expect(after[2]!.heapUsedMb - baseline.heapUsedMb).toBeLessThan(1.2);
    expect(after[2]!.externalMb - baseline.externalMb).toBeLessThan(1);
    // Later storms reuse what the first one made the process allocate.
    expect(after[2]!.rssMb - after[0]!.rssMb).toBeLessThan(15);
    expect(after[2]!.rssMb).toBeLessThan(baseline.rssMb * 2);
    expect(await instanceNames(client)).toEqual(["agent-a"]);
    expect(agent.child.exitCode).toBeNull();
    expect(controller.child.exitCode).toBeNull();
  }, 150_000);
});
