// The controller's logic: it answers clients on the controller topic, keeps track of the
// agents that checked in, stores configurations and drives deployments across agents.
// It talks to the world through a Hub (clients and agents that dial in) and through
// dialed agent links (instances with a listen port); sockets are wired up in ./main.ts.

import { hostname } from "node:os";
import { B } from "../broker/data.js";
import { ProtocolError, errorMessage } from "../broker/errors.js";
import { type Delivery, type Hub, type LocalEndpoint, type Origin, deliveryEvent } from "../broker/hub.js";
import { WEBSOCKET_PATH, eventToData, type ZeekEvent } from "../broker/messages.js";
import { Peer, type PeerTlsOptions } from "../broker/peer.js";
import type { Codec, EventSpec } from "../broker/schema.js";
import { AGENT_TOPIC_PREFIX, AgentApi, agentTopic } from "../agent/api.js";
import { CONFIG_STATES, ConfigStore, type ConfigState } from "../management/config-store.js";
import { createLogger, type LogLevel, type Logger } from "../management/log.js";
import { DEFAULT_BROKER_START_PORT, DEFAULT_METRICS_START_PORT, prepareReadyConfig } from "../management/ports.js";
import {
  ConfigurationCodec,
  InstanceVecCodec,
  NodeOutputsCodec,
  NodeStatusVecCodec,
  makeResult,
  resultToString,
} from "../management/records.js";
import type { Configuration, Instance, Result } from "../management/types.js";
import { compareText, validateConfiguration } from "../management/validation.js";
import {
  CONTROLLER_API_VERSION,
  CONTROLLER_TOPIC,
  ControllerApi,
  DEFAULT_CONTROLLER_PORT,
  DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
} from "./api.js";
import { DuplicateRequestError, RequestTracker, requestToString, type Timers, type TrackedRequest } from "../management/request.js";

const UNKNOWN_HOST = "0.0.0.0";
const TIMED_OUT = "request timed out";

export interface ControllerOptions {
  /** Default `controller-<hostname>`. */
  name?: string;
  /** State directory: stored configurations and management-<name>.log live here. */
  directory?: string;
  /** Default 10 s. */
  requestTimeoutMs?: number;
  /** Default true. */
  autoAssignBrokerPorts?: boolean;
  /** Default true. */
  autoAssignMetricsPorts?: boolean;
  /** Default 2200. */
  brokerStartPort?: number;
  /** Default 9000. */
  metricsStartPort?: number;
  /** Upstream's Broker port, kept off-limits to nodes for compatibility. Default 2150. */
  controllerPort?: number;
  /** The WebSocket port clients and agents use; also kept off-limits to nodes. */
  controllerWebSocketPort?: number;
  /** Used only when no logger is injected. Default INFO. */
  logLevel?: LogLevel;
}

/** Where the controller dials an instance that has a listen port. */
export interface DialTarget {
  instance: string;
  host: string;
  port: number;
  /** The agent topic to subscribe to on the agent's endpoint. */
  topic: string;
}

export interface DialHandlers {
  ready(): void;
  down(reason: string): void;
  event(topic: string, event: ZeekEvent): void;
}

/** A controller-initiated link to one agent; it reconnects on its own until closed. */
export interface DialedAgent {
  publishEvent(topic: string, event: ZeekEvent): boolean;
  close(): Promise<void>;
}

export type AgentDialer = (target: DialTarget, handlers: DialHandlers) => DialedAgent;

/**
 * Dials agents over the WebSocket JSON API, retrying about once a second like upstream.
 * With `tls` every agent is dialed over wss:// and must present a certificate that is valid
 * for the instance's configured host.
 */
export function createWebSocketAgentDialer(options: { tls?: PeerTlsOptions } = {}): AgentDialer {
  return (target, handlers) => {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    const peer = new Peer({
      url: `${options.tls ? "wss" : "ws"}://${host}:${target.port}${WEBSOCKET_PATH}`,
      topics: [target.topic],
      initialDelayMs: 250,
      maxDelayMs: 1000,
      ...(options.tls ? { tls: options.tls } : {}),
    });
    peer.on("ready", () => handlers.ready());
    peer.on("down", (reason) => handlers.down(reason));
    peer.on("event", (topic, event) => handlers.event(topic, event));
    peer.start();
    return { publishEvent: (topic, event) => peer.publishEvent(topic, event), close: () => peer.close() };
  };
}

export const webSocketAgentDialer: AgentDialer = createWebSocketAgentDialer();

export interface ControllerDeps {
  logger?: Logger;
  timers?: Timers;
  dialAgent?: AgentDialer;
  /** An already opened store; otherwise one is opened in `directory` (if given). */
  store?: ConfigStore;
}

export interface WebSocketEndpoint {
  host: string;
  port: number;
}

// ---------------------------------------------------------------------------------------
// Internal state.

interface Dial {
  readonly instance: string;
  readonly host: string;
  readonly port: number;
  readonly handle: DialedAgent;
}

/** How an agent reached us, and so how we reach it and notice losing it. */
type AgentLink = { kind: "hub"; origin: Origin } | { kind: "dialed"; dial: Dial };

interface KnownInstance {
  /** Name, observed host, and the dialed port for instances we connect to. */
  instance: Instance;
  /** The id the agent sent in its hello (its Broker endpoint id upstream). */
  agentId: string;
  link: AgentLink;
}

interface DeployState {
  kind: "deploy";
  config: Configuration;
  /** Internal redeploys (start-up, agents coming back) never answer a client. */
  internal: boolean;
  /** Instances the config was sent to (in this deployment) and that are still expected to answer or did. */
  sentTo: Set<string>;
  answered: Set<string>;
}

