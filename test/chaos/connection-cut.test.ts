// The controller–agent link cut, refused and blackholed by a TCP proxy in the test process
// (instance-1 dials the controller through it; instance-2 dials directly, as a control).
// After each fault the agent reconnects with backoff, what was in flight is answered once
// (a result or a clear error), nothing runs twice, and the cluster converges.

import { afterEach, describe, expect, it } from "vitest";
import type { ControllerClient } from "../../src/client/controller-client.js";
import { resultConfiguration, resultInstances } from "../../src/client/controller-client.js";
import type { Configuration, Result } from "../../src/management/types.js";
import {
  ChaosProxy,
  TestEnv,
  allRunning,
  answered,
  chaosNode,
  config,
  connectClient,
  eventually,
  expectOneProcessEach,
  freePort,
  startCluster,
  starts,
  waitInstances,
  type AgentHandle,
} from "./helpers.js";

const I1 = "instance-1";
const I2 = "instance-2";
const NAMES = ["manager", "worker-01", "worker-02"];
const HOME: Record<string, string> = { manager: I1, "worker-01": I1, "worker-02": I2 };

let env: TestEnv;
let proxy: ChaosProxy | undefined;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await proxy?.close();
  proxy = undefined;
  await env?.cleanup();
});

interface Up {
  client: ControllerClient;
  proxy: ChaosProxy;
  agents: Map<string, AgentHandle>;
}

async function up(): Promise<Up> {
  env = new TestEnv("zmgmt-chaos-");
  const controllerPort = await freePort();
  proxy = await ChaosProxy.start(controllerPort);
  const p = proxy;
  const cluster = await startCluster(env, [I1, I2], {
    controllerPort,
    controllerTimeoutSec: 12,
    controllerPortFor: (name) => (name === I1 ? p.port : controllerPort),
  });
  const client = await connectClient(controllerPort, clients, 16_000);
  await waitInstances(client, [I1, I2]);
  return { client, proxy: p, agents: cluster.agents };
}

function clusterConfig(envFor: Record<string, Record<string, string>> = {}): Configuration {
  return config(
    [
      chaosNode("manager", I1, "MANAGER", envFor["manager"]),
      chaosNode("worker-01", I1, "WORKER", envFor["worker-01"]),
      chaosNode("worker-02", I2, "WORKER", envFor["worker-02"]),
    ],
    [I1, I2],
  );
}

function startsOf(u: Up, node: string): number[] {
  return starts(u.agents.get(HOME[node]!)!.stateDir, node);
}

async function running(u: Up, accept?: (p: Map<string, number>) => boolean): Promise<Map<string, number>> {
  const view = await allRunning(u.client, NAMES, accept ? (m) => accept(new Map([...m].map(([n, s]) => [n, s.pid!]))) : undefined);
  const pids = new Map([...view].map(([n, s]) => [n, s.pid!]));
  expect(expectOneProcessEach(env.dir, NAMES)).toEqual(pids);
  return pids;
}

async function deployAll(u: Up, cfg: Configuration): Promise<Map<string, number>> {
  expect((await u.client.stageConfiguration(cfg)).filter((r) => !r.success)).toEqual([]);
  expect((await u.client.deploy()).filter((r) => !r.success)).toEqual([]);
  return running(u);
}

