// kill -9 against every process of a running cluster (controller, supervisor, agent,
// nodes) and against nodes in each supervisor state. After each fault: no node is lost or
// runs twice (counted in /proc, not taken from the agents' word), nodes nobody touched keep
// their pids, every client request ends in an answer or a typed error, and get-nodes
// converges to every node RUNNING.

import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ControllerClient } from "../../src/client/controller-client.js";
import { resultConfiguration } from "../../src/client/controller-client.js";
import type { Configuration, Result } from "../../src/management/types.js";
import {
  AGENT_ARGS,
  TestEnv,
  agentPid,
  allRunning,
  answered,
  chaosNode,
  config,
  connectClient,
  eventually,
  expectOneProcessEach,
  kill9,
  livePids,
  nodeStates,
  pidAlive,
  processesIn,
  startCluster,
  starts,
  waitForProcess,
  waitInstances,
  type AgentHandle,
} from "./helpers.js";

const I1 = "instance-1";
const I2 = "instance-2";
const NAMES = ["manager", "worker-01", "proxy-01", "worker-02"];
const HOME: Record<string, string> = { manager: I1, "worker-01": I1, "proxy-01": I2, "worker-02": I2 };

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

function clusterConfig(envFor: Record<string, Record<string, string>> = {}): Configuration {
  return config(
    [
      chaosNode("manager", I1, "MANAGER", envFor["manager"]),
      chaosNode("worker-01", I1, "WORKER", envFor["worker-01"]),
      chaosNode("proxy-01", I2, "PROXY", envFor["proxy-01"]),
      chaosNode("worker-02", I2, "WORKER", envFor["worker-02"]),
    ],
    [I1, I2],
  );
}

function everyNode(vars: Record<string, string>): Record<string, Record<string, string>> {
  return Object.fromEntries(NAMES.map((n) => [n, vars]));
}

interface Up {
  client: ControllerClient;
  controllerPort: number;
  controllerPid: number;
  agents: Map<string, AgentHandle>;
}

async function up(agentArgs = AGENT_ARGS): Promise<Up> {
  env = new TestEnv("zmgmt-chaos-");
  const cluster = await startCluster(env, [I1, I2], { agentArgs, controllerTimeoutSec: 15 });
  const client = await connectClient(cluster.controllerPort, clients, 20_000);
  await waitInstances(client, [I1, I2]);
  return { client, ...cluster };
}

function startsOf(u: Up, node: string): number[] {
  return starts(u.agents.get(HOME[node]!)!.stateDir, node);
}

async function stage(client: ControllerClient, cfg: Configuration): Promise<void> {
  const staged = await client.stageConfiguration(cfg);
  expect(staged.filter((r) => !r.success)).toEqual([]);
}

/** Stages and deploys; returns get-nodes once all are RUNNING (checked against /proc). */
async function deployAll(u: Up, cfg: Configuration): Promise<Map<string, number>> {
  await stage(u.client, cfg);
  const results = await u.client.deploy();
  expect(results.filter((r) => !r.success)).toEqual([]);
  return pidsWhenRunning(u);
}

/** Waits for get-nodes to show all RUNNING, then insists that /proc agrees pid for pid. */
async function pidsWhenRunning(u: Up, accept: (pids: Map<string, number>) => boolean = () => true): Promise<Map<string, number>> {
  const view = await allRunning(u.client, NAMES, (m) => accept(new Map([...m].map(([n, s]) => [n, s.pid!]))));
  const reported = new Map([...view].map(([n, s]) => [n, s.pid!]));
  expect(expectOneProcessEach(env.dir, NAMES)).toEqual(reported);
  return reported;
}

function failures(results: Result[]): Result[] {
  return results.filter((r) => !r.success);
}

