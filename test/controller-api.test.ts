// The controller's client API, driven over real WebSocket connections with scripted agents.

import { afterEach, describe, expect, it } from "vitest";
import { B } from "../src/broker/data.js";
import { encodeEventMessage, encodeDataMessage } from "../src/broker/messages.js";
import { awaitResponse } from "../src/broker/request.js";
import { AgentApi } from "../src/agent/api.js";
import { CONTROLLER_TOPIC, ControllerApi } from "../src/controller/api.js";
import { makeResult } from "../src/management/records.js";
import type { Configuration } from "../src/management/types.js";
import { RawClient } from "./helpers/ws.js";
import { agentHeaders, instanceSecret } from "../src/management/agent-auth.js";
import {
  HARNESS_MASTER_SECRET,
  Cleanups,
  DialingAgent,
  TIMEOUT_MS,
  TestClient,
  a2cInstance,
  decodeConfig,
  decodeNodeStatus,
  decodeOutputs,
  idResult,
  makeConfig,
  node,
  sleep,
  startTestController,
  waitFor,
  type TestController,
} from "./controller-harness.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function setup(): Promise<{ ctl: TestController; client: TestClient }> {
  const ctl = await startTestController(cleanups);
  const client = await TestClient.connect(ctl.url, cleanups);
  return { ctl, client };
}

async function connectAgents(ctl: TestController, client: TestClient, ...agents: DialingAgent[]): Promise<void> {
  for (const agent of agents) await agent.attach(ctl.url, cleanups);
  const names = agents.map((a) => a.name);
  await waitFor(
    async () => {
      const listed = (await client.instances()).map((i) => i.name);
      return names.every((n) => listed.includes(n));
    },
    `instances ${names.join(", ")} to check in`,
  );
}

/** Two instances; the manager and logger get auto-assigned ports from 2200. */
function twoInstanceConfig(id: string): Configuration {
  return makeConfig(
    id,
    [a2cInstance("inst-a"), a2cInstance("inst-b")],
    [
      node("manager", "inst-a", "MANAGER"),
      node("worker-1", "inst-a", "WORKER"),
      node("logger", "inst-b", "LOGGER"),
      node("worker-2", "inst-b", "WORKER"),
    ],
  );
}

async function deployTwoInstances(client: TestClient, ctl: TestController): Promise<{ a: DialingAgent; b: DialingAgent }> {
  const a = new DialingAgent("inst-a", {
    idValues: { manager: { "Cluster::node": '"manager"' }, "worker-1": { "Cluster::node": '"worker-1"' } },
  });
  const b = new DialingAgent("inst-b", {
    idValues: { logger: { "Cluster::node": '"logger"' }, "worker-2": { "Cluster::node": '"worker-2"' } },
  });
  await connectAgents(ctl, client, a, b);
  expect((await client.stage(twoInstanceConfig("cfg-two")))[0]?.success).toBe(true);
  const results = await client.deploy();
  expect(results.filter((r) => !r.success)).toEqual([]);
  return { a, b };
}

describe("get_instances", () => {
  it("lists checked-in agents sorted by name with their observed host and no port", async () => {
    const { ctl, client } = await setup();
    const [, empty] = await client.call((r) => ControllerApi.get_instances_request.make(r), ControllerApi.get_instances_response);
    expect(empty.success).toBe(true);
    expect(await client.instances()).toEqual([]);

    await connectAgents(ctl, client, new DialingAgent("zeta"), new DialingAgent("alpha"));
    expect(await client.instances()).toEqual([
      { name: "alpha", host: "127.0.0.1" },
      { name: "zeta", host: "127.0.0.1" },
    ]);
  });
});

