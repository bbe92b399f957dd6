// Deploys without collateral damage, with real controller, agents and nodes: a deployment
// that cannot reach every instance of its configuration changes nothing that runs, and
// one whose nodes do not come up rolls back to the last good configuration unless the
// client (or the controller's default) says otherwise.

import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ControllerClient, resultConfiguration, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import type { Configuration, Instance, Node, NodeStatus, Result } from "../src/management/types.js";
import { TestEnv } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

// Generous timeouts: on a loaded machine a node can take seconds to start and check in.
const AGENT_ARGS = ["--request-timeout", "10", "--restart-delay", "0.2", "--stop-timeout", "3"];

function node(name: string, instance: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

function instances(...names: string[]): Instance[] {
  return names.map((name) => ({ name, host: "0.0.0.0" }));
}

async function cluster(
  agents: string[],
  controllerArgs: string[] = [],
  requestTimeoutSec = 30,
): Promise<{ client: ControllerClient; port: number }> {
  env = new TestEnv();
  const controller = await env.startController({ requestTimeoutSec, extraArgs: controllerArgs });
  for (const name of agents) await env.startAgent({ name, controllerPort: controller.port, extraArgs: AGENT_ARGS });
  const client = await ControllerClient.connect({ url: `127.0.0.1:${controller.port}`, requestTimeoutMs: 90_000 });
  clients.push(client);
  await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === agents.length, 15_000, "agents");
  return { client, port: controller.port };
}

async function nodeStates(client: ControllerClient): Promise<Map<string, NodeStatus>> {
  const out = new Map<string, NodeStatus>();
  for (const r of await client.getNodes()) for (const s of resultNodeStatuses(r) ?? []) if (s.mgmtRole === "NONE") out.set(s.node, s);
  return out;
}

/** Waits until exactly `names` run, all RUNNING; returns their pids. */
async function running(client: ControllerClient, names: string[]): Promise<Map<string, number>> {
  return eventually(
    async () => {
      const m = await nodeStates(client);
      const ok = m.size === names.length && names.every((n) => m.get(n)?.state === "RUNNING" && m.get(n)?.pid !== undefined);
      return ok ? new Map(names.map((n) => [n, m.get(n)!.pid!])) : undefined;
    },
    20_000,
    `${names.join(", ")} RUNNING`,
  );
}

async function deployedId(client: ControllerClient): Promise<string | undefined> {
  return resultConfiguration(await client.getConfiguration(true))?.id;
}

async function stageAndDeploy(client: ControllerClient, config: Configuration, rollback?: boolean): Promise<Result[]> {
  const staged = await client.stageConfiguration(config);
  expect(staged.filter((r) => !r.success)).toEqual([]);
  return client.deploy(undefined, rollback);
}

function errors(results: Result[]): string[] {
  return results.filter((r) => !r.success && r.error !== undefined).map((r) => r.error!);
}

/** A node script that makes `zmgmt node` fail before it checks in. */
function crashingScript(): string {
  const path = join(env.dir, "crash-at-start.mjs");
  writeFileSync(path, 'throw new Error("boom at start");\n');
  return path;
}

/** A node script that lets `zmgmt node` check in and then exits. */
function lateCrashScript(): string {
  const path = join(env.dir, "crash-after-check-in.mjs");
  writeFileSync(path, "export function init() {\n  setTimeout(() => process.exit(3), 400);\n}\n");
  return path;
}

const GOOD: Configuration = {
  id: "",
  instances: instances("instance-1", "instance-2"),
  nodes: [node("manager", "instance-1", "MANAGER"), node("worker-01", "instance-1", "WORKER"), node("worker-02", "instance-2", "WORKER")],
};

function good(): Configuration {
  return { ...structuredClone(GOOD), id: randomUUID() };
}

describe("a deployment that cannot reach every instance", () => {
  it("changes nothing that runs: not when it adds a missing instance, nor when it also drops a connected one", async () => {
    // The missing instance makes each failing deployment wait out the controller's timeout.
    const { client } = await cluster(["instance-1", "instance-2"], [], 15);
    const first = good();
    expect(errors(await stageAndDeploy(client, first))).toEqual([]);
    const before = await running(client, ["manager", "worker-01", "worker-02"]);

    const withThird: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1", "instance-2", "instance-3"),
      nodes: [...first.nodes, node("worker-03", "instance-3", "WORKER")],
    };
    const added = await stageAndDeploy(client, withThird);
    expect(errors(added).join("\n")).toContain("instance 'instance-3' is not connected");
    expect(added.some((r) => r.success && r.node === undefined && r.instance === undefined)).toBe(false);
    expect(await running(client, ["manager", "worker-01", "worker-02"])).toEqual(before);
    expect(await deployedId(client)).toBe(first.id);

    // Dropping instance-2 would send it standby; a deployment that cannot go out must not.
    const swapped: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1", "instance-3"),
      nodes: [node("manager", "instance-1", "MANAGER"), node("worker-03", "instance-3", "WORKER")],
    };
    const dropped = await stageAndDeploy(client, swapped);
    expect(errors(dropped).join("\n")).toContain("instance 'instance-3' is not connected");
    expect(await running(client, ["manager", "worker-01", "worker-02"])).toEqual(before);
    expect(await deployedId(client)).toBe(first.id);

    // The cluster is still deployable afterwards.
    const next = good();
    expect(errors(await stageAndDeploy(client, next))).toEqual([]);
    expect(await deployedId(client)).toBe(next.id);
    // Two deployments wait out the controller's 15 s request timeout by design, on top of
    // three cluster deploys: more than the suite's default budget on a slow machine.
  }, 120_000);
});

