// Test doubles for driving a real controller over WebSocket: a client peer, and scripted
// agents that speak the agent side of the protocol the way the spec describes it, either
// dialing the controller (a2c) or listening for it (c2a).

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { B } from "../src/broker/data.js";
import { Hub, deliveryEvent, type LocalEndpoint } from "../src/broker/hub.js";
import type { ZeekEvent } from "../src/broker/messages.js";
import { Peer } from "../src/broker/peer.js";
import { awaitResponse, request } from "../src/broker/request.js";
import { HubServer } from "../src/broker/server.js";
import type { Codec, EventSpec } from "../src/broker/schema.js";
import { AGENT_API_VERSION, AgentApi, agentTopic } from "../src/agent/api.js";
import { CONTROLLER_TOPIC, ControllerApi } from "../src/controller/api.js";
import { startController, type RunningController, type StartControllerOptions } from "../src/controller/main.js";
import { ConfigurationCodec, InstanceVecCodec, NodeOutputsCodec, NodeStatusVecCodec, makeResult } from "../src/management/records.js";
import type { Configuration, Instance, Node, NodeOutputs, NodeStatus, Result } from "../src/management/types.js";
import { errorMessage } from "../src/broker/errors.js";
import { AGENT_MASTER_SECRET_FILE, agentHeaders, instanceSecret, writeSecretFile } from "../src/management/agent-auth.js";

/** The agent master secret of test controllers; scripted agents derive their secrets from it. */
export const HARNESS_MASTER_SECRET = "harness-agent-master-secret-0123456789";

export const TIMEOUT_MS = 1000;

type Cleanup = () => Promise<void> | void;

/** Collects teardown steps; run them in reverse order after each test. */
export class Cleanups {
  private steps: Cleanup[] = [];
  add(step: Cleanup): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    for (const step of steps) await step();
  }
}

export async function tempDir(cleanups: Cleanups): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "controller-test-"));
  cleanups.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestController extends RunningController {
  directory: string;
  name: string;
  logText(): Promise<string>;
}

export async function startTestController(cleanups: Cleanups, options: Partial<StartControllerOptions> = {}): Promise<TestController> {
  const directory = options.directory ?? (await tempDir(cleanups));
  const name = options.name ?? "controller";
  writeSecretFile(join(directory, AGENT_MASTER_SECRET_FILE), HARNESS_MASTER_SECRET);
  const running = await startController({
    listenHost: "127.0.0.1",
    listenPort: 0,
    requestTimeoutMs: TIMEOUT_MS,
    logLevel: "DEBUG",
    ...options,
    directory,
    name,
  });
  cleanups.add(() => running.close());
  return {
    ...running,
    directory,
    name,
    logText: () => readFile(join(directory, `management-${name}.log`), "utf8"),
  };
}

// ---------------------------------------------------------------------------------------
// Client.

export class TestClient {
  readonly peer: Peer;
  private constructor(peer: Peer) {
    this.peer = peer;
  }

  static async connect(url: string, cleanups: Cleanups): Promise<TestClient> {
    const peer = new Peer({ url, topics: [CONTROLLER_TOPIC], initialDelayMs: 50, maxDelayMs: 200 }).start();
    cleanups.add(() => peer.close());
    await peer.waitReady(3000);
    return new TestClient(peer);
  }

  /** Sends a request with a fresh reqid and waits for the matching response. */
  call<A extends readonly Codec<unknown>[]>(
    make: (reqid: string) => ZeekEvent,
    response: EventSpec<A>,
    timeoutMs = TIMEOUT_MS * 3,
  ): Promise<ReturnType<EventSpec<A>["parse"]>> {
    return request(this.peer, CONTROLLER_TOPIC, make(randomUUID()), response, timeoutMs);
  }

  /** Sends a request and returns its reqid plus a promise for its response. */
  send<A extends readonly Codec<unknown>[]>(
    make: (reqid: string) => ZeekEvent,
    response: EventSpec<A>,
    timeoutMs = TIMEOUT_MS * 3,
  ): { reqid: string; response: Promise<ReturnType<EventSpec<A>["parse"]>> } {
    const reqid = randomUUID();
    const pending = awaitResponse(this.peer, response, reqid, timeoutMs);
    if (!this.peer.publishEvent(CONTROLLER_TOPIC, make(reqid))) throw new Error("client not connected");
    return { reqid, response: pending };
  }

  async instances(): Promise<Instance[]> {
    const [, result] = await this.call((r) => ControllerApi.get_instances_request.make(r), ControllerApi.get_instances_response);
    return InstanceVecCodec.decode(result.data!, "data");
  }

  async stage(config: Configuration): Promise<Result[]> {
    const [, results] = await this.call(
      (r) => ControllerApi.stage_configuration_request.make(r, config),
      ControllerApi.stage_configuration_response,
    );
    return results;
  }