describe("stage_configuration and get_configuration", () => {
  it("rejects an invalid config with every error sorted, and stores nothing", async () => {
    const { ctl, client } = await setup();
    const bad = makeConfig(
      "bad",
      [a2cInstance("inst-1")],
      [
        node("manager", "inst-1", "MANAGER", { port: 2150 }),
        node("worker-2", "nowhere", "WORKER"),
        node("worker-1", "elsewhere", "WORKER"),
        // The port clients reach this controller on: upstream only guards the Broker port.
        node("logger", "inst-1", "LOGGER", { port: ctl.port }),
      ],
    );
    const results = await client.stage(bad);
    expect(results.map((r) => r.success)).toEqual([false, false, false, false]);
    expect(results.map((r) => r.error)).toEqual([
      `node 'logger' port ${ctl.port}/tcp conflicts with controller WebSocket port`,
      "node 'manager' port 2150/tcp conflicts with controller port",
      "node 'worker-1' has undeclared instance name 'elsewhere'",
      "node 'worker-2' has undeclared instance name 'nowhere'",
    ]);
    expect(results.every((r) => r.instance === undefined && r.node === undefined && r.data === undefined)).toBe(true);
    expect(await client.getConfig(false)).toMatchObject({ success: false, error: "no staged configuration available" });
  });

  it("stores a valid config as sent and reports its id; deployed stays absent until deployed", async () => {
    const { client } = await setup();
    expect(await client.getConfig(false)).toMatchObject({ success: false, error: "no staged configuration available" });
    const config = makeConfig("cfg-1", [a2cInstance("inst-1")], [node("manager", "inst-1", "MANAGER"), node("w", "inst-1", "WORKER")]);
    const [, results] = await client.call(
      (r) => ControllerApi.stage_configuration_request.make(r, config),
      ControllerApi.stage_configuration_response,
    );
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ success: true, data: B.str("cfg-1") });

    const staged = await client.getConfig(false);
    expect(staged.success).toBe(true);
    // Exactly what the client uploaded: no filled-in hosts, no assigned ports.
    expect(decodeConfig(staged)).toEqual(config);
    const deployed = await client.getConfig(true);
    expect(deployed).toEqual(makeResult(deployed.reqid, { success: false, error: "no deployed configuration available" }));
  });
});