type FanOutOp = "get_nodes" | "node_dispatch" | "restart";

type RequestState =
  | DeployState
  | { kind: "get_nodes" }
  | { kind: "get_id_value" }
  | { kind: "restart" }
  | { kind: "test_timeout" }
  | { kind: "welcome"; instance: string }
  | { kind: "agent"; instance: string; op: "deploy" | FanOutOp };

type Request = TrackedRequest<RequestState>;

/** The shape shared by every controller response event. */
interface ResponseSpec<P> {
  readonly name: string;
  make(reqid: string, payload: P): ZeekEvent;
}

type Handler = (event: ZeekEvent, link: AgentLink) => void;

function sameLink(a: AgentLink, b: AgentLink): boolean {
  if (a.kind === "hub" && b.kind === "hub") return a.origin.id === b.origin.id;
  if (a.kind === "dialed" && b.kind === "dialed") return a.dial === b.dial;
  return false;
}

/** Upstream's `is_instance_connectivity_change`. */
function connectivityChanged(current: Instance, next: Instance): boolean {
  if (next.host !== UNKNOWN_HOST && next.host !== current.host) return true;
  if ((current.listenPort === undefined) !== (next.listenPort === undefined)) return true;
  return current.listenPort !== undefined && current.listenPort !== next.listenPort;
}

function byName<T extends { name: string }>(a: T, b: T): number {
  return compareText(a.name, b.name);
}

/**
 * The controller. Create with {@link Controller.open}, then {@link Controller.start} once
 * the hub is about to accept connections.
 */
export class Controller {
  readonly name: string;
  private readonly log: Logger;
  private readonly requests: RequestTracker<RequestState>;
  private readonly dialAgent: AgentDialer;
  private readonly options: ControllerOptions;
  private readonly configs: Map<ConfigState, Configuration>;
  private readonly handlers = new Map<string, Handler>();

  /** Every agent that checked in and is still connected (upstream g_instances_known). */
  private readonly known = new Map<string, KnownInstance>();
  /** The instances the current configuration needs (upstream g_instances). */
  private readonly instances = new Map<string, Instance>();
  /** Instances in `instances` that answered a welcome (upstream g_instances_ready). */
  private readonly ready = new Set<string>();
  /** Welcome request id per instance, so repeated hellos do not pile up welcomes. */
  private readonly welcomes = new Map<string, string>();
  private readonly dials = new Map<string, Dial>();
  private pendingDeployId: string | undefined;

  private local: LocalEndpoint | undefined;
  private webSocketPort: number | undefined;
  private readonly writes = new Set<Promise<void>>();
  private closed = false;
  private readonly onHubDisconnect = (origin: Origin): void => this.linkLost({ kind: "hub", origin }, "connection closed");
  private readonly onHubConnect = (origin: Origin, topics: readonly string[]): void =>
    this.log.debug(`broker peer ${origin.id} added: ${describeOrigin(origin)} subscribed to ${topics.join(", ")}`);
  private readonly onHubBadFrame = (info: { origin: Origin; error: unknown }): void =>
    this.log.warning(`ignoring undecodable message from ${describeOrigin(info.origin)}: ${errorMessage(info.error)}`);

  private constructor(
    private readonly hub: Hub,
    private readonly store: ConfigStore | undefined,
    options: ControllerOptions,
    deps: ControllerDeps,
    logger: Logger,
  ) {
    this.options = options;
    this.name = options.name ?? defaultControllerName();
    this.log = logger;
    this.requests = new RequestTracker<RequestState>({
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
      ...(deps.timers ? { timers: deps.timers } : {}),
    });
    this.dialAgent = deps.dialAgent ?? webSocketAgentDialer;
    this.webSocketPort = options.controllerWebSocketPort;
    this.configs = new Map();
    if (store) {
      for (const state of CONFIG_STATES) {
        const config = store.get(state);
        if (config) this.configs.set(state, config);
      }
    }
    this.registerHandlers();
  }

  static async open(hub: Hub, options: ControllerOptions = {}, deps: ControllerDeps = {}): Promise<Controller> {
    const name = options.name ?? defaultControllerName();
    const logger =
      deps.logger ??
      createLogger({
        node: name,
        role: "CONTROLLER",
        ...(options.directory !== undefined ? { directory: options.directory } : {}),
        level: options.logLevel ?? "INFO",
      });
    let store = deps.store;
    if (!store && options.directory !== undefined) {
      const opened = await ConfigStore.open(options.directory);
      if (opened.error) logger.error(opened.error);
      store = opened.store;
    }
    return new Controller(hub, store, { ...options, name }, deps, logger);
  }

  /**
   * Subscribes to the controller and agent topics and redeploys a persisted DEPLOYED
   * configuration. Call it before the hub's listener can deliver anything, or early
   * hellos go unheard.
   */
  start(endpoint?: WebSocketEndpoint): void {
    if (this.local || this.closed) return;
    if (endpoint) this.webSocketPort = endpoint.port;
    this.local = this.hub.local([CONTROLLER_TOPIC, AGENT_TOPIC_PREFIX], (d) => this.onDelivery(d));
    this.hub.on("disconnect", this.onHubDisconnect);
    this.hub.on("connect", this.onHubConnect);
    this.hub.on("bad-frame", this.onHubBadFrame);
    const ws = endpoint ? `websocket port ${endpoint.host}:${endpoint.port}` : "no Websocket port";
    this.log.info(`controller is live, Broker ID ${this.hub.endpointId}, no Broker port, ${ws}`);

    const deployed = this.configs.get("DEPLOYED");
    if (deployed) {
      const req = this.createDeployRequest(undefined, deployed, true);
      this.log.info(`deploying persisted configuration ${deployed.id}, request ${req.id}`);
      this.launchDeploy(req, false);
    }
  }

