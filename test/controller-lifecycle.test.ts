// Agents coming and going, controllers restarting, and controller-initiated (c2a) links.

import { afterEach, describe, expect, it } from "vitest";
import { B } from "../src/broker/data.js";
import { AgentApi } from "../src/agent/api.js";
import { ControllerApi } from "../src/controller/api.js";
import type { Configuration } from "../src/management/types.js";
import {
  Cleanups,
  DialingAgent,
  ListeningAgent,
  TIMEOUT_MS,
  TestClient,
  a2cInstance,
  decodeConfig,
  makeConfig,
  node,
  sleep,
  startTestController,
  tempDir,
  waitFor,
  type TestController,
} from "./controller-harness.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function oneInstanceConfig(id: string): Configuration {
  return makeConfig(id, [a2cInstance("inst-1")], [node("manager", "inst-1", "MANAGER"), node("worker", "inst-1", "WORKER")]);
}

async function listed(client: TestClient, name: string): Promise<boolean> {
  return (await client.instances()).some((i) => i.name === name);
}

async function deployOne(ctl: TestController, client: TestClient, agent: DialingAgent, id = "cfg-1"): Promise<void> {
  await agent.attach(ctl.url, cleanups);
  await waitFor(() => listed(client, agent.name), "agent check-in");
  await client.stage(oneInstanceConfig(id));
  const results = await client.deploy();
  expect(results.at(-1)?.data).toEqual(B.str(id));
  expect(agent.logic.launches).toBe(1);
}