describe("kill -9 anywhere: nothing lost, nothing doubled, everything answered", () => {
  it("a node killed -9 while RUNNING is revived exactly once; the other nodes keep their pids and all return to RUNNING", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig());
    const victim = before.get("worker-01")!;
    kill9(victim);
    const after = await pidsWhenRunning(u, (p) => p.get("worker-01") !== victim);
    for (const n of NAMES) if (n !== "worker-01") expect(after.get(n)).toBe(before.get(n));
    expect(startsOf(u, "worker-01")).toEqual([victim, after.get("worker-01")]);
  });

  it("a node killed -9 while starting (before its check-in) is started once more, the deploy is answered, and it ends with one process", async () => {
    const u = await up();
    const cfg = clusterConfig({ "worker-01": { CHAOS_START_DELAY_MS: "1500" } });
    await stage(u.client, cfg);
    const deploying = answered(u.client.deploy(), 25_000, "deploy");
    // The start record is written before the delayed check-in: the node is provably
    // alive and not yet announced when it dies.
    const first = await eventually(() => startsOf(u, "worker-01")[0], 15_000, "worker-01 to start");
    expect(pidAlive(first)).toBe(true);
    kill9(first);
    const answer = await deploying;
    expect(answer.ok).toBe(true);
    const after = await pidsWhenRunning(u);
    expect(after.get("worker-01")).not.toBe(first);
    expect(startsOf(u, "worker-01")).toEqual([first, after.get("worker-01")]);
    for (const n of NAMES) if (n !== "worker-01") expect(startsOf(u, n)).toHaveLength(1);
  });

  it("a node crashing again during its revival backoff is shown CRASHED, survives an agent kill in that window, and is revived exactly once", async () => {
    // A revival delay of 3 s opens a backoff window after a crash shortly after a spawn.
    const u = await up(["--request-timeout", "10", "--restart-delay", "3", "--stop-timeout", "3"]);
    const before = await deployAll(u, clusterConfig());
    const p1 = before.get("worker-01")!;
    kill9(p1);
    // The first revival is immediate (the run outlived the delay); the second crash comes
    // right after that spawn, still starting, so the supervisor now holds the node in backoff.
    const p2 = await waitForProcess(env.dir, "worker-01", [p1]);
    await eventually(() => startsOf(u, "worker-01").includes(p2), 3000, "the revived worker-01 to start");
    kill9(p2);
    await eventually(() => !livePids(env.dir).has("worker-01"), 2000, "worker-01 without a process");
    // The crash report travels supervisor → agent; within the backoff window it shows.
    const during = await eventually(
      async () => {
        const m = await nodeStates(u.client);
        return m.get("worker-01")?.state === "CRASHED" ? m : undefined;
      },
      2000,
      "worker-01 reported CRASHED",
    );
    expect(during.get("worker-01")!.pid).toBeUndefined();
    expect(livePids(env.dir).has("worker-01")).toBe(false);
    expect(during.get("manager")).toMatchObject({ state: "RUNNING", pid: before.get("manager") });

    const oldAgent = agentPid(env.dir, I1)!;
    kill9(oldAgent);
    const after = await pidsWhenRunning(u, (p) => ![p1, p2].includes(p.get("worker-01")!));
    expect(agentPid(env.dir, I1)).not.toBe(oldAgent);
    for (const n of NAMES) if (n !== "worker-01") expect(after.get(n)).toBe(before.get(n));
    expect(startsOf(u, "worker-01")).toEqual([p1, p2, after.get("worker-01")]);
  });

  it("a node killed -9 while being stopped for a restart is replaced by exactly one process, and the restart is answered", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig({ "worker-01": { CHAOS_STOP_DELAY_MS: "2500" } }));
    const old = before.get("worker-01")!;
    const restarting = answered(u.client.restart(["worker-01"]), 25_000, "restart");
    // The node honours SIGTERM only after 2.5 s: half a second in, it is mid-stop.
    await new Promise((r) => setTimeout(r, 500));
    expect(pidAlive(old)).toBe(true);
    expect(livePids(env.dir).get("worker-01")).toEqual([old]);
    kill9(old);
    const answer = await restarting;
    expect(answer.ok).toBe(true);
    if (answer.ok) expect(answer.value.find((r) => r.node === "worker-01")).toMatchObject({ success: true });
    const after = await pidsWhenRunning(u, (p) => p.get("worker-01") !== old);
    for (const n of NAMES) if (n !== "worker-01") expect(after.get(n)).toBe(before.get(n));
    expect(startsOf(u, "worker-01")).toEqual([old, after.get("worker-01")]);
  });

  it("nodes killed -9 while being stopped for a redeploy are each replaced by exactly one process, and the deploy is answered", async () => {
    const u = await up();
    const slowStop = everyNode({ CHAOS_STOP_DELAY_MS: "2500" });
    const before = await deployAll(u, clusterConfig(slowStop));
    // The same nodes under a new id: upstream semantics restart every node.
    await stage(u.client, clusterConfig(slowStop));
    // Without rollback: this test counts processes, and a rollback would start another
    // round of them. (With rollback on, the deploy check has seen a node report PENDING
    // after RUNNING in this scenario and rolled back; that is a known open issue.)
    const deploying = answered(u.client.deploy(undefined, false), 25_000, "redeploy");
    await new Promise((r) => setTimeout(r, 600));
    for (const pid of before.values()) expect(pidAlive(pid)).toBe(true);
    for (const pid of before.values()) kill9(pid);
    const answer = await deploying;
    expect(answer.ok).toBe(true);
    if (answer.ok) expect(failures(answer.value)).toEqual([]);
    const after = await pidsWhenRunning(u, (p) => NAMES.every((n) => p.get(n) !== before.get(n)));
    for (const n of NAMES) expect(startsOf(u, n)).toEqual([before.get(n), after.get(n)]);
  });

  it("a node the supervisor gave up on (FAILED) is brought back by a restart request, with exactly one process", async () => {
    const u = await up(["--request-timeout", "4", "--restart-delay", "0.2", "--restart-max-attempts", "2", "--stop-timeout", "3"]);
    const marker = join(env.dir, "worker-01-must-fail");
    writeFileSync(marker, "");
    const cfg = clusterConfig({ "worker-01": { CHAOS_FAIL_WHILE_EXISTS: marker } });
    await stage(u.client, cfg);
    const deployed = await u.client.deploy();
    expect(deployed.find((r) => r.node === "worker-01")).toMatchObject({ success: false });
    await eventually(async () => (await nodeStates(u.client)).get("worker-01")?.state === "FAILED", 15_000, "worker-01 FAILED");
    expect(livePids(env.dir).has("worker-01")).toBe(false);
    const others = new Map(NAMES.filter((n) => n !== "worker-01").map((n) => [n, startsOf(u, n)]));

    rmSync(marker);
    const restarted = await u.client.restart(["worker-01"]);
    expect(restarted.find((r) => r.node === "worker-01")).toMatchObject({ success: true });
    const after = await pidsWhenRunning(u);
    expect(startsOf(u, "worker-01").at(-1)).toBe(after.get("worker-01"));
    for (const [n, s] of others) expect(startsOf(u, n)).toEqual(s);
  });

  it("an agent killed -9 while a deploy is in flight comes back, the deploy is answered, and every node is started exactly once", async () => {
    const u = await up();
    const cfg = clusterConfig({ manager: { CHAOS_START_DELAY_MS: "2000" }, "worker-01": { CHAOS_START_DELAY_MS: "2000" } });
    await stage(u.client, cfg);
    const deploying = answered(u.client.deploy(), 25_000, "deploy");
    // Both of instance-1's nodes exist but have not checked in when their agent dies.
    await eventually(
      () => startsOf(u, "manager").length === 1 && startsOf(u, "worker-01").length === 1,
      15_000,
      "instance-1 nodes started",
    );
    const oldAgent = agentPid(env.dir, I1)!;
    kill9(oldAgent);
    const answer = await deploying;
    expect(answer.ok).toBe(true);
    const after = await pidsWhenRunning(u);
    expect(agentPid(env.dir, I1)).not.toBe(oldAgent);
    // The revived agent adopted the nodes instead of creating them again.
    for (const n of NAMES) expect(startsOf(u, n)).toEqual([after.get(n)]);
    expect(resultConfiguration(await u.client.getConfiguration(true))!.id).toBe(cfg.id);
  });

  it("an idle agent killed -9 comes back without touching its nodes and can drive them again", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig());
    const oldAgent = agentPid(env.dir, I1)!;
    kill9(oldAgent);
    await eventually(
      () => {
        const a = agentPid(env.dir, I1);
        return a !== undefined && a !== oldAgent;
      },
      15_000,
      "a new agent process",
    );
    await waitInstances(u.client, [I1, I2]);
    const after = await pidsWhenRunning(u);
    expect(after).toEqual(before);
    const restarted = await u.client.restart(["worker-01"]);
    expect(restarted.find((r) => r.node === "worker-01")).toMatchObject({ success: true });
    const final = await pidsWhenRunning(u, (p) => p.get("worker-01") !== before.get("worker-01"));
    for (const n of NAMES) if (n !== "worker-01") expect(final.get(n)).toBe(before.get(n));
  });

  it("a controller killed -9 mid-deploy loses no node, its clients get typed errors, and after a restart the same deploy touches nothing", async () => {
    const u = await up();
    const cfg = clusterConfig(everyNode({ CHAOS_START_DELAY_MS: "3000" }));
    await stage(u.client, cfg);
    const deploying = answered(u.client.deploy(), 25_000, "deploy");
    await eventually(() => NAMES.every((n) => startsOf(u, n).length === 1), 15_000, "every node started");
    kill9(u.controllerPid);
    const lost = await deploying;
    expect(lost.ok).toBe(false);
    // A request to a dead controller fails at once or by the client's timeout, typed.
    const meanwhile = await answered(u.client.getNodes(), 25_000, "get-nodes while the controller is down");
    expect(meanwhile.ok).toBe(false);

    await env.startController({ requestTimeoutSec: 15, port: u.controllerPort });
    const client = await connectClient(u.controllerPort, clients, 20_000);
    await waitInstances(client, [I1, I2]);
    expect(resultConfiguration(await client.getConfiguration(false))!.id).toBe(cfg.id);
    // The deploy never completed, so nothing claims it did.
    expect(await client.getConfiguration(true)).toMatchObject({ success: false });
    const running = await pidsWhenRunning({ ...u, client });
    for (const n of NAMES) expect(startsOf(u, n)).toEqual([running.get(n)]);

    const redeploy = await client.deploy();
    expect(failures(redeploy)).toEqual([]);
    expect(resultConfiguration(await client.getConfiguration(true))!.id).toBe(cfg.id);
    expect(await pidsWhenRunning({ ...u, client })).toEqual(running);
    for (const n of NAMES) expect(startsOf(u, n)).toHaveLength(1);
  });

  it("a supervisor killed -9 leaves no orphan behind (agent and nodes exit), and a new one on the same state brings its nodes back", async () => {
    const u = await up();
    const before = await deployAll(u, clusterConfig());
    const a1 = u.agents.get(I1)!;
    kill9(a1.supervisorPid);
    // Nodes notice within a second that their supervisor is gone; so must the agent,
    // or it keeps the listen port and answers for a host that can no longer act.
    await eventually(() => processesIn(a1.stateDir).length === 0, 8000, `no process left under ${I1}'s state directory`).catch(
      () => undefined,
    );
    expect(processesIn(a1.stateDir).map((p) => p.env.get("CLUSTER_NODE") ?? p.env.get("ZEEK_MANAGEMENT_NODE") ?? String(p.pid))).toEqual(
      [],
    );

    await env.startAgent({ name: I1, controllerPort: u.controllerPort, port: a1.port, stateDir: a1.stateDir, extraArgs: AGENT_ARGS });
    const after = await pidsWhenRunning(u, (p) => p.get("manager") !== before.get("manager"));
    expect(after.get("proxy-01")).toBe(before.get("proxy-01"));
    expect(after.get("worker-02")).toBe(before.get("worker-02"));
    expect(after.get("worker-01")).not.toBe(before.get("worker-01"));
  });
});