  /** Stops answering, forgets pending requests, closes agent links, waits for stores. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.requests.clear();
    this.hub.off("disconnect", this.onHubDisconnect);
    this.hub.off("connect", this.onHubConnect);
    this.hub.off("bad-frame", this.onHubBadFrame);
    this.local?.close();
    const dials = [...this.dials.values()];
    this.dials.clear();
    await Promise.all(dials.map((d) => d.handle.close().catch(() => undefined)));
    await Promise.all([...this.writes]);
    this.log.flush();
  }

  /** A copy of the stored configuration for a state, for inspection. */
  configuration(state: ConfigState): Configuration | undefined {
    const config = this.configs.get(state);
    return config ? structuredClone(config) : undefined;
  }

  /** Names of the agents currently checked in. */
  get connectedInstances(): string[] {
    return [...this.known.keys()].sort(compareText);
  }

  // -------------------------------------------------------------------------------------
  // Event intake.

  private registerHandlers(): void {
    const on = <A extends readonly Codec<unknown>[]>(
      spec: EventSpec<A>,
      handle: (args: ReturnType<EventSpec<A>["parse"]>, link: AgentLink) => void,
    ): void => {
      this.handlers.set(spec.name, (event, link) => handle(spec.parse(event), link));
    };

    on(ControllerApi.get_instances_request, ([reqid]) => this.onGetInstances(reqid));
    on(ControllerApi.stage_configuration_request, ([reqid, config]) => this.onStageConfiguration(reqid, config));
    on(ControllerApi.get_configuration_request, ([reqid, deployed]) => this.onGetConfiguration(reqid, deployed));
    on(ControllerApi.deploy_request, ([reqid]) => this.onDeploy(reqid));
    on(ControllerApi.get_nodes_request, ([reqid]) => this.onGetNodes(reqid));
    on(ControllerApi.get_id_value_request, ([reqid, id, nodes]) => this.onGetIdValue(reqid, id, nodes));
    on(ControllerApi.restart_request, ([reqid, nodes]) => this.onRestart(reqid, nodes));
    on(ControllerApi.test_timeout_request, ([reqid, withState]) => this.onTestTimeout(reqid, withState));

    on(AgentApi.notify_agent_hello, ([instance, id, connecting, version], link) =>
      this.onAgentHello(instance, id, connecting, version, link),
    );
    on(AgentApi.agent_welcome_response, ([reqid, result]) => this.onWelcomeResponse(reqid, result));
    on(AgentApi.deploy_response, ([reqid, results]) => this.onAgentDeployResponse(reqid, results));
    on(AgentApi.get_nodes_response, ([reqid, result]) => {
      this.log.info(`rx ${AgentApi.get_nodes_response.name} ${reqid}`);
      this.onFanOutResponse(reqid, "get_nodes", [normalizeNodeStatusResult(result, this.log)]);
    });
    on(AgentApi.node_dispatch_response, ([reqid, results]) => {
      this.log.info(`rx ${AgentApi.node_dispatch_response.name} ${reqid}`);
      this.onFanOutResponse(reqid, "node_dispatch", results);
    });
    on(AgentApi.restart_response, ([reqid, results]) => {
      this.log.info(`rx ${AgentApi.restart_response.name} ${reqid}`);
      this.onFanOutResponse(reqid, "restart", results);
    });
    // Upstream has handlers for these that do nothing; we at least keep a trace.
    on(AgentApi.notify_error, ([instance, msg, node]) =>
      this.log.info(`rx ${AgentApi.notify_error.name} ${instance} ${msg}${node ? ` (node ${node})` : ""}`),
    );
    on(AgentApi.notify_log, ([instance, msg, node]) =>
      this.log.info(`rx ${AgentApi.notify_log.name} ${instance} ${msg}${node ? ` (node ${node})` : ""}`),
    );
    on(AgentApi.notify_change, ([instance, node, from, to]) =>
      this.log.info(`rx ${AgentApi.notify_change.name} ${instance} ${node.name} ${from} -> ${to}`),
    );
    on(AgentApi.agent_standby_response, ([reqid]) =>
      this.log.debug(`rx ${AgentApi.agent_standby_response.name} ${reqid}, ignoring`),
    );
  }

  private onDelivery(delivery: Delivery): void {
    const event = deliveryEvent(delivery);
    if (!event) {
      this.log.debug(`ignoring non-event message on ${delivery.topic}`);
      return;
    }
    this.dispatch(event, { kind: "hub", origin: delivery.origin });
  }

  private dispatch(event: ZeekEvent, link: AgentLink): void {
    if (this.closed) return;
    const handler = this.handlers.get(event.name);
    if (!handler) {
      // Our own responses never come back to us, but other clients' traffic and events
      // of newer API versions do; none of it is ours to act on.
      this.log.debug(`ignoring event ${event.name}`);
      return;
    }
    try {
      handler(event, link);
    } catch (err) {
      if (err instanceof ProtocolError) this.log.warning(`ignoring malformed ${event.name}: ${err.message}`);
      else this.log.error(`error handling ${event.name}: ${errorMessage(err)}`);
    }
  }

  // -------------------------------------------------------------------------------------
  // Client requests.

  private onGetInstances(reqid: string): void {
    this.log.info(`rx ${ControllerApi.get_instances_request.name} ${reqid}`);
    const instances = [...this.known.values()].map((k) => k.instance).sort(byName);
    this.sendResult(ControllerApi.get_instances_response, reqid, makeResult(reqid, { data: InstanceVecCodec.encode(instances) }));
  }