describe("agent check-in", () => {
  it("ignores agents that speak another API version", async () => {
    const ctl = await startTestController(cleanups);
    const client = await TestClient.connect(ctl.url, cleanups);
    const wrong = new DialingAgent("old-agent", { apiVersion: 2 });
    await wrong.attach(ctl.url, cleanups);
    const good = new DialingAgent("new-agent");
    await good.attach(ctl.url, cleanups);
    await waitFor(() => listed(client, "new-agent"), "good agent check-in");
    expect((await client.instances()).map((i) => i.name)).toEqual(["new-agent"]);
    expect(await ctl.logText()).toContain("instance old-agent/agent-id-old-agent has checked in with incompatible API version 2");
  });

  it("drops a lost agent's state and resynchronises it with the same config when it returns", async () => {
    const ctl = await startTestController(cleanups);
    const client = await TestClient.connect(ctl.url, cleanups);
    const agent = new DialingAgent("inst-1");
    await deployOne(ctl, client, agent);

    await agent.detach();
    await waitFor(async () => !(await listed(client, "inst-1")), "agent to be dropped");
    expect(await ctl.logText()).toContain("dropped state for instance inst-1");
    // Still part of the cluster, but no agent to ask.
    expect((await client.getNodes()).map((r) => r.error)).toEqual(["no instances connected"]);

    // The same agent process comes back: it already runs the config and changes nothing.
    await agent.attach(ctl.url, cleanups);
    await waitFor(() => agent.logic.alreadyRunning === 1, "internal redeploy to the returning agent");
    expect(agent.logic.launches).toBe(1);
    const [, , force] = AgentApi.deploy_request.parse(agent.logic.receivedNamed(AgentApi.deploy_request.name)[1]!);
    expect(force).toBe(false);
    expect(await ctl.logText()).toMatch(/no deployment in progress, triggering via \S+/);

    // A restarted agent (fresh state, same name) gets the config and launches its nodes.
    await agent.detach();
    await waitFor(async () => !(await listed(client, "inst-1")), "agent to be dropped again");
    const restarted = new DialingAgent("inst-1");
    await restarted.attach(ctl.url, cleanups);
    await waitFor(() => restarted.logic.launches === 1, "redeploy to the restarted agent");
    expect(restarted.logic.runningConfigId).toBe("cfg-1");
  });

  it("resends a pending deployment to an agent that dropped out before answering", async () => {
    const ctl = await startTestController(cleanups);
    const client = await TestClient.connect(ctl.url, cleanups);
    const stuck = new DialingAgent("inst-1", { ignore: [AgentApi.deploy_request.name] });
    await stuck.attach(ctl.url, cleanups);
    await waitFor(() => listed(client, "inst-1"), "agent check-in");
    await client.stage(oneInstanceConfig("cfg-resend"));
    const pending = client.send((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);
    await waitFor(() => stuck.logic.receivedNamed(AgentApi.deploy_request.name).length === 1, "deploy to reach the agent");

    await stuck.detach();
    const fresh = new DialingAgent("inst-1");
    await fresh.attach(ctl.url, cleanups);
    const [reqid, results] = await pending.response;
    expect(results.at(-1)).toMatchObject({ reqid, success: true, data: B.str("cfg-resend") });
    expect(results.filter((r) => !r.success)).toEqual([]);
    expect(fresh.logic.launches).toBe(1);
  });
});

describe("controller restart", () => {
  it("recovers staged and deployed configs and redeploys the same id without restarting nodes", async () => {
    const directory = await tempDir(cleanups);
    const first = await startTestController(cleanups, { directory });
    const client = await TestClient.connect(first.url, cleanups);
    const agent = new DialingAgent("inst-1");
    await deployOne(first, client, agent, "cfg-persist");
    const deployedBefore = decodeConfig(await client.getConfig(true));
    // Staging something new afterwards must survive too, without touching DEPLOYED.
    const next = oneInstanceConfig("cfg-next");
    await client.stage(next);
    await first.close();
    await agent.detach();

    const second = await startTestController(cleanups, { directory });
    const client2 = await TestClient.connect(second.url, cleanups);
    expect(decodeConfig(await client2.getConfig(false))).toEqual(next);
    expect(decodeConfig(await client2.getConfig(true))).toEqual(deployedBefore);

    await agent.attach(second.url, cleanups);
    await waitFor(() => agent.logic.alreadyRunning === 1, "redeploy of the persisted config");
    const deploys = agent.logic.receivedNamed(AgentApi.deploy_request.name).map((e) => AgentApi.deploy_request.parse(e)[1].id);
    expect(deploys).toEqual(["cfg-persist", "cfg-persist"]);
    expect(agent.logic.launches).toBe(1);
    expect(await second.logText()).toMatch(/deploying persisted configuration cfg-persist, request \S+/);

    // The recovered controller runs the cluster again.
    await waitFor(async () => (await client2.getIdValue("Cluster::node")).every((r) => r.error !== "no cluster deployed"), "cluster");
    expect((await client2.restart(["manager"])).map((r) => [r.node, r.success])).toEqual([["manager", true]]);
  });

  it("waits for agents that are slow to return, then still resynchronises them", async () => {
    const directory = await tempDir(cleanups);
    const first = await startTestController(cleanups, { directory });
    const client = await TestClient.connect(first.url, cleanups);
    const agent = new DialingAgent("inst-1");
    await deployOne(first, client, agent, "cfg-slow");
    await first.close();
    await agent.detach();

    const second = await startTestController(cleanups, { directory });
    // Let the start-up redeploy expire before the agent is back.
    await sleep(TIMEOUT_MS + 200);
    await agent.attach(second.url, cleanups);
    await waitFor(() => agent.logic.alreadyRunning === 1, "redeploy after the agent's return");
    expect(agent.logic.launches).toBe(1);
  });
});

describe("controller-initiated connections (c2a)", () => {
  it("dials instances with a listen port and reports that port", async () => {
    const ctl = await startTestController(cleanups);
    const client = await TestClient.connect(ctl.url, cleanups);
    const agent = new ListeningAgent("inst-c2a");
    await agent.listen(cleanups);
    const config = makeConfig(
      "cfg-c2a",
      [{ name: "inst-c2a", host: "127.0.0.1", listenPort: agent.port }],
      [node("manager", "inst-c2a", "MANAGER")],
    );
    await client.stage(config);
    // Nobody dials before a deployment needs the instance.
    expect(await client.instances()).toEqual([]);

    const results = await client.deploy();
    expect(results.map((r) => [r.node, r.success])).toEqual([
      ["manager", true],
      [undefined, true],
    ]);
    expect(await client.instances()).toEqual([{ name: "inst-c2a", host: "127.0.0.1", listenPort: agent.port }]);
    expect(agent.logic.receivedNamed(AgentApi.agent_welcome_request.name)).toHaveLength(1);
    expect((await client.getNodes()).map((r) => r.instance)).toEqual(["inst-c2a"]);
  });
});