  async getConfig(deployed: boolean): Promise<Result> {
    const [, result] = await this.call(
      (r) => ControllerApi.get_configuration_request.make(r, deployed),
      ControllerApi.get_configuration_response,
    );
    return result;
  }

  async deploy(): Promise<Result[]> {
    const [, results] = await this.call((r) => ControllerApi.deploy_request.make(r), ControllerApi.deploy_response);
    return results;
  }

  async getNodes(): Promise<Result[]> {
    const [, results] = await this.call((r) => ControllerApi.get_nodes_request.make(r), ControllerApi.get_nodes_response);
    return results;
  }

  async getIdValue(id: string, nodes: string[] = []): Promise<Result[]> {
    const [, results] = await this.call((r) => ControllerApi.get_id_value_request.make(r, id, nodes), ControllerApi.get_id_value_response);
    return results;
  }

  async restart(nodes: string[] = []): Promise<Result[]> {
    const [, results] = await this.call((r) => ControllerApi.restart_request.make(r, nodes), ControllerApi.restart_response);
    return results;
  }
}

export function decodeConfig(result: Result): Configuration {
  return ConfigurationCodec.decode(result.data!, "data");
}

export function decodeNodeStatus(result: Result): NodeStatus[] {
  return NodeStatusVecCodec.decode(result.data!, "data");
}

export function decodeOutputs(result: Result): NodeOutputs {
  return NodeOutputsCodec.decode(result.data!, "data");
}

/** The config-id Result a successful stage or deploy ends with. */
export function idResult(reqid: string, id: string): Result {
  return makeResult(reqid, { data: B.str(id) });
}

// ---------------------------------------------------------------------------------------
// Configurations.

export function node(name: string, instance: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

export function a2cInstance(name: string): Instance {
  return { name, host: "0.0.0.0" };
}

export function makeConfig(id: string, instances: Instance[], nodes: Node[]): Configuration {
  return { id, instances, nodes };
}

// ---------------------------------------------------------------------------------------
// Scripted agents.

export interface ScriptedAgentOptions {
  apiVersion?: number;
  /** The secret presented when dialing in; the instance's own by default, null for none. */
  secret?: string | null;
  /** Nodes whose launch fails, with the output the agent reports for them. */
  failNodes?: Record<string, NodeOutputs>;
  /** get_id_value answers: node -> identifier -> JSON text. */
  idValues?: Record<string, Record<string, string>>;
  /** Request events this agent receives but never answers. */
  ignore?: string[];
}

interface RunningNode {
  node: Node;
  pid: number;
}

/**
 * The agent side of the protocol, without a transport: it takes controller requests and
 * returns the events to send back, keeping the state a real agent would (the running
 * config id and its nodes).
 */
export class ScriptedAgentLogic {
  readonly received: ZeekEvent[] = [];
  runningConfigId: string | undefined;
  readonly nodes = new Map<string, RunningNode>();
  /** Deployments that actually (re)started nodes, as opposed to "already running". */
  launches = 0;
  alreadyRunning = 0;
  private nextPid = 1000;

  constructor(
    readonly name: string,
    readonly options: ScriptedAgentOptions = {},
  ) {}

  hello(connecting: boolean): ZeekEvent {
    return AgentApi.notify_agent_hello.make(this.name, `agent-id-${this.name}`, connecting, this.options.apiVersion ?? AGENT_API_VERSION);
  }

  receivedNamed(name: string): ZeekEvent[] {
    return this.received.filter((e) => e.name === name);
  }

  handle(event: ZeekEvent): ZeekEvent[] {
    this.received.push(event);
    if (this.options.ignore?.includes(event.name)) return [];
    const me = this.name;
    switch (event.name) {
      case AgentApi.agent_welcome_request.name: {
        const [reqid] = AgentApi.agent_welcome_request.parse(event);
        return [AgentApi.agent_welcome_response.make(reqid, makeResult(reqid, { instance: me }))];
      }
      case AgentApi.agent_standby_request.name: {
        const [reqid] = AgentApi.agent_standby_request.parse(event);
        this.nodes.clear();
        this.runningConfigId = undefined;
        return [AgentApi.agent_standby_response.make(reqid, makeResult(reqid, { instance: me }))];
      }
      case AgentApi.deploy_request.name: {
        const [reqid, config, force] = AgentApi.deploy_request.parse(event);
        if (config.id === this.runningConfigId && force !== true) {
          this.alreadyRunning++;
          return [AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance: me })])];
        }
        this.launches++;
        this.runningConfigId = config.id;
        this.nodes.clear();
        const mine = config.nodes.filter((n) => n.instance === me).sort((a, b) => a.name.localeCompare(b.name));
        if (config.nodes.length === 0) return [AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance: me })])];
        const results = mine.map((n) => {
          const failure = this.options.failNodes?.[n.name];
          if (failure) {
            return makeResult(reqid, { instance: me, node: n.name, success: false, data: NodeOutputsCodec.encode(failure) });
          }
          this.nodes.set(n.name, { node: n, pid: this.nextPid++ });
          return makeResult(reqid, { instance: me, node: n.name });
        });
        return [AgentApi.deploy_response.make(reqid, results)];
      }
      case AgentApi.get_nodes_request.name: {
        const [reqid] = AgentApi.get_nodes_request.parse(event);
        const statuses: NodeStatus[] = [...this.nodes.values()].map(({ node: n, pid }) => ({
          node: n.name,
          state: "RUNNING",
          mgmtRole: "NONE",
          clusterRole: n.role,
          pid,
          ...(n.port !== undefined ? { port: n.port } : {}),
          ...(n.metricsPort !== undefined ? { metricsPort: n.metricsPort } : {}),
        }));
        statuses.push({ node: me, state: "RUNNING", mgmtRole: "AGENT", clusterRole: "NONE" });
        return [AgentApi.get_nodes_response.make(reqid, makeResult(reqid, { instance: me, data: NodeStatusVecCodec.encode(statuses) }))];
      }
      case AgentApi.node_dispatch_request.name: {
        const [reqid, action, nodes] = AgentApi.node_dispatch_request.parse(event);
        const targets = this.targets(nodes ?? []);
        const results = targets.map((n) => {
          const value = this.options.idValues?.[n]?.[action[1] ?? ""];
          return value !== undefined
            ? makeResult(reqid, { instance: me, node: n, data: B.str(value) })
            : makeResult(reqid, { instance: me, node: n, success: false, error: "unknown id" });
        });
        return [AgentApi.node_dispatch_response.make(reqid, results)];
      }
      case AgentApi.restart_request.name: {
        const [reqid, nodes] = AgentApi.restart_request.parse(event);
        const results = this.targets(nodes ?? []).map((n) => {
          this.nodes.get(n)!.pid = this.nextPid++;
          return makeResult(reqid, { instance: me, node: n });
        });
        return [AgentApi.restart_response.make(reqid, results)];
      }
      default:
        return [];
    }
  }

  private targets(nodes: string[]): string[] {
    const mine = [...this.nodes.keys()].sort();
    return nodes.length === 0 ? mine : mine.filter((n) => nodes.includes(n));
  }
}