  private onStageConfiguration(reqid: string, config: Configuration): void {
    this.log.info(`rx ${ControllerApi.stage_configuration_request.name} ${reqid}`);
    // Passing the WebSocket port fixes upstream's check, which guards only the Broker
    // port: here clients and agents reach the controller on the WebSocket port, so a node
    // bound to it would lock them out.
    const errors = validateConfiguration(config, {
      controllerPort: this.options.controllerPort ?? DEFAULT_CONTROLLER_PORT,
      ...(this.webSocketPort !== undefined ? { controllerWebSocketPort: this.webSocketPort } : {}),
      autoAssignBrokerPorts: this.options.autoAssignBrokerPorts ?? true,
    });
    let ready: Configuration | undefined;
    if (errors.length === 0) {
      const observed = new Map([...this.known].map(([name, k]) => [name, { host: k.instance.host }]));
      const prepared = prepareReadyConfig(config, {
        known: observed,
        autoAssignBrokerPorts: this.options.autoAssignBrokerPorts ?? true,
        autoAssignMetricsPorts: this.options.autoAssignMetricsPorts ?? true,
        brokerStartPort: this.options.brokerStartPort ?? DEFAULT_BROKER_START_PORT,
        metricsStartPort: this.options.metricsStartPort ?? DEFAULT_METRICS_START_PORT,
      });
      errors.push(...prepared.errors);
      ready = prepared.config;
    }
    if (errors.length > 0 || !ready) {
      const results = [...errors].sort(compareText).map((error) => makeResult(reqid, { success: false, error }));
      this.sendResults(ControllerApi.stage_configuration_response, reqid, results);
      return;
    }
    const staged = structuredClone(config);
    this.configs.set("STAGED", staged);
    this.configs.set("READY", ready);
    // Answer only once the configs are on disk, so a success survives a restart.
    void this.persist({ STAGED: staged, READY: ready }).then(() =>
      this.sendResults(ControllerApi.stage_configuration_response, reqid, [makeResult(reqid, { data: B.str(config.id) })]),
    );
  }

  private onGetConfiguration(reqid: string, deployed: boolean): void {
    this.log.info(`rx ${ControllerApi.get_configuration_request.name} ${reqid}`);
    const state: ConfigState = deployed ? "DEPLOYED" : "STAGED";
    const config = this.configs.get(state);
    const result = config
      ? makeResult(reqid, { data: ConfigurationCodec.encode(config) })
      : makeResult(reqid, { success: false, error: `no ${state.toLowerCase()} configuration available` });
    this.sendResult(ControllerApi.get_configuration_response, reqid, result);
  }

  private onDeploy(reqid: string): void {
    this.log.info(`rx ${ControllerApi.deploy_request.name} ${reqid}`);
    const ready = this.configs.get("READY");
    const error = !ready
      ? "no configuration available to deploy"
      : this.pendingDeployId !== undefined
        ? `earlier deployment ${this.pendingDeployId} still pending`
        : undefined;
    if (error !== undefined || !ready) {
      this.sendResults(ControllerApi.deploy_response, reqid, [makeResult(reqid, { success: false, error })]);
      return;
    }
    const req = this.tryCreate(() => this.createDeployRequest(reqid, ready, false));
    if (req) this.launchDeploy(req, false);
  }

  private onGetNodes(reqid: string): void {
    this.log.info(`rx ${ControllerApi.get_nodes_request.name} ${reqid}`);
    if (this.known.size === 0) {
      this.sendResults(ControllerApi.get_nodes_response, reqid, [
        makeResult(reqid, { success: false, error: "no instances connected" }),
      ]);
      return;
    }
    const req = this.tryCreate(() => this.createFanOutRequest(reqid, { kind: "get_nodes" }));
    if (!req) return;
    // Every agent that checked in, whether or not the configuration uses it.
    this.fanOut(req, "get_nodes", [...this.known.keys()], (child) => AgentApi.get_nodes_request.make(child));
  }

  private onGetIdValue(reqid: string, id: string, nodes: string[]): void {
    this.log.info(`rx ${ControllerApi.get_id_value_request.name} ${reqid} ${id}`);
    const deployed = this.configs.get("DEPLOYED");
    const wanted = [...new Set(nodes)];
    // Upstream fix: with a node list and no DEPLOYED config yet (first deployment pending
    // or timed out), Zeek's handler indexes a missing table entry and aborts, leaving the
    // client to time out. There is no cluster to ask, so say so.
    if (this.instances.size === 0 || (wanted.length > 0 && !deployed)) {
      this.sendResults(ControllerApi.get_id_value_response, reqid, [
        makeResult(reqid, { success: false, error: "no cluster deployed" }),
      ]);
      return;
    }
    const req = this.tryCreate(() => this.createFanOutRequest(reqid, { kind: "get_id_value" }));
    if (!req) return;
    const valid = this.filterDeployedNodes(req, wanted, deployed);
    if (wanted.length > 0 && valid.length === 0) {
      this.finishFanOut(req);
      return;
    }
    const action = ["get_id_value", id];
    this.fanOut(req, "node_dispatch", this.readyInstances(), (child) =>
      AgentApi.node_dispatch_request.make(child, action, valid),
    );
  }

