// kill -9 of the controller while it deploys a new configuration over a running one. The
// restarted controller must finish that deployment (or roll it back) once: every node is
// started once for the new configuration and never again for the old one. Counted from
// the node script's start records, not from what anyone reports.

import { afterEach, describe, expect, it } from "vitest";
import type { ControllerClient } from "../../src/client/controller-client.js";
import { resultConfiguration } from "../../src/client/controller-client.js";
import type { Configuration } from "../../src/management/types.js";
import {
  AGENT_ARGS,
  TestEnv,
  allRunning,
  answered,
  chaosNode,
  config,
  connectClient,
  eventually,
  expectOneProcessEach,
  kill9,
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
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

function clusterConfig(vars: Record<string, string> = {}): Configuration {
  return config(
    [chaosNode("manager", I1, "MANAGER", vars), chaosNode("worker-01", I1, "WORKER", vars), chaosNode("worker-02", I2, "WORKER", vars)],
    [I1, I2],
  );
}

function startsOf(agents: Map<string, AgentHandle>, node: string): number[] {
  return starts(agents.get(HOME[node]!)!.stateDir, node);
}

async function pidsWhenRunning(client: ControllerClient): Promise<Map<string, number>> {
  const view = await allRunning(client, NAMES);
  const reported = new Map([...view].map(([n, s]) => [n, s.pid!]));
  expect(expectOneProcessEach(env.dir, NAMES)).toEqual(reported);
  return reported;
}

async function deployedId(client: ControllerClient): Promise<string | undefined> {
  return resultConfiguration(await client.getConfiguration(true))?.id;
}

describe("a controller killed -9 mid-deploy", () => {
  it("finishes the deployment after its restart, starting every node once for it and never again for the old configuration", async () => {
    env = new TestEnv("zmgmt-chaos-");
    const cluster = await startCluster(env, [I1, I2], { agentArgs: AGENT_ARGS, controllerTimeoutSec: 20 });
    const client = await connectClient(cluster.controllerPort, clients, 30_000);
    await waitInstances(client, [I1, I2]);

    const old = clusterConfig();
    expect((await client.stageConfiguration(old)).filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const before = await pidsWhenRunning(client);
    for (const n of NAMES) expect(startsOf(cluster.agents, n)).toEqual([before.get(n)]);

    // The new nodes hold back their check-in, so the agents are still deploying when the
    // controller dies.
    const next = clusterConfig({ CHAOS_START_DELAY_MS: "3000" });
    expect((await client.stageConfiguration(next)).filter((r) => !r.success)).toEqual([]);
    const deploying = answered(client.deploy(), 40_000, "deploy");
    await eventually(
      () => NAMES.every((n) => startsOf(cluster.agents, n).length === 2),
      20_000,
      "every node started for the new configuration",
    );
    kill9(cluster.controllerPid);
    expect((await deploying).ok).toBe(false);

    await env.startController({ requestTimeoutSec: 20, port: cluster.controllerPort });
    const again = await connectClient(cluster.controllerPort, clients, 30_000);
    await waitInstances(again, [I1, I2]);
    await eventually(async () => (await deployedId(again)) === next.id, 40_000, "the interrupted deployment to be finished");
    const after = await pidsWhenRunning(again);
    // Give a second (wrong) redeployment time to show itself.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await pidsWhenRunning(again)).toEqual(after);
    for (const n of NAMES) {
      const seen = startsOf(cluster.agents, n);
      expect(seen, `starts of ${n}`).toEqual([before.get(n), after.get(n)]);
    }
    expect(await deployedId(again)).toBe(next.id);
  });
});
