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
import { AGENT_TOPIC_PREFIX, AgentApi, ZmgmtAgentApi } from "../agent/api.js";
import { ConfigStore, type ConfigState } from "./config-store.js";
import { createLogger, type LogLevel, type Logger } from "../management/log.js";
import { DEFAULT_BROKER_START_PORT, DEFAULT_METRICS_START_PORT, prepareReadyConfig } from "./ports.js";
import { ConfigurationCodec, InstanceVecCodec, makeResult, resultToString } from "../management/records.js";
import { RequestTracker, hasKind, requestToString, sequentialIds, type Timers } from "../management/request.js";
import type { Configuration, Result } from "../management/types.js";
import { compareText, validateConfiguration } from "../management/validation.js";
import { Agents } from "./agents.js";
import { refusalFor } from "./access.js";
import {
  CONTROLLER_TOPIC,
  ControllerApi,
  DEFAULT_CONTROLLER_PORT,
  DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
  ZmgmtControllerApi,
  DEFAULT_DEPLOY_CHECK_DELAY_MS,
  deployRequestWithRollback,
} from "./api.js";
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
import { DeployHistory, DeployRecordVecCodec } from "./deploy-history.js";
import { FanOut, isFanOut, normalizeNodeStatusResult } from "./fan-out.js";
import { InstanceRegistry } from "./instances.js";
import { ControllerMetrics } from "./metrics.js";
import { NodeStatsGatherer, serviceTargets, type SdTarget } from "./node-stats.js";
import { describeOrigin, webSocketAgentDialer, type AgentDialer, type AgentLink } from "./links.js";
import type { ControllerSettings } from "./options.js";
import { StoredConfigs } from "./persistence.js";
import { controllerReplyRouting } from "./replies.js";
import { ZmgmtRequests, malformedAnswer } from "./zmgmt-requests.js";

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