  private onRestart(reqid: string, nodes: string[]): void {
    this.log.info(`rx ${ControllerApi.restart_request.name} ${reqid}`);
    const deployed = this.configs.get("DEPLOYED");
    let error: string | undefined;
    if (this.known.size === 0) error = "no instances connected";
    else if (!deployed) error = "no active cluster deployment";
    if (error !== undefined) {
      this.sendResults(ControllerApi.restart_response, reqid, [makeResult(reqid, { success: false, error })]);
      return;
    }
    const req = this.tryCreate(() => this.createFanOutRequest(reqid, { kind: "restart" }));
    if (!req) return;
    const wanted = [...new Set(nodes)];
    const valid = this.filterDeployedNodes(req, wanted, deployed);
    if (wanted.length > 0 && valid.length === 0) {
      this.finishFanOut(req);
      return;
    }
    // Upstream forwards the node set as received, unknown names included; agents only
    // act on names they run.
    this.fanOut(req, "restart", this.readyInstances(), (child) => AgentApi.restart_request.make(child, wanted));
  }

  private onTestTimeout(reqid: string, withState: boolean): void {
    this.log.info(`rx ${ControllerApi.test_timeout_request.name} ${reqid} ${withState ? "T" : "F"}`);
    // Without state the request is deliberately never answered: it exists so clients can
    // test their own timeout handling.
    if (!withState) return;
    this.tryCreate(() =>
      this.requests.create({
        id: reqid,
        state: { kind: "test_timeout" },
        onTimeout: (req) => {
          this.log.info(`request ${req.id} timed out`);
          this.sendResult(
            ControllerApi.test_timeout_response,
            req.id,
            makeResult(req.id, { success: false, error: TIMED_OUT }),
          );
        },
      }),
    );
  }

  // -------------------------------------------------------------------------------------
  // Agent check-in.

  private onAgentHello(instance: string, agentId: string, connecting: boolean, version: number, link: AgentLink): void {
    this.log.info(`rx ${AgentApi.notify_agent_hello.name} ${instance} ${agentId} ${connecting ? "T" : "F"}`);
    if (version !== CONTROLLER_API_VERSION) {
      this.log.warning(`instance ${instance}/${agentId} has checked in with incompatible API version ${version}`);
      if (this.instances.has(instance)) this.dropInstance(instance, link);
      this.forgetInstance(instance);
      return;
    }

    // The link decides the direction, not the agent's `connecting` flag: a dial-in's
    // source port is ephemeral and must never be mistaken for a listen port.
    let observed: Instance;
    if (link.kind === "dialed") {
      observed = { name: instance, host: link.dial.host, listenPort: link.dial.port };
    } else if (link.origin.kind === "local") {
      // An agent living in this very process.
      observed = { name: instance, host: "127.0.0.1" };
    } else if (link.origin.remoteAddress !== undefined) {
      observed = { name: instance, host: link.origin.remoteAddress };
    } else {
      this.log.warning(`notify_agent_hello from ${instance} lacks network state, Broker ID ${agentId}`);
      return;
    }

    const previous = this.known.get(instance);
    if (previous && !sameLink(previous.link, link)) {
      // The agent came back on a new connection before we noticed the old one drop. It
      // may have restarted and lost its cluster, so it has to be welcomed (and thereby
      // resynchronised) again.
      this.ready.delete(instance);
      this.cancelWelcome(instance);
    }
    this.known.set(instance, { instance: observed, agentId, link });
    this.log.debug(`instance ${instance} ${previous ? "checked in again" : "newly checked in"}`);

    if (this.instances.has(instance) && !this.ready.has(instance)) this.welcome(instance);
  }

  private welcome(instance: string): void {
    if (this.welcomes.has(instance)) return;
    const req = this.requests.create({
      state: { kind: "welcome", instance },
      onTimeout: (r) => {
        this.welcomes.delete(instance);
        this.log.info(`request ${r.id} timed out`);
      },
    });
    this.welcomes.set(instance, req.id);
    this.sendToAgent(instance, AgentApi.agent_welcome_request.make(req.id));
    this.log.info(`tx ${AgentApi.agent_welcome_request.name} ${req.id} to ${instance}`);
  }

  private cancelWelcome(instance: string): void {
    const reqid = this.welcomes.get(instance);
    if (reqid === undefined) return;
    this.welcomes.delete(instance);
    this.requests.cancel(reqid);
  }

  private onWelcomeResponse(reqid: string, result: Result): void {
    this.log.info(`rx ${AgentApi.agent_welcome_response.name} ${reqid} ${resultToString(result)}`);
    const req = this.requests.get(reqid);
    if (!req || req.state.kind !== "welcome") return;
    const instance = req.state.instance;
    this.requests.finish(reqid);
    if (this.welcomes.get(instance) === reqid) this.welcomes.delete(instance);
    if (!result.success || !this.instances.has(instance)) {
      this.sendStandby(instance);
      return;
    }
    if (this.ready.has(instance)) return;
    this.ready.add(instance);
    this.log.info(`instance ${instance} ready`);
    this.checkInstancesReady();
  }

  /** Peer loss: the agent must check in again before it gets anything from us. */
  private linkLost(link: AgentLink, reason: string): void {
    for (const [name, known] of [...this.known]) {
      if (!sameLink(known.link, link)) continue;
      this.log.debug(`broker peer ${known.agentId} lost: ${reason}`);
      this.forgetInstance(name);
      this.log.info(`dropped state for instance ${name}`);
    }
  }

