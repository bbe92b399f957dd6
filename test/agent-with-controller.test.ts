// `zmgmt agent --with-controller`: one supervisor runs the agent and the controller, as
// upstream does for a single host, and get-nodes lists the controller under that instance
// with the CONTROLLER role and its own port. Real processes throughout.

import { afterEach, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import type { Configuration, NodeStatus } from "../src/management/types.js";
import { TestEnv, freePort, freePortRange, pidAlive } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

async function statuses(client: ControllerClient): Promise<Array<NodeStatus & { instance: string | undefined }>> {
  return (await client.getNodes()).flatMap((r) => (resultNodeStatuses(r) ?? []).map((s) => ({ ...s, instance: r.instance })));
}

describe("zmgmt agent --with-controller", () => {
  it("runs the controller under the agent's supervisor, lists it in get-nodes under the instance, and revives it without touching nodes", async () => {
    env = new TestEnv();
    const agentPort = await freePort();
    const controllerPort = await freePort();
    const agent = env.spawnCli([
      "agent",
      "--name",
      "instance-1",
      "--state-dir",
      join(env.dir, "state"),
      "--listen",
      `127.0.0.1:${agentPort}`,
      "--no-zeek",
      "--request-timeout",
      "10",
      "--with-controller",
      "--controller-name",
      "ctl-one",
      "--controller-listen",
      `127.0.0.1:${controllerPort}`,
      "--controller-broker-start-port",
      String(await freePortRange(8)),
      "--controller-metrics-start-port",
      String(await freePortRange(8)),
    ]);
    await eventually(() => env.canConnect(controllerPort), 20_000, "the controller the agent runs");
    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}`, requestTimeoutMs: 30_000 });
    clients.push(client);
    await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === 1, 20_000, "the agent to check in");
    // The start-up line comes once the agent listens, which may be after it checked in.
    await eventually(() => agent.output().includes("controller ctl-one"), 15_000, "the agent's start-up line naming its controller");

    const before = await statuses(client);
    const controller = before.find((s) => s.mgmtRole === "CONTROLLER");
    expect(controller).toMatchObject({
      node: "ctl-one",
      instance: "instance-1",
      state: "RUNNING",
      clusterRole: "NONE",
      port: controllerPort,
    });
    expect(pidAlive(controller!.pid!)).toBe(true);
    expect(before.find((s) => s.mgmtRole === "AGENT")).toMatchObject({ node: "instance-1", instance: "instance-1" });

    const cfg: Configuration = {
      id: randomUUID(),
      instances: [{ name: "instance-1", host: "0.0.0.0" }],
      nodes: [
        { name: "manager", instance: "instance-1", role: "MANAGER", state: "RUNNING", env: {} },
        { name: "worker-01", instance: "instance-1", role: "WORKER", state: "RUNNING", env: {} },
      ],
    };
    expect((await client.stageConfiguration(cfg)).filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const running = await eventually(
      async () => {
        const all = await statuses(client);
        const nodes = all.filter((s) => s.mgmtRole === "NONE");
        return nodes.length === 2 && nodes.every((s) => s.state === "RUNNING") ? all : undefined;
      },
      20_000,
      "the cluster's nodes RUNNING",
    );
    expect(running.map((s) => s.node).sort()).toEqual(["ctl-one", "instance-1", "manager", "worker-01"]);
    const nodePids = new Map(running.filter((s) => s.mgmtRole === "NONE").map((s) => [s.node, s.pid]));

    // The supervisor revives a controller that dies; the nodes never notice.
    process.kill(controller!.pid!, "SIGKILL");
    await client.close();
    const again = await eventually(
      async () => {
        if (!(await env.canConnect(controllerPort))) return undefined;
        const c = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}`, requestTimeoutMs: 30_000 });
        clients.push(c);
        return c;
      },
      30_000,
      "the revived controller",
    );
    const revived = await eventually(
      async () => {
        const all = await statuses(again);
        const ctl = all.find((s) => s.mgmtRole === "CONTROLLER");
        return ctl && ctl.pid !== controller!.pid && all.filter((s) => s.mgmtRole === "NONE").length === 2 ? all : undefined;
      },
      30_000,
      "get-nodes from the revived controller",
    );
    for (const s of revived.filter((n) => n.mgmtRole === "NONE")) expect(s.pid).toBe(nodePids.get(s.node));
  });
});