describe("deploy", () => {
  it("without a staged config says there is nothing to deploy", async () => {
    const { client } = await setup();
    const [reqid, results] = await client.call((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);
    expect(results).toEqual([makeResult(reqid, { success: false, error: "no configuration available to deploy" })]);
  });

  it("sends the config to every agent and passes their per-node results through", async () => {
    const { ctl, client } = await setup();
    const failure = { stdout: "starting\nlistening", stderr: "fatal error: no such interface" };
    const agent = new DialingAgent("inst-1", { failNodes: { "worker-1": failure } });
    await connectAgents(ctl, client, agent);
    const config = makeConfig(
      "cfg-deploy",
      [a2cInstance("inst-1")],
      [node("manager", "inst-1", "MANAGER"), node("worker-1", "inst-1", "WORKER"), node("worker-2", "inst-1", "WORKER")],
    );
    const [stageResult] = await client.stage(config);
    const [reqid, results] = await client.call((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);

    // The config id is the staged one, in a controller result that comes last.
    expect(stageResult!.data).toEqual(B.str("cfg-deploy"));
    expect(results.at(-1)).toEqual(idResult(reqid, "cfg-deploy"));
    const agentResults = results.slice(0, -1);
    const deployRequest = agent.logic.receivedNamed(AgentApi.deploy_request.name)[0]!;
    const [childReqid, sentConfig, force] = AgentApi.deploy_request.parse(deployRequest);
    expect(force).toBe(false);
    // Agent results keep the reqid the agent saw (the controller's sub-request id).
    expect(agentResults).toEqual([
      makeResult(childReqid, { instance: "inst-1", node: "manager" }),
      expect.objectContaining({ reqid: childReqid, instance: "inst-1", node: "worker-1", success: false }),
      makeResult(childReqid, { instance: "inst-1", node: "worker-2" }),
    ]);
    expect(decodeOutputs(agentResults[1]!)).toEqual(failure);

    // The agents got the READY config: observed host filled in, ports assigned.
    expect(sentConfig.instances).toEqual([{ name: "inst-1", host: "127.0.0.1" }]);
    expect(sentConfig.nodes.find((n) => n.name === "manager")?.port).toBe(2200);
    const deployed = decodeConfig(await client.getConfig(true));
    expect(deployed).toEqual(sentConfig);
    expect(decodeConfig(await client.getConfig(false))).toEqual(config);
  });

  it("deploys a config without instances at once, with only the id result", async () => {
    const { client } = await setup();
    await client.stage(makeConfig("cfg-empty", [], []));
    const [reqid, results] = await client.call((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);
    expect(results).toEqual([idResult(reqid, "cfg-empty")]);
    expect(decodeConfig(await client.getConfig(true))).toEqual(makeConfig("cfg-empty", [], []));
  });

  it("refuses a second deployment while one is pending, and times a missing agent out by name", async () => {
    const { ctl, client } = await setup();
    const present = new DialingAgent("present");
    await connectAgents(ctl, client, present);
    await client.stage(
      makeConfig(
        "cfg-ghost",
        [a2cInstance("present"), a2cInstance("ghost")],
        [node("manager", "present", "MANAGER"), node("worker", "ghost", "WORKER")],
      ),
    );
    const started = Date.now();
    const first = client.send((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);

    const [second, secondResults] = await client.call((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);
    expect(secondResults).toEqual([makeResult(second, { success: false, error: `earlier deployment ${first.reqid} still pending` })]);

    // Upstream bug (§12 item 15): with nodes named and nothing deployed yet, Zeek's handler
    // aborts and the client times out. We answer right away.
    const t0 = Date.now();
    const idValue = await client.getIdValue("Cluster::node", ["manager"]);
    expect(idValue.map((r) => r.error)).toEqual(["no cluster deployed"]);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS / 2);

    const [, results] = await first.response;
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    // All or nothing: the present agent never got the config either.
    expect(present.logic.receivedNamed(AgentApi.deploy_request.name)).toEqual([]);
    expect(results).toEqual([
      makeResult(first.reqid, { success: false, error: "request timed out" }),
      makeResult(first.reqid, { success: false, instance: "ghost", error: "instance 'ghost' is not connected" }),
    ]);
    expect(await client.getConfig(true)).toMatchObject({ success: false, error: "no deployed configuration available" });

    // Upstream keeps the abandoned instance set and, when the missing agent turns up,
    // welcomes it and quietly redeploys the old config. We restore the deployed
    // instances at the timeout instead: the late agent is left alone.
    expect(present.logic.receivedNamed(AgentApi.agent_standby_request.name)).toHaveLength(1);
    const ghost = new DialingAgent("ghost");
    await connectAgents(ctl, client, ghost);
    await sleep(200);
    expect(ghost.logic.received.map((e) => e.name)).toEqual([]);
    expect((await client.getIdValue("Cluster::node")).map((r) => r.error)).toEqual(["no cluster deployed"]);

    // With everyone present the same staged config now deploys.
    const again = await client.deploy();
    expect(again.at(-1)?.data).toEqual(B.str("cfg-ghost"));
    expect(again.filter((r) => !r.success)).toEqual([]);
  });
});

describe("get_nodes", () => {
  it("without agents says no instances are connected", async () => {
    const { client } = await setup();
    const [reqid, results] = await client.call((r) => ControllerApi.get_nodes_request.make(r), ControllerApi.get_nodes_response);
    expect(results).toEqual([makeResult(reqid, { success: false, error: "no instances connected" })]);
  });

  it("collects one node status list per agent", async () => {
    const { ctl, client } = await setup();
    await deployTwoInstances(client, ctl);
    // Agents answer in any order; the controller appends in arrival order.
    const results = (await client.getNodes()).sort((x, y) => (x.instance ?? "").localeCompare(y.instance ?? ""));
    expect(results.map((r) => [r.instance, r.success])).toEqual([
      ["inst-a", true],
      ["inst-b", true],
    ]);
    const a = decodeNodeStatus(results[0]!);
    expect(a.map((s) => [s.node, s.state, s.clusterRole, s.port])).toEqual([
      ["manager", "RUNNING", "MANAGER", 2200],
      ["worker-1", "RUNNING", "WORKER", undefined],
      ["inst-a", "RUNNING", "NONE", undefined],
    ]);
    expect(decodeNodeStatus(results[1]!).map((s) => s.node)).toEqual(["logger", "worker-2", "inst-b"]);
  });
});

describe("get_id_value", () => {
  it("without a cluster says so", async () => {
    const { client } = await setup();
    const [reqid, results] = await client.call(
      (r) => ControllerApi.get_id_value_request.make(r, "Cluster::node", []),
      ControllerApi.get_id_value_response,
    );
    expect(results).toEqual([makeResult(reqid, { success: false, error: "no cluster deployed" })]);
  });

  it("asks every node, rejects unknown node names, and mixes both", async () => {
    const { ctl, client } = await setup();
    await deployTwoInstances(client, ctl);

    const all = await client.getIdValue("Cluster::node");
    expect(Object.fromEntries(all.map((r) => [r.node, r.data]))).toEqual({
      manager: B.str('"manager"'),
      "worker-1": B.str('"worker-1"'),
      logger: B.str('"logger"'),
      "worker-2": B.str('"worker-2"'),
    });

    const t0 = Date.now();
    const [unknownReq, unknown] = await client.call(
      (r) => ControllerApi.get_id_value_request.make(r, "Cluster::node", ["nope"]),
      ControllerApi.get_id_value_response,
    );
    expect(unknown).toEqual([makeResult(unknownReq, { success: false, node: "nope", error: "unknown cluster node" })]);
    expect(Date.now() - t0).toBeLessThan(TIMEOUT_MS / 2);

    const mixed = await client.getIdValue("Cluster::node", ["worker-2", "nope"]);
    expect(mixed.map((r) => [r.node, r.success, r.error, r.instance])).toEqual([
      ["nope", false, "unknown cluster node", undefined],
      ["worker-2", true, undefined, "inst-b"],
    ]);

    const missing = await client.getIdValue("No::such_id", ["manager"]);
    expect(missing.map((r) => [r.node, r.error])).toEqual([["manager", "unknown id"]]);
  });
});

describe("restart", () => {
  it("needs connected instances, then a deployment", async () => {
    const { ctl, client } = await setup();
    expect((await client.restart()).map((r) => r.error)).toEqual(["no instances connected"]);
    await connectAgents(ctl, client, new DialingAgent("inst-1"));
    expect((await client.restart()).map((r) => r.error)).toEqual(["no active cluster deployment"]);
  });

  it("restarts named or all nodes and rejects unknown ones", async () => {
    const { ctl, client } = await setup();
    const { a, b } = await deployTwoInstances(client, ctl);

    const [unknownReq, unknown] = await client.call((r) => ControllerApi.restart_request.make(r, ["nope"]), ControllerApi.restart_response);
    expect(unknown).toEqual([makeResult(unknownReq, { success: false, node: "nope", error: "unknown cluster node" })]);
    expect(a.logic.receivedNamed(AgentApi.restart_request.name)).toEqual([]);

    const pidBefore = a.logic.nodes.get("manager")!.pid;
    const mixed = await client.restart(["manager", "nope"]);
    expect(mixed.map((r) => [r.node, r.success])).toEqual([
      ["nope", false],
      ["manager", true],
    ]);
    expect(a.logic.nodes.get("manager")!.pid).not.toBe(pidBefore);
    // The original node set goes to the agents; they pick out their own nodes.
    const [, sentNodes] = AgentApi.restart_request.parse(a.logic.receivedNamed(AgentApi.restart_request.name)[0]!);
    expect([...(sentNodes ?? [])].sort()).toEqual(["manager", "nope"]);

    const all = await client.restart();
    expect(all.map((r) => r.node).sort()).toEqual(["logger", "manager", "worker-1", "worker-2"]);
    expect(all.every((r) => r.success)).toBe(true);
    expect(b.logic.receivedNamed(AgentApi.restart_request.name)).toHaveLength(2);
  });
});

describe("test_timeout", () => {
  it("with state answers once the request times out", async () => {
    const { client } = await setup();
    const t0 = Date.now();
    const [reqid, result] = await client.call((r) => ControllerApi.test_timeout_request.make(r, true), ControllerApi.test_timeout_response);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(result).toEqual(makeResult(reqid, { success: false, error: "request timed out" }));
  });

  it("without state is never answered", async () => {
    const { client } = await setup();
    const silent = client.send(
      (r) => ControllerApi.test_timeout_request.make(r, false),
      ControllerApi.test_timeout_response,
      TIMEOUT_MS + 500,
    );
    await expect(silent.response).rejects.toThrow(/no Management::Controller::API::test_timeout_response/);
    expect(await client.instances()).toEqual([]);
  });
});

describe("robustness", () => {
  it("answers requests broadcast on the controller topic, so every client sees them", async () => {
    const { ctl, client } = await setup();
    const bystander = await TestClient.connect(ctl.url, cleanups);
    const { reqid, response } = client.send((r) => ControllerApi.get_instances_request.make(r), ControllerApi.get_instances_response);
    const seen = awaitResponse(bystander.peer, ControllerApi.get_instances_response, reqid, 3000);
    await response;
    expect((await seen)[0]).toBe(reqid);
  });

  it("survives malformed frames, non-events, unknown events and bad arguments", async () => {
    const { ctl, client } = await setup();
    // Agent x's own credentials, so its malformed hello gets as far as being decoded.
    const raw = await RawClient.open(ctl.url, agentHeaders("x", instanceSecret(HARNESS_MASTER_SECRET, "x")));
    cleanups.add(() => raw.close());
    raw.send(JSON.stringify([CONTROLLER_TOPIC]));
    await raw.waitFrames(1);
    raw.send("{not json");
    raw.send(encodeDataMessage(CONTROLLER_TOPIC, B.str("hello")));
    raw.send(encodeEventMessage(CONTROLLER_TOPIC, { name: "Management::Controller::API::test_noop_request", args: [B.str("x")] }));
    raw.send(encodeEventMessage(CONTROLLER_TOPIC, { name: ControllerApi.deploy_request.name, args: [B.count(7)] }));
    raw.send(
      encodeEventMessage(CONTROLLER_TOPIC, { name: ControllerApi.stage_configuration_request.name, args: [B.str("r"), B.str("cfg")] }),
    );
    raw.send(encodeEventMessage("zeek/management/agent/x", { name: AgentApi.notify_agent_hello.name, args: [B.str("x")] }));
    raw.send(
      encodeEventMessage("zeek/management/agent/x", { name: AgentApi.deploy_response.name, args: [B.str("unknown-req"), B.vec([])] }),
    );

    expect(await client.instances()).toEqual([]);
    expect((await client.stage(makeConfig("ok", [], [])))[0]?.success).toBe(true);
    const log = await waitFor(async () => {
      const text = await ctl.logText();
      return text.includes("ignoring malformed Management::Controller::API::stage_configuration_request") && text;
    }, "malformed-event log line");
    expect(log).toContain("ignoring malformed Management::Controller::API::deploy_request");
    expect(log).toContain("ignoring malformed Management::Agent::API::notify_agent_hello");
  });

  it("logs rx and tx lines for the API events it handles", async () => {
    const { ctl, client } = await setup();
    const [reqid] = await client.call((r) => ControllerApi.get_instances_request.make(r), ControllerApi.get_instances_response);
    const lines = await waitFor(async () => {
      const entries = (await ctl.logText())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      return entries.some((e) => String(e.message).startsWith("tx Management::Controller::API::get_instances_response")) && entries;
    }, "tx log line");
    expect(lines[0]).toMatchObject({ node: "controller", role: "CONTROLLER", level: "INFO" });
    expect(lines.map((e) => e.message)).toContain(`rx Management::Controller::API::get_instances_request ${reqid}`);
    expect(lines.map((e) => e.message)).toContain(`tx Management::Controller::API::get_instances_response success (reqid ${reqid})`);
    expect(String(lines[0]!.message)).toMatch(/^controller is live, Broker ID \S+, no Broker port, websocket port 127\.0\.0\.1:\d+$/);
  });
});