  private forgetInstance(name: string): void {
    this.known.delete(name);
    this.ready.delete(name);
    this.cancelWelcome(name);
    // A deployment still waiting on this agent resends to it once it is back, instead of
    // waiting for an answer that a restarted agent will never give.
    const pending = this.pendingDeploy();
    if (pending && pending.state.sentTo.has(name) && !pending.state.answered.has(name)) {
      pending.state.sentTo.delete(name);
      for (const child of this.requests.childrenOf(pending.id)) {
        if (child.state.kind === "agent" && child.state.instance === name) this.requests.cancel(child.id);
      }
    }
    // get-nodes, get-id-value and restart sent to this agent get no answer over a link that
    // is gone. Say so now rather than at the timeout, next to what the other agents said.
    for (const child of this.requests.pending()) {
      if (child.state.kind !== "agent" || child.state.instance !== name || child.state.op === "deploy") continue;
      const parent = this.requests.parentOf(child.id);
      if (!parent) continue;
      const error = `lost the connection to instance '${name}' before it answered`;
      this.onFanOutResponse(child.id, child.state.op, [makeResult(parent.id, { success: false, instance: name, error })]);
    }
  }

  // -------------------------------------------------------------------------------------
  // Deployment.

  private createDeployRequest(reqid: string | undefined, config: Configuration, internal: boolean): Request & { state: DeployState } {
    return this.requests.create({
      ...(reqid !== undefined ? { id: reqid } : {}),
      state: { kind: "deploy", config: structuredClone(config), internal, sentTo: new Set(), answered: new Set() },
      onTimeout: (r) => this.onDeployTimeout(r as Request & { state: DeployState }),
    }) as Request & { state: DeployState };
  }

  private pendingDeploy(): (Request & { state: DeployState }) | undefined {
    if (this.pendingDeployId === undefined) return undefined;
    const req = this.requests.get(this.pendingDeployId);
    return req && req.state.kind === "deploy" ? (req as Request & { state: DeployState }) : undefined;
  }

  /**
   * Upstream `deploy()`: adopt the configuration's instance set, then wait until every
   * instance is ready. `agentsAlreadyReady` skips re-announcing readiness when the caller
   * is the readiness handler itself.
   */
  private launchDeploy(req: Request & { state: DeployState }, agentsAlreadyReady: boolean): void {
    this.pendingDeployId = req.id;
    this.applyInstances(req.state.config.instances);
    if (req.state.config.instances.length === 0) {
      this.completeDeploy(req);
      return;
    }
    if (agentsAlreadyReady && this.allInstancesReady()) this.deployToAgents(req);
    else this.checkInstancesReady();
  }

  /** Moves `instances` to the given set, with standby for dropped and welcome for added. */
  private applyInstances(target: readonly Instance[]): void {
    const next = new Map(target.map((i) => [i.name, i]));
    const drop: string[] = [];
    const add: Instance[] = [];
    for (const [name, current] of this.instances) {
      const wanted = next.get(name);
      if (!wanted) drop.push(name);
      else if (connectivityChanged(current, wanted)) {
        drop.push(name);
        add.push(wanted);
      }
    }
    for (const inst of next.values()) if (!this.instances.has(inst.name)) add.push(inst);
    for (const name of drop.sort(compareText)) {
      this.log.debug(`dropping instance ${name}`);
      this.dropInstance(name);
    }
    for (const inst of add.sort(byName)) {
      this.log.debug(`adding instance ${inst.name}`);
      this.addInstance(inst);
    }
  }

  private dropInstance(name: string, link?: AgentLink): void {
    this.sendStandby(name, link);
    this.instances.delete(name);
    this.ready.delete(name);
    this.cancelWelcome(name);
    this.log.info(`dropped instance ${name}`);
  }

  private addInstance(inst: Instance): void {
    this.instances.set(inst.name, inst);
    if (inst.listenPort !== undefined) this.ensureDial(inst.name, inst.host, inst.listenPort);
    const known = this.known.get(inst.name);
    if (!known) {
      this.log.debug(`instance ${inst.name} not known to us, skipping`);
      return;
    }
    if (inst.listenPort === undefined) this.instances.set(inst.name, { ...inst, host: known.instance.host });
    this.welcome(inst.name);
  }

  private ensureDial(instance: string, host: string, port: number): void {
    const existing = this.dials.get(instance);
    if (existing && existing.host === host && existing.port === port) return;
    if (existing) {
      this.dials.delete(instance);
      // Forget what came in over the old address right away, so the instance is
      // welcomed again once it checks in at the new one.
      this.linkLost({ kind: "dialed", dial: existing }, "address changed");
      void existing.handle.close().catch(() => undefined);
    }
    const ref: { dial?: Dial } = {};
    const handle = this.dialAgent(
      { instance, host, port, topic: agentTopic(instance) },
      {
        ready: () => this.log.debug(`broker peer ${host}:${port} added: connected to instance ${instance}`),
        down: (reason) => {
          if (ref.dial) this.linkLost({ kind: "dialed", dial: ref.dial }, reason);
        },
        event: (_topic, event) => {
          if (ref.dial && this.dials.get(instance) === ref.dial) this.dispatch(event, { kind: "dialed", dial: ref.dial });
        },
      },
    );
    ref.dial = { instance, host, port, handle };
    this.dials.set(instance, ref.dial);
  }

  private allInstancesReady(): boolean {
    for (const name of this.instances.keys()) if (!this.ready.has(name)) return false;
    return true;
  }

  private readyInstances(): string[] {
    return [...this.instances.keys()].filter((n) => this.ready.has(n)).sort(compareText);
  }

  /** Upstream `check_instances_ready`, raising the internal `notify_agents_ready`. */
  private checkInstancesReady(): void {
    if (this.allInstancesReady()) this.onAgentsReady([...this.instances.keys()].sort(compareText));
  }