describe("a deployment whose nodes do not come up", () => {
  it("rolls back to the last good configuration and says so; the old nodes run again", async () => {
    const { client } = await cluster(["instance-1", "instance-2"]);
    const first = good();
    expect(errors(await stageAndDeploy(client, first))).toEqual([]);
    await running(client, ["manager", "worker-01", "worker-02"]);
    const deployedBefore = resultConfiguration(await client.getConfiguration(true));
    expect(deployedBefore?.id).toBe(first.id);

    const broken: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1", "instance-2"),
      nodes: [node("manager", "instance-1", "MANAGER"), node("worker-02", "instance-2", "WORKER", { scripts: [crashingScript()] })],
    };
    const results = await stageAndDeploy(client, broken);
    const said = errors(results).join("\n");
    expect(said).toContain(`deployment failed; rolled back to configuration ${first.id}`);
    expect(said).toContain(`deployment of configuration ${broken.id} failed`);
    expect(results.find((r) => r.node === "worker-02")).toMatchObject({ success: false });
    await running(client, ["manager", "worker-01", "worker-02"]);
    expect(await deployedId(client)).toBe(first.id);
    expect(resultConfiguration(await client.getConfiguration(true))).toEqual(deployedBefore);

    // A node that checks in and then crashes passes the agent's answer, but not the check.
    const late: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1"),
      nodes: [node("manager", "instance-1", "MANAGER", { scripts: [lateCrashScript()] })],
    };
    const lateResults = await stageAndDeploy(client, late);
    expect(errors(lateResults).join("\n")).toContain(`deployment failed; rolled back to configuration ${first.id}`);
    await running(client, ["manager", "worker-01", "worker-02"]);
    expect(resultConfiguration(await client.getConfiguration(true))).toEqual(deployedBefore);
  });

  it("keeps the failing configuration when the client opts out (zmgmt deploy --no-rollback)", async () => {
    const { client, port } = await cluster(["instance-1"]);
    const first: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1"),
      nodes: [node("manager", "instance-1", "MANAGER")],
    };
    expect(errors(await stageAndDeploy(client, first))).toEqual([]);
    await running(client, ["manager"]);

    const broken: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1"),
      nodes: [node("manager", "instance-1", "MANAGER"), node("worker-01", "instance-1", "WORKER", { scripts: [crashingScript()] })],
    };
    expect((await client.stageConfiguration(broken)).filter((r) => !r.success)).toEqual([]);
    const cli = env.spawnCli(["--controller", `127.0.0.1:${port}`, "deploy", "--no-rollback"]);
    const code = await new Promise<number | null>((res) => cli.child.once("exit", (c) => res(c)));
    expect(code, cli.output()).toBe(1);
    expect(cli.output()).not.toContain("rolled back");
    expect(cli.output()).toContain("worker-01");
    expect(await deployedId(client)).toBe(broken.id);
    const states = await nodeStates(client);
    expect(states.get("manager")?.state).toBe("RUNNING");
    expect(states.get("worker-01")?.state).not.toBe("RUNNING");
  });

  it("keeps it for plain deploys when the controller runs with --no-deploy-rollback", async () => {
    const { client } = await cluster(["instance-1"], ["--no-deploy-rollback"]);
    const first: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1"),
      nodes: [node("manager", "instance-1", "MANAGER")],
    };
    expect(errors(await stageAndDeploy(client, first))).toEqual([]);
    const broken: Configuration = {
      id: randomUUID(),
      instances: instances("instance-1"),
      nodes: [node("manager", "instance-1", "MANAGER", { scripts: [crashingScript()] })],
    };
    const results = await stageAndDeploy(client, broken);
    expect(errors(results).join("\n")).not.toContain("rolled back");
    expect(await deployedId(client)).toBe(broken.id);
  });
});
