// The controller: it answers clients on the controller topic, keeps track of the agents
// that checked in, stores configurations and drives deployments across agents. This file
// wires the parts together and handles the requests that need no agent; check-in lives in
// ./agents.ts, deployment in ./deployment.ts, agent fan-out in ./fan-out.ts. It talks to
// the world through a Hub (clients and agents that dial in) and through dialed agent links
// (instances with a listen port); sockets are wired up in ./main.ts.

import { hostname } from "node:os";
import { B } from "../broker/data.js";
import { ProtocolError, errorMessage } from "../broker/errors.js";
import { type Delivery, type Hub, type LocalEndpoint, type Origin, deliveryEvent } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import type { Codec, EventSpec } from "../broker/schema.js";
import { AGENT_TOPIC_PREFIX, AgentApi } from "../agent/api.js";
import { ConfigStore, type ConfigState } from "./config-store.js";
import { createLogger, type LogLevel, type Logger } from "../management/log.js";
import { DEFAULT_BROKER_START_PORT, DEFAULT_METRICS_START_PORT, prepareReadyConfig } from "./ports.js";
import { ConfigurationCodec, InstanceVecCodec, makeResult, resultToString } from "../management/records.js";
import { RequestTracker, hasKind, requestToString, sequentialIds, type Timers } from "../management/request.js";
import type { Configuration, Result } from "../management/types.js";
import { compareText, validateConfiguration } from "../management/validation.js";
import { Agents } from "./agents.js";
import { CONTROLLER_TOPIC, ControllerApi, DEFAULT_CONTROLLER_PORT, DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS } from "./api.js";
import {
  TIMED_OUT,
  byName,
  unlessDuplicate,
  type ControllerContext,
  type ControllerRequest,
  type RequestState,
  type ResponseSpec,
} from "./context.js";
import { Deployment } from "./deployment.js";
import { FanOut, isFanOut, normalizeNodeStatusResult } from "./fan-out.js";
import { InstanceRegistry } from "./instances.js";
import { describeOrigin, webSocketAgentDialer, type AgentDialer, type AgentLink } from "./links.js";
import type { ControllerSettings } from "./options.js";
import { StoredConfigs } from "./persistence.js";

/** The logic's settings (declared with the daemon's options) and what the caller decides. */
export interface ControllerOptions extends ControllerSettings {
  /** Default `controller-<hostname>`. */
  name?: string;
  /** State directory: stored configurations and management-<name>.log live here. */
  directory?: string;
  /** The WebSocket port clients and agents use; also kept off-limits to nodes. */
  controllerWebSocketPort?: number;
  /** Used only when no logger is injected. Default INFO. */
  logLevel?: LogLevel;
}

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

type Handler = (event: ZeekEvent, link: AgentLink) => void;

/**
 * The controller. Create with {@link Controller.open}, then {@link Controller.start} once
 * the hub is about to accept connections.
 */
export class Controller {
  readonly name: string;
  private readonly log: Logger;
  private readonly requests: RequestTracker<RequestState>;
  private readonly instances: InstanceRegistry;
  private readonly configs: StoredConfigs;
  private readonly agents: Agents;
  private readonly deployment: Deployment;
  private readonly fanOut: FanOut;
  private readonly handlers = new Map<string, Handler>();

  private local: LocalEndpoint | undefined;
  private webSocketPort: number | undefined;
  private closed = false;
  private readonly onHubDisconnect = (origin: Origin): void => this.agents.linkLost({ kind: "hub", origin }, "connection closed");
  private readonly onHubConnect = (origin: Origin, topics: readonly string[]): void =>
    this.log.debug(`broker peer ${origin.id} added: ${describeOrigin(origin)} subscribed to ${topics.join(", ")}`);
  private readonly onHubBadFrame = (info: { origin: Origin; error: unknown }): void =>
    this.log.warning(`ignoring undecodable message from ${describeOrigin(info.origin)}: ${errorMessage(info.error)}`);