/** An agent that dials the controller (a2c), like the default agent set-up. */
export class DialingAgent {
  readonly logic: ScriptedAgentLogic;
  private peer: Peer | undefined;

  constructor(name: string, options: ScriptedAgentOptions = {}) {
    this.logic = new ScriptedAgentLogic(name, options);
  }

  get name(): string {
    return this.logic.name;
  }

  /** Connects (again) to a controller; keeps the running state across connections. */
  async attach(url: string, cleanups: Cleanups): Promise<void> {
    await this.detach();
    const topic = agentTopic(this.name);
    const secret = this.logic.options.secret === undefined ? instanceSecret(HARNESS_MASTER_SECRET, this.name) : this.logic.options.secret;
    const headers = agentHeaders(this.name, secret ?? undefined);
    const peer = new Peer({ url, topics: [topic], initialDelayMs: 50, maxDelayMs: 200, headers });
    this.peer = peer;
    peer.on("ready", () => peer.publishEvent(topic, this.logic.hello(true)));
    peer.on("event", (_topic, event) => {
      for (const reply of this.logic.handle(event)) peer.publishEvent(topic, reply);
    });
    peer.start();
    cleanups.add(() => this.detach());
    await peer.waitReady(3000);
  }

  async detach(): Promise<void> {
    const peer = this.peer;
    this.peer = undefined;
    await peer?.close();
  }
}

/** An agent that listens for the controller (c2a): it says hello when the controller subscribes. */
export class ListeningAgent {
  readonly logic: ScriptedAgentLogic;
  private server: HubServer | undefined;
  private endpoint: LocalEndpoint | undefined;

  constructor(name: string, options: ScriptedAgentOptions = {}) {
    this.logic = new ScriptedAgentLogic(name, options);
  }

  get port(): number {
    return this.server!.port;
  }

  async listen(cleanups: Cleanups): Promise<void> {
    const hub = new Hub();
    const topic = agentTopic(this.logic.name);
    const endpoint = hub.local([topic], (d) => {
      const event = deliveryEvent(d);
      if (!event) return;
      for (const reply of this.logic.handle(event)) endpoint.publishEvent(topic, reply);
    });
    this.endpoint = endpoint;
    hub.on("connect", (_origin, topics: readonly string[]) => {
      if (topics.includes(topic)) endpoint.publishEvent(topic, this.logic.hello(false));
    });
    this.server = await HubServer.listen(hub, { host: "127.0.0.1", port: 0 });
    cleanups.add(() => this.close());
  }

  async close(): Promise<void> {
    this.endpoint?.close();
    await this.server?.close();
  }
}

/** Waits until `check` holds, polling; fails with `what` after the bound. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 3000,
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Exclude<T, false | 0 | "" | null | undefined>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${errorMessage(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