async function connectedInstances(client: ControllerClient): Promise<string[]> {
  return (resultInstances(await client.getInstances()) ?? []).map((i) => i.name).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const LOST = `lost the connection to instance '${I1}' before it answered`;

describe("controller–agent link cut: reconnect with backoff, no repeated side effects, clear errors", () => {
  it("a link severed mid-deploy is re-established with growing retry gaps, the deploy completes, and no node is started twice", async () => {
    const u = await up();
    const cfg = clusterConfig({ manager: { CHAOS_START_DELAY_MS: "1500" }, "worker-01": { CHAOS_START_DELAY_MS: "1500" } });
    expect((await u.client.stageConfiguration(cfg)).filter((r) => !r.success)).toEqual([]);
    const deploying = answered(u.client.deploy(), 22_000, "deploy");
    // instance-1 got the configuration and is starting its nodes: now cut it off.
    await eventually(
      () => startsOf(u, "manager").length === 1 && startsOf(u, "worker-01").length === 1,
      15_000,
      "instance-1 nodes started",
    );
    u.proxy.setMode("refuse");
    u.proxy.sever();
    const cutAt = Date.now();
    await sleep(3200);
    u.proxy.setMode("pass");
    const tries = u.proxy.attempts.filter((t) => t >= cutAt);
    // Retries, but no hot loop: a few attempts with gaps that grow.
    expect(tries.length).toBeGreaterThanOrEqual(3);
    expect(tries.length).toBeLessThanOrEqual(6);
    const gaps = tries.slice(1).map((t, i) => t - tries[i]!);
    expect(Math.min(...gaps)).toBeGreaterThan(150);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]! * 1.5);

    const answer = await deploying;
    expect(answer.ok).toBe(true);
    if (answer.ok) expect(answer.value.filter((r) => !r.success)).toEqual([]);
    const pids = await running(u);
    // The controller re-sent the deployment to the returning agent, which recognised it.
    for (const n of NAMES) expect(startsOf(u, n)).toEqual([pids.get(n)]);
    expect(resultConfiguration(await u.client.getConfiguration(true))!.id).toBe(cfg.id);
  });

  it("a restart whose link is cut right after the agent received it is answered (the result, or an error naming the lost link) and restarts the node exactly once", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig());
    const tripped = u.proxy.severOn("down", "restart_request", true);
    const restarting = answered(u.client.restart(["manager"]), 22_000, "restart");
    await tripped;
    u.proxy.setMode("refuse");
    await sleep(1000);
    u.proxy.setMode("pass");
    const answer = await restarting;
    expect(answer.ok).toBe(true);
    if (answer.ok) {
      // The agent's answer made it over the new link, or the controller says what happened.
      const ok = answer.value.some((r) => r.node === "manager" && r.success);
      const unknown = answer.value.some((r) => !r.success && (r.error === "request timed out" || r.error === LOST));
      expect(ok || unknown).toBe(true);
    }
    await waitInstances(u.client, [I1, I2]);
    const after = await running(u, (p) => p.get("manager") !== before.get("manager"));
    expect(startsOf(u, "manager")).toEqual([before.get("manager"), after.get("manager")]);
    expect(after.get("worker-01")).toBe(before.get("worker-01"));
    expect(after.get("worker-02")).toBe(before.get("worker-02"));
  });

  it("a get-nodes in flight when an agent's link drops is answered without waiting for the timeout, with the other agents' nodes and an error naming the lost instance", async () => {
    const u = await up();
    await deployAll(u, clusterConfig());
    const tripped = u.proxy.severOn("down", "get_nodes_request", false);
    u.proxy.setMode("refuse");
    const answer = await answered(u.client.getNodes(), 22_000, "get-nodes");
    await tripped;
    expect(answer.ok).toBe(true);
    // The controller names the lost link instead of waiting out its request timeout.
    if (answer.ok) {
      expect(answer.value).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ success: false, instance: I1, error: LOST }),
          expect.objectContaining({ success: true, instance: I2 }),
        ]),
      );
    }
    u.proxy.setMode("pass");
    await waitInstances(u.client, [I1, I2]);
    await running(u);
  });

  it("while an agent is cut off, requests say which instance is missing, and a deploy that timed out then is not applied when it returns", async () => {
    const u = await up();
    const first = clusterConfig();
    const before = await deployAll(u, first);
    u.proxy.setMode("refuse");
    u.proxy.sever();
    await eventually(
      async () => JSON.stringify(await connectedInstances(u.client)) === JSON.stringify([I2]),
      10_000,
      "controller to notice",
    );

    const nodes: Result[] = await u.client.getNodes();
    expect(nodes.map((r) => r.instance)).toEqual([I2]);

    const second = clusterConfig();
    expect((await u.client.stageConfiguration(second)).filter((r) => !r.success)).toEqual([]);
    const answer = await answered(u.client.deploy(), 22_000, "deploy during the cut");
    expect(answer.ok).toBe(true);
    if (answer.ok) {
      expect(answer.value).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ success: false, error: "request timed out" }),
          expect.objectContaining({ success: false, instance: I1, error: `instance '${I1}' is not connected` }),
        ]),
      );
    }

    u.proxy.setMode("pass");
    await waitInstances(u.client, [I1, I2]);
    // Long enough for any redeploy the returning agent would trigger to show.
    await sleep(2000);
    expect(await running(u)).toEqual(before);
    for (const n of NAMES) expect(startsOf(u, n)).toHaveLength(1);
    expect(resultConfiguration(await u.client.getConfiguration(true))!.id).toBe(first.id);
  });

  it("a blackholed link (traffic silently dropped) is given up by both sides, requests meanwhile end in a clear timeout, and the agent is back soon after the route returns", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig());
    u.proxy.setMode("blackhole");
    const blackholedAt = Date.now();
    // The controller still believes in instance-1 for a while: its answer names the timeout.
    const meanwhile = await answered(u.client.getNodes(), 20_000, "get-nodes into the blackhole");
    expect(meanwhile.ok).toBe(true);
    if (meanwhile.ok) {
      // Whichever comes first: the request's timeout, or the controller giving up the link.
      expect(meanwhile.value.some((r) => !r.success && (r.error === "request timed out" || r.error === LOST))).toBe(true);
      expect(meanwhile.value.some((r) => r.instance === I2 && r.success)).toBe(true);
    }
    // Liveness checks on the controller's side drop the dead link.
    await eventually(
      async () => JSON.stringify(await connectedInstances(u.client)) === JSON.stringify([I2]),
      25_000,
      "controller to drop instance-1",
    );
    // By now the agent must have given up the dead link too: both sides probe liveness.
    await sleep(Math.max(0, 20_000 - (Date.now() - blackholedAt)));
    u.proxy.setMode("pass");
    await waitInstances(u.client, [I1, I2], 12_000);
    expect(await running(u)).toEqual(before);
  });
});