  private constructor(
    private readonly hub: Hub,
    store: ConfigStore | undefined,
    private readonly options: ControllerOptions,
    deps: ControllerDeps,
    logger: Logger,
  ) {
    this.name = options.name ?? defaultControllerName();
    this.log = logger;
    this.requests = new RequestTracker<RequestState>({
      timeoutMs: options.requestTimeoutMs ?? DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
      onTimeout: (req) => this.onTimeout(req),
      newId: sequentialIds(),
      ...(deps.timers ? { timers: deps.timers } : {}),
    });
    this.instances = new InstanceRegistry((reqid) => this.requests.cancel(reqid));
    this.configs = new StoredConfigs(store, logger);
    this.webSocketPort = options.controllerWebSocketPort;
    const ctx: ControllerContext = {
      log: logger,
      requests: this.requests,
      instances: this.instances,
      configs: this.configs,
      reply: (spec, reqid, result) => this.sendResult(spec, reqid, result),
      replyAll: (spec, reqid, results, req) => this.sendResults(spec, reqid, results, req),
    };
    this.agents = new Agents(ctx, hub, deps.dialAgent ?? webSocketAgentDialer, {
      allReady: (names) => this.deployment.onAgentsReady(names),
      lost: (name) => {
        this.deployment.agentLost(name);
        this.fanOut.agentLost(name);
      },
      event: (event, link) => this.dispatch(event, link),
    });
    this.deployment = new Deployment(ctx, this.agents);
    this.fanOut = new FanOut(ctx, this.agents);
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
    this.deployment.resume();
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
    await this.agents.close();
    await this.configs.settled();
    this.log.flush();
  }

  /** A copy of the stored configuration for a state, for inspection. */
  configuration(state: ConfigState): Configuration | undefined {
    const config = this.configs.get(state);
    return config ? structuredClone(config) : undefined;
  }