  private onAgentsReady(names: string[]): void {
    // The single colon is upstream's spelling of this line.
    this.log.info(`rx Management::Controller::API:notify_agents_ready ${names.join(", ")}`);
    const pending = this.pendingDeploy();
    if (pending) {
      this.deployToAgents(pending);
      return;
    }
    // Agents (re)appeared while nothing is being deployed: bring them in line with the
    // deployed configuration. Agents already running it answer without touching nodes.
    const deployed = this.configs.get("DEPLOYED");
    if (!deployed) return;
    const req = this.createDeployRequest(undefined, deployed, true);
    this.log.info(`no deployment in progress, triggering via ${req.id}`);
    this.launchDeploy(req, true);
  }

  /** Upstream `config_deploy_to_agents`, sending only to agents that lack it so far. */
  private deployToAgents(req: Request & { state: DeployState }): void {
    for (const name of this.readyInstances()) {
      if (req.state.sentTo.has(name)) continue;
      const child = this.requests.create({
        parentId: req.id,
        state: { kind: "agent", instance: name, op: "deploy" },
        onTimeout: (r) => this.log.info(`request ${r.id} timed out`),
      });
      req.state.sentTo.add(name);
      this.sendToAgent(name, AgentApi.deploy_request.make(child.id, req.state.config, false));
      this.log.info(`tx ${AgentApi.deploy_request.name} ${child.id} to ${name}`);
    }
  }

  private onAgentDeployResponse(reqid: string, results: Result[]): void {
    this.log.info(`rx ${AgentApi.deploy_response.name} ${reqid} ${results.map(resultToString).join(", ")}`);
    const child = this.requests.get(reqid);
    if (!child || child.state.kind !== "agent" || child.state.op !== "deploy") {
      this.log.debug(`response ${reqid} not expected, ignoring`);
      return;
    }
    const instance = child.state.instance;
    const parent = this.requests.parentOf(reqid);
    this.requests.finish(reqid);
    if (!parent || parent.state.kind !== "deploy") return;
    const deploy = parent as Request & { state: DeployState };
    for (const r of results) deploy.results.push(normalizeNodeOutputsResult(r, this.log));
    deploy.state.answered.add(instance);
    if (deploy.state.config.instances.every((i) => deploy.state.answered.has(i.name))) this.completeDeploy(deploy);
  }

  private completeDeploy(req: Request & { state: DeployState }): void {
    const { config, internal } = req.state;
    if (this.pendingDeployId === req.id) this.pendingDeployId = undefined;
    this.configs.set("DEPLOYED", config);
    req.results.push(makeResult(req.id, { data: B.str(config.id) }));
    this.requests.finish(req.id);
    // An internal deploy re-sends what is already stored.
    const stored = internal ? Promise.resolve() : this.persist({ DEPLOYED: config });
    void stored.then(() => {
      if (!internal) this.sendResults(ControllerApi.deploy_response, req.id, req.results, req);
    });
  }

  private onDeployTimeout(req: Request & { state: DeployState }): void {
    this.log.info(`request ${req.id} timed out`);
    if (this.pendingDeployId === req.id) this.pendingDeployId = undefined;
    const { config, sentTo, answered } = req.state;
    req.results.push(makeResult(req.id, { success: false, error: TIMED_OUT }));
    // Upstream fix: a bare "request timed out" does not tell the operator that the
    // configuration never left the controller because some agents were missing. Name them.
    for (const inst of [...config.instances].sort(byName)) {
      if (answered.has(inst.name) || this.ready.has(inst.name)) continue;
      const error = this.known.has(inst.name)
        ? `instance '${inst.name}' did not become ready`
        : `instance '${inst.name}' is not connected`;
      req.results.push(makeResult(req.id, { success: false, instance: inst.name, error }));
    }
    if (sentTo.size === 0) {
      // Upstream fix: upstream keeps the new instance set although the configuration
      // never reached any agent, and silently swaps it back to the deployed one when one
      // of the missing agents turns up later. We restore it now, in the open, so that
      // instance bookkeeping always matches the configuration that is actually deployed.
      const deployed = this.configs.get("DEPLOYED");
      this.log.info(
        `deployment ${req.id} never reached the agents; ` +
          (deployed ? `keeping the instances of deployed configuration ${deployed.id}` : "no configuration is deployed"),
      );
      this.applyInstances(deployed ? deployed.instances : []);
    }
    if (!req.state.internal) this.sendResults(ControllerApi.deploy_response, req.id, req.results, req);
  }

  // -------------------------------------------------------------------------------------
  // get_nodes, get_id_value and restart: one sub-request per agent, answered together.

  private createFanOutRequest(reqid: string, state: RequestState): Request {
    return this.requests.create({
      id: reqid,
      state,
      onTimeout: (r) => {
        this.log.info(`request ${r.id} timed out`);
        r.results.push(makeResult(r.id, { success: false, error: TIMED_OUT }));
        this.replyFanOut(r);
      },
    });
  }

  /** Adds an "unknown cluster node" result per name not in DEPLOYED; returns the rest. */
  private filterDeployedNodes(req: Request, wanted: string[], deployed: Configuration | undefined): string[] {
    if (wanted.length === 0) return [];
    const names = new Set((deployed?.nodes ?? []).map((n) => n.name));
    const valid: string[] = [];
    for (const node of wanted) {
      if (names.has(node)) valid.push(node);
      else req.results.push(makeResult(req.id, { success: false, node, error: "unknown cluster node" }));
    }
    return valid;
  }