/** How long a scrape waits for the agents' node statistics. */
const STATS_TIMEOUT_MS = 2000;
/** netstats also waits for the agents to scrape their workers (2 s each, in parallel). */
const NETSTATS_TIMEOUT_MS = 4000;

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
  private readonly history = new DeployHistory();
  private readonly refusals = controllerReplyRouting();
  private readonly zmgmt: ZmgmtRequests;
  private readonly handlers = new Map<string, Handler>();
  private readonly stats: NodeStatsGatherer;
  /** Served on GET /metrics of the controller's listener (see main.ts). */
  readonly metrics: ControllerMetrics;

  private local: LocalEndpoint | undefined;
  private webSocketPort: number | undefined;
  private closed = false;
  private readonly onHubDisconnect = (origin: Origin): void => this.agents.linkLost({ kind: "hub", origin }, "connection closed");
  private readonly onHubConnect = (origin: Origin, topics: readonly string[]): void => {
    this.metrics.connectionAccepted();
    this.log.debug(`broker peer ${origin.id} added: ${describeOrigin(origin)} subscribed to ${topics.join(", ")}`);
  };
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
    this.metrics = new ControllerMetrics({ openConnections: () => hub.peers.length, agentsConnected: () => this.instances.known().length });
    const ctx: ControllerContext = {
      log: logger,
      metrics: this.metrics,
      requests: this.requests,
      instances: this.instances,
      configs: this.configs,
      reply: (spec, reqid, result) => this.sendResult(spec, reqid, result),
      replyAll: (spec, reqid, results, req) => this.sendResults(spec, reqid, results, req),
    };
    this.agents = new Agents(ctx, hub, deps.dialAgent ?? webSocketAgentDialer, {
      allReady: (names) => this.deployment.onAgentsReady(names),
      ready: () => this.deployment.onInstanceReady(),
      lost: (name) => {
        this.deployment.agentLost(name);
        this.fanOut.agentLost(name);
        this.zmgmt.agentLost(name);
      },
      event: (event, link) => this.dispatch(event, link),
    });
    this.deployment = new Deployment(
      ctx,
      this.agents,
      {
        rollback: options.deployRollback ?? true,
        checkDelayMs: options.deployCheckDelayMs ?? DEFAULT_DEPLOY_CHECK_DELAY_MS,
      },
      this.history,
    );
    this.fanOut = new FanOut(ctx, this.agents);
    this.zmgmt = new ZmgmtRequests(ctx, this.agents);
    this.stats = new NodeStatsGatherer(this.instances, this.agents);
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

  /** Reads node statistics afresh from the agents into the metrics; run before each scrape. */
  async refreshMetrics(): Promise<void> {
    const { answers, silent } = await this.stats.gather(false, STATS_TIMEOUT_MS);
    this.metrics.updateNodes(answers, silent);
  }

  /**
   * Prometheus HTTP service discovery: every deployed node's metrics endpoint, this
   * controller at `reachedAt` (where the scraper reached it) and every agent's listener.
   */
  async serviceDiscovery(reachedAt: { host: string; port: number }): Promise<SdTarget[]> {
    const { answers } = await this.stats.gather(false, STATS_TIMEOUT_MS);
    return serviceTargets(this.configs.get("DEPLOYED"), this.instances, answers, { name: this.name, ...reachedAt });
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
    on(deployRequestWithRollback, ([reqid, rollback]) => this.deployment.onRequest(reqid, rollback));
    on(ControllerApi.get_nodes_request, ([reqid]) => this.fanOut.onGetNodes(reqid));
    on(ControllerApi.get_id_value_request, ([reqid, id, nodes]) => this.fanOut.onGetIdValue(reqid, id, nodes));
    on(ControllerApi.restart_request, ([reqid, nodes]) => this.fanOut.onRestart(reqid, nodes));
    on(ControllerApi.test_timeout_request, ([reqid, withState]) => this.onTestTimeout(reqid, withState));
    on(ZmgmtControllerApi.get_deploy_history_request, ([reqid]) => {
      this.log.info(`rx ${ZmgmtControllerApi.get_deploy_history_request.name} ${reqid}`);
      const data = DeployRecordVecCodec.encode(this.history.list());
      this.sendResult(ZmgmtControllerApi.get_deploy_history_response, reqid, makeResult(reqid, { data }));
    });
    on(ZmgmtControllerApi.get_netstats_request, ([reqid]) => void this.onGetNetstats(reqid));
    on(ZmgmtAgentApi.node_stats_response, ([reqid, result]) => this.stats.onResponse(reqid, result));

    on(AgentApi.notify_agent_hello, ([instance, id, connecting, version], link) =>
      this.agents.onHello(instance, id, connecting, version, link),
    );
    on(AgentApi.agent_welcome_response, ([reqid, result]) => this.agents.onWelcomeResponse(reqid, result));
    on(AgentApi.deploy_response, ([reqid, results]) => this.deployment.onAgentResponse(reqid, results));
    on(AgentApi.get_nodes_response, ([reqid, result]) => {
      if (this.deployment.onNodesResponse(reqid, result)) return;
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
    on(ZmgmtControllerApi.node_logs_request, ([reqid, query]) => this.zmgmt.onLogs(reqid, query));
    on(ZmgmtControllerApi.get_node_status_request, ([reqid, nodes]) => this.zmgmt.onNodes("get_node_status", reqid, nodes));
    on(ZmgmtControllerApi.stop_nodes_request, ([reqid, nodes]) => this.zmgmt.onNodes("stop_nodes", reqid, nodes));
    on(ZmgmtControllerApi.start_nodes_request, ([reqid, nodes]) => this.zmgmt.onNodes("start_nodes", reqid, nodes));
    on(ZmgmtAgentApi.node_logs_response, ([reqid, result]) => this.zmgmt.onResponse(reqid, "node_logs", [result]));
    on(ZmgmtAgentApi.get_node_status_response, ([reqid, result]) => this.zmgmt.onResponse(reqid, "get_node_status", [result]));
    on(ZmgmtAgentApi.stop_nodes_response, ([reqid, results]) => this.zmgmt.onResponse(reqid, "stop_nodes", results));
    on(ZmgmtAgentApi.start_nodes_response, ([reqid, results]) => this.zmgmt.onResponse(reqid, "start_nodes", results));
    on(AgentApi.agent_standby_response, ([reqid]) => this.log.debug(`rx ${AgentApi.agent_standby_response.name} ${reqid}, ignoring`));
  }

  private onDelivery(delivery: Delivery): void {
    const event = deliveryEvent(delivery);
    if (!event) {
      this.log.debug(`ignoring non-event message on ${delivery.topic}`);
      return;
    }
    const refusal = refusalFor(delivery.origin.principal, event.name);
    if (refusal !== undefined) {
      this.refuse(event, refusal, delivery.origin);
      return;
    }
    this.dispatch(event, { kind: "hub", origin: delivery.origin });
  }

  /** Answers a request its sender may not make (see ./access.ts) with a failed Result. */
  private refuse(event: ZeekEvent, reason: string, origin: Origin): void {
    const reqid = event.args[0]?.type === "string" ? event.args[0].value : undefined;
    this.log.warning(`refusing ${event.name} ${reqid ?? ""} from ${describeOrigin(origin)}: ${reason}`);
    const answer = reqid !== undefined ? this.refusals.refusal?.({ name: event.name, reqid }, reason) : undefined;
    if (answer) this.local?.publishEvent(CONTROLLER_TOPIC, answer);
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
    this.metrics.requests.received(event);
    if (!this.agents.admits(event, link)) return;
    try {
      handler(event, link);
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.log.warning(`ignoring malformed ${event.name}: ${err.message}`);
        const answer = malformedAnswer(event, err.message);
        if (answer) this.local?.publishEvent(CONTROLLER_TOPIC, answer);
      } else this.log.error(`error handling ${event.name}: ${errorMessage(err)}`);
    }
  }

  /** The one timeout path of every controller request. */
  private onTimeout(req: ControllerRequest): void {
    this.log.info(`request ${req.id} timed out`);
    if (hasKind(req, "deploy")) this.deployment.timedOut(req);
    else if (isFanOut(req)) this.fanOut.timedOut(req);
    else if (hasKind(req, "zmgmt")) this.zmgmt.timedOut(req);
    else if (hasKind(req, "welcome")) this.agents.welcomeTimedOut(req);
    else if (hasKind(req, "test_timeout")) {
      this.sendResult(ControllerApi.test_timeout_response, req.id, makeResult(req.id, { success: false, error: TIMED_OUT }));
    }
    // A sub-request to an agent ("agent") needs nothing more: its parent answers for it.
  }

  // -------------------------------------------------------------------------------------
  // Client requests that need no agent.

  private onGetInstances(reqid: string): void {
    this.log.debug(`rx ${ControllerApi.get_instances_request.name} ${reqid}`);
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
    const before = { STAGED: this.configs.get("STAGED"), READY: this.configs.get("READY") };
    this.configs.set("STAGED", staged);
    this.configs.set("READY", ready);
    // Answer only once the configs are on disk, so a success survives a restart; a failed
    // write fails the request and leaves what a restart would see, unless a later stage
    // has replaced it meanwhile.
    void this.configs.persist({ STAGED: staged, READY: ready }).then((error) => {
      if (error === undefined) {
        this.sendResults(ControllerApi.stage_configuration_response, reqid, [makeResult(reqid, { data: B.str(config.id) })]);
        return;
      }
      if (this.configs.get("STAGED") === staged) this.configs.restore("STAGED", before.STAGED);
      if (this.configs.get("READY") === ready) this.configs.restore("READY", before.READY);
      this.sendResults(ControllerApi.stage_configuration_response, reqid, [makeResult(reqid, { success: false, error })]);
    });
  }

  private onGetConfiguration(reqid: string, deployed: boolean): void {
    this.log.debug(`rx ${ControllerApi.get_configuration_request.name} ${reqid}`);
    const state: ConfigState = deployed ? "DEPLOYED" : "STAGED";
    const config = this.configs.get(state);
    const result = config
      ? makeResult(reqid, { data: ConfigurationCodec.encode(config) })
      : makeResult(reqid, { success: false, error: `no ${state.toLowerCase()} configuration available` });
    this.sendResult(ControllerApi.get_configuration_response, reqid, result);
  }

  private async onGetNetstats(reqid: string): Promise<void> {
    this.log.info(`rx ${ZmgmtControllerApi.get_netstats_request.name} ${reqid}`);
    // Workers are scraped in parallel by their agents, each within 2 s.
    const { answers, silent } = await this.stats.gather(true, Math.min(NETSTATS_TIMEOUT_MS, this.requests.timeoutMs));
    const results = answers.map((a) => makeResult(reqid, { instance: a.instance, data: B.str(JSON.stringify(a)) }));
    for (const name of silent) results.push(makeResult(reqid, { instance: name, success: false, error: TIMED_OUT }));
    if (answers.length === 0 && silent.length === 0) results.push(makeResult(reqid, { success: false, error: "no instances connected" }));
    this.sendResults(ZmgmtControllerApi.get_netstats_response, reqid, results);
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
    this.logTx(spec.name, () => `tx ${spec.name} ${resultToString(result)}`);
    this.send(spec.make(reqid, result));
  }

  private sendResults(spec: ResponseSpec<Result[]>, reqid: string, results: Result[], req?: ControllerRequest): void {
    const view = req ?? { id: reqid, finished: true, results };
    this.logTx(spec.name, () => `tx ${spec.name} ${requestToString(view)}`);
    this.send(spec.make(reqid, results));
  }

  private send(event: ZeekEvent): void {
    this.metrics.requests.answered(event, TIMED_OUT);
    this.local?.publishEvent(CONTROLLER_TOPIC, event);
  }
  /** Rendering a full answer costs time too, so it happens only when the line is kept. */
  private logTx(name: string, line: () => string): void {
    if (QUERY_RESPONSES.has(name)) this.log.debug(line());
    else this.log.info(line());
  }
}

/** Answers to read-only queries, logged at DEBUG (their requests are too). */
const QUERY_RESPONSES: ReadonlySet<string> = new Set([
  ControllerApi.get_nodes_response.name,
  ControllerApi.get_instances_response.name,
  ControllerApi.get_configuration_response.name,
  ControllerApi.get_id_value_response.name,
]);

export function defaultControllerName(): string {
  return `controller-${hostname()}`;
}