  /** Names of the agents currently checked in. */
  get connectedInstances(): string[] {
    return this.instances.knownNames();
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
    on(ControllerApi.deploy_request, ([reqid]) => this.deployment.onRequest(reqid));
    on(ControllerApi.get_nodes_request, ([reqid]) => this.fanOut.onGetNodes(reqid));
    on(ControllerApi.get_id_value_request, ([reqid, id, nodes]) => this.fanOut.onGetIdValue(reqid, id, nodes));
    on(ControllerApi.restart_request, ([reqid, nodes]) => this.fanOut.onRestart(reqid, nodes));
    on(ControllerApi.test_timeout_request, ([reqid, withState]) => this.onTestTimeout(reqid, withState));

    on(AgentApi.notify_agent_hello, ([instance, id, connecting, version], link) =>
      this.agents.onHello(instance, id, connecting, version, link),
    );
    on(AgentApi.agent_welcome_response, ([reqid, result]) => this.agents.onWelcomeResponse(reqid, result));
    on(AgentApi.deploy_response, ([reqid, results]) => this.deployment.onAgentResponse(reqid, results));
    on(AgentApi.get_nodes_response, ([reqid, result]) => {
      this.log.debug(`rx ${AgentApi.get_nodes_response.name} ${reqid}`);
      this.fanOut.onResponse(reqid, "get_nodes", [normalizeNodeStatusResult(result, this.log)]);
    });
    on(AgentApi.node_dispatch_response, ([reqid, results]) => {
      this.log.debug(`rx ${AgentApi.node_dispatch_response.name} ${reqid}`);
      this.fanOut.onResponse(reqid, "node_dispatch", results);
    });
    on(AgentApi.restart_response, ([reqid, results]) => {
      this.log.debug(`rx ${AgentApi.restart_response.name} ${reqid}`);
      this.fanOut.onResponse(reqid, "restart", results);
    });
    // Upstream's handlers for these do nothing. We log them and pass them on to clients on
    // the controller topic, so `monitor` shows crashes, revivals and errors as they happen
    // (a client waiting for an answer hears them only after it, see ReplyRouting).
    on(AgentApi.notify_error, ([instance, msg, node]) => {
      this.log.info(`rx ${AgentApi.notify_error.name} ${instance} ${msg}${node ? ` (node ${node})` : ""}`);
      this.local?.publishEvent(CONTROLLER_TOPIC, AgentApi.notify_error.make(instance, msg, node));
    });
    on(AgentApi.notify_log, ([instance, msg, node]) => {
      this.log.info(`rx ${AgentApi.notify_log.name} ${instance} ${msg}${node ? ` (node ${node})` : ""}`);
      this.local?.publishEvent(CONTROLLER_TOPIC, AgentApi.notify_log.make(instance, msg, node));
    });
    on(AgentApi.notify_change, ([instance, node, from, to]) => {
      this.log.info(`rx ${AgentApi.notify_change.name} ${instance} ${node.name} ${from} -> ${to}`);
      this.local?.publishEvent(CONTROLLER_TOPIC, AgentApi.notify_change.make(instance, node, from, to));
    });
    on(AgentApi.agent_standby_response, ([reqid]) => this.log.debug(`rx ${AgentApi.agent_standby_response.name} ${reqid}, ignoring`));
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

  /** The one timeout path of every controller request. */
  private onTimeout(req: ControllerRequest): void {
    this.log.info(`request ${req.id} timed out`);
    if (hasKind(req, "deploy")) this.deployment.timedOut(req);
    else if (isFanOut(req)) this.fanOut.timedOut(req);
    else if (hasKind(req, "welcome")) this.agents.welcomeTimedOut(req);
    else if (hasKind(req, "test_timeout")) {
      this.sendResult(ControllerApi.test_timeout_response, req.id, makeResult(req.id, { success: false, error: TIMED_OUT }));
    }
    // A sub-request to an agent ("agent") needs nothing more: its parent answers for it.
  }

  // -------------------------------------------------------------------------------------
  // Client requests that need no agent.

  private onGetInstances(reqid: string): void {
    this.log.info(`rx ${ControllerApi.get_instances_request.name} ${reqid}`);
    const instances = this.instances
      .known()
      .map((k) => k.observed)
      .sort(byName);
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
      const observed = new Map(this.instances.known().map((k) => [k.observed.name, { host: k.observed.host }]));
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
    void this.configs
      .persist({ STAGED: staged, READY: ready })
      .then(() => this.sendResults(ControllerApi.stage_configuration_response, reqid, [makeResult(reqid, { data: B.str(config.id) })]));
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

  private onTestTimeout(reqid: string, withState: boolean): void {
    this.log.info(`rx ${ControllerApi.test_timeout_request.name} ${reqid} ${withState ? "T" : "F"}`);
    // Without state the request is deliberately never answered: it exists so clients can
    // test their own timeout handling.
    if (!withState) return;
    unlessDuplicate(this.log, () => this.requests.create({ id: reqid, state: { kind: "test_timeout" } }));
  }

  // -------------------------------------------------------------------------------------
  // Output.

  private sendResult(spec: ResponseSpec<Result>, reqid: string, result: Result): void {
    this.log.info(`tx ${spec.name} ${resultToString(result)}`);
    // Whatever was logged before an answer is on disk before the client can see it.
    this.log.flush();
    this.local?.publishEvent(CONTROLLER_TOPIC, spec.make(reqid, result));
  }

  private sendResults(spec: ResponseSpec<Result[]>, reqid: string, results: Result[], req?: ControllerRequest): void {
    const view = req ?? { id: reqid, finished: true, results };
    this.log.info(`tx ${spec.name} ${requestToString(view)}`);
    this.log.flush();
    this.local?.publishEvent(CONTROLLER_TOPIC, spec.make(reqid, results));
  }
}

export function defaultControllerName(): string {
  return `controller-${hostname()}`;
}