  private fanOut(req: Request, op: FanOutOp, targets: string[], make: (childId: string) => ZeekEvent): void {
    // With no agent to ask, upstream lets the request run into its timeout; so do we.
    for (const name of [...targets].sort(compareText)) {
      const child = this.requests.create({
        parentId: req.id,
        state: { kind: "agent", instance: name, op },
        onTimeout: (r) => this.log.info(`request ${r.id} timed out`),
      });
      const event = make(child.id);
      this.sendToAgent(name, event);
      this.log.info(`tx ${event.name} ${child.id} to ${name}`);
    }
  }

  private onFanOutResponse(reqid: string, op: FanOutOp, results: Result[]): void {
    const child = this.requests.get(reqid);
    if (!child || child.state.kind !== "agent" || child.state.op !== op) {
      this.log.debug(`response ${reqid} not expected, ignoring`);
      return;
    }
    const parent = this.requests.parentOf(reqid);
    this.requests.finish(reqid);
    if (!parent) return;
    parent.results.push(...results);
    if (this.requests.childCount(parent.id) === 0) this.finishFanOut(parent);
  }

  private finishFanOut(req: Request): void {
    this.requests.finish(req.id);
    this.replyFanOut(req);
  }

  private replyFanOut(req: Request): void {
    const spec =
      req.state.kind === "get_nodes"
        ? ControllerApi.get_nodes_response
        : req.state.kind === "get_id_value"
          ? ControllerApi.get_id_value_response
          : req.state.kind === "restart"
            ? ControllerApi.restart_response
            : undefined;
    if (spec) this.sendResults(spec, req.id, req.results, req);
  }

  // -------------------------------------------------------------------------------------
  // Output.

  private tryCreate<T>(create: () => T): T | undefined {
    try {
      return create();
    } catch (err) {
      if (!(err instanceof DuplicateRequestError)) throw err;
      // The answer to the pending request carries this reqid too, so it answers both.
      this.log.warning(`request ${err.id} is already pending, ignoring the duplicate`);
      return undefined;
    }
  }

  private sendResult(spec: ResponseSpec<Result>, reqid: string, result: Result): void {
    this.log.info(`tx ${spec.name} ${resultToString(result)}`);
    this.local?.publishEvent(CONTROLLER_TOPIC, spec.make(reqid, result));
  }

  private sendResults(
    spec: ResponseSpec<Result[]>,
    reqid: string,
    results: Result[],
    req?: Request,
  ): void {
    const view = req ?? { id: reqid, finished: true, results };
    this.log.info(`tx ${spec.name} ${requestToString(view)}`);
    this.local?.publishEvent(CONTROLLER_TOPIC, spec.make(reqid, results));
  }

  private sendStandby(instance: string, link?: AgentLink): void {
    // Standby carries no reqid: nobody waits for its answer.
    if (this.sendToAgent(instance, AgentApi.agent_standby_request.make(""), link)) {
      this.log.info(`tx ${AgentApi.agent_standby_request.name} to ${instance}`);
    }
  }

  /**
   * Sends to exactly the agent's own link. Publishing on the agent topic instead would
   * also reach every agent whose name merely starts with this one (topics match by prefix).
   */
  private sendToAgent(instance: string, event: ZeekEvent, link: AgentLink | undefined = this.known.get(instance)?.link): boolean {
    if (!link || this.closed) return false;
    const topic = agentTopic(instance);
    if (link.kind === "dialed") return link.dial.handle.publishEvent(topic, event);
    if (link.origin.kind === "local") {
      this.local?.publishEvent(topic, event);
      return this.local !== undefined;
    }
    return this.hub.sendTo(link.origin.id, topic, eventToData(event));
  }

  private persist(changes: Partial<Record<ConfigState, Configuration>>): Promise<void> {
    if (!this.store) return Promise.resolve();
    const write = this.store
      .setMany(changes)
      .catch((err: unknown) => this.log.error(`could not store configurations: ${errorMessage(err)}`))
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
    return write;
  }
}

function describeOrigin(origin: Origin): string {
  if (origin.remoteAddress === undefined) return origin.kind === "local" ? "in-process endpoint" : "unknown address";
  const host = origin.remoteAddress.includes(":") ? `[${origin.remoteAddress}]` : origin.remoteAddress;
  return origin.remotePort !== undefined ? `${host}:${origin.remotePort}` : host;
}

export function defaultControllerName(): string {
  return `controller-${hostname()}`;
}

function withoutData(result: Result): Result {
  const copy = { ...result };
  delete copy.data;
  return copy;
}

/** Agents send NodeOutputs for failed nodes; anything else in `data` is not passed on. */
function normalizeNodeOutputsResult(result: Result, log: Logger): Result {
  if (result.data === undefined) return result;
  try {
    return { ...result, data: NodeOutputsCodec.encode(NodeOutputsCodec.decode(result.data, "data")) };
  } catch (err) {
    log.warning(`dropping unexpected data in deploy result (${resultToString(result)}): ${errorMessage(err)}`);
    return withoutData(result);
  }
}

/**
 * Checks an agent's node status list. Ports of 0 are removed: zeek-client cannot parse
 * them, and "no port" is what they mean.
 */
function normalizeNodeStatusResult(result: Result, log: Logger): Result {
  if (result.data === undefined) return result;
  try {
    const statuses = NodeStatusVecCodec.decode(result.data, "data").map((s) => {
      const copy = { ...s };
      if (copy.port === 0) delete copy.port;
      if (copy.metricsPort === 0) delete copy.metricsPort;
      return copy;
    });
    return { ...result, data: NodeStatusVecCodec.encode(statuses) };
  } catch (err) {
    log.warning(`dropping malformed node status in result (${resultToString(result)}): ${errorMessage(err)}`);
    return withoutData(result);
  }
}
