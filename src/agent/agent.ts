// The Management agent: one per instance. It takes the controller's requests, turns them
// into supervisor operations on this host's node processes, tracks node state from the
// nodes' check-ins and the supervisor's reports, and answers every request within its
// timeout. Sockets stay outside: the agent gets a hub (for nodes and controllers that dial
// in), an optional controller peer (when it dials out) and a supervisor link.
//
// The parts: deployment.ts (deploy, standby, recovery), operations.ts (get_nodes,
// node_dispatch, restart), node-table.ts (node state), launch.ts (how a node is started).

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../broker/errors.js";
import type { Delivery, Hub, LocalEndpoint, Origin } from "../broker/hub.js";
import { deliveryEvent } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import type { Peer } from "../broker/peer.js";
import type { Logger } from "../management/log.js";
import { B } from "../broker/data.js";
import { eventToData } from "../broker/messages.js";
import { CONTROLLER_PRINCIPAL, CONTROLLER_UNAUTHORIZED } from "../management/agent-auth.js";
import { makeResult } from "../management/records.js";
import { RequestTracker, hasKind, type TrackedRequest } from "../management/request.js";
import type { Result } from "../management/types.js";
import { NODE_TOPIC, NodeApi } from "../node/api.js";
import type { NodeExit } from "../supervisor/api.js";
import { AGENT_API_VERSION, AGENT_TOPIC_PREFIX, AgentApi, ZmgmtAgentApi, agentTopic, type AgentNodeStats } from "./api.js";
import type { AgentContext, AgentRequest } from "./context.js";
import { Deployments } from "./deployment.js";
import { archiveQueuedLogs } from "./log-archiver.js";
import { AgentMetrics } from "./metrics.js";
import { CrashCounts, collectNodeStats } from "./node-stats.js";
import { NodeTable } from "./node-table.js";
import { NodeOperations } from "./operations.js";
import { ZmgmtOperations } from "./zmgmt-operations.js";
import type { AgentOptions } from "./options.js";
import type { SupervisorLink } from "./supervisor-link.js";
import { logQueueDirectory } from "./zeek.js";
import { ZeekNodeLinks } from "./zeek-links.js";

export type { AgentOptions } from "./options.js";
export { clusterLayout } from "./launch.js";

/** Requests only the controller may send. */
const CONTROLLER_REQUESTS = new Set(
  [...Object.values(AgentApi), ...Object.values(ZmgmtAgentApi)].map((spec) => spec.name).filter((name) => name.endsWith("_request")),
);

export class Agent {
  private readonly endpoint: LocalEndpoint;
  private readonly nodes: NodeTable;
  private readonly requests: RequestTracker<AgentRequest>;
  private readonly deployments: Deployments;
  private readonly operations: NodeOperations;
  private readonly zmgmt: ZmgmtOperations;
  /** Hub origins of controllers that dialed in, to greet each of them once. */
  private readonly controllerOrigins = new Set<string>();
  /** Connections whose requests were refused, so each is logged once. */
  private readonly refusedOrigins = new Set<string>();
  private readonly zeekLinks = new ZeekNodeLinks((node, event) => this.onNodeEvent(event, node));
  private readonly crashes = new CrashCounts();
  /** Served on GET /metrics of the agent's listener (see main.ts). */
  readonly metrics: AgentMetrics;
  private archiveTimer: NodeJS.Timeout | undefined;
  private archiving: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly options: AgentOptions,
    private readonly hub: Hub,
    private readonly supervisor: SupervisorLink,
    private readonly controllerPeer: Peer | undefined,
    private readonly log: Logger,
  ) {
    this.metrics = new AgentMetrics(() => hub.peers.length);
    this.endpoint = hub.local([agentTopic(options.name), NODE_TOPIC], (d) => this.onHubDelivery(d));
    this.nodes = new NodeTable((node, old, state) => this.sendToController(AgentApi.notify_change.make(options.name, node, old, state)));
    this.requests = new RequestTracker<AgentRequest>({
      timeoutMs: options.requestTimeoutMs,
      onTimeout: (request) => this.answer(request, true),
    });
    const ctx: AgentContext = {
      options,
      nodes: this.nodes,
      supervisor,
      requests: this.requests,
      zeekLinks: this.zeekLinks,
      endpoint: this.endpoint,
      log,
      reply: (event, summary) => this.reply(event, summary),
      notifyError: (msg, node) => this.notifyError(msg, node),
    };
    this.deployments = new Deployments(ctx);
    this.operations = new NodeOperations(ctx);
    this.zmgmt = new ZmgmtOperations(ctx);
    hub.on("connect", (origin: Origin, topics: readonly string[]) => {
      this.metrics.connectionAccepted();
      this.onHubConnect(origin, topics);
    });
    hub.on("disconnect", (origin: Origin) => {
      this.controllerOrigins.delete(origin.id);
      this.refusedOrigins.delete(origin.id);
    });
    controllerPeer?.on("ready", () => this.sendHello());
    controllerPeer?.on("event", (topic, event) => {
      if (topic === agentTopic(options.name)) void this.onControllerEvent(event);
    });
    supervisor.on("spawn", (name, pid) => this.nodes.spawned(name, pid));
    supervisor.on("exit", (exit) => this.onExit(exit));
    supervisor.on("gave-up", (name, attempts) => this.onGaveUp(name, attempts));
  }

  get name(): string {
    return this.options.name;
  }

  /** Re-learns the nodes the supervisor still runs (after an agent restart). */
  recover(): Promise<void> {
    return this.deployments.recover();
  }

  /** Reads node state afresh into the metrics; run before each scrape. */
  async refreshMetrics(): Promise<void> {
    this.metrics.update(await collectNodeStats(this.statsContext(), this.crashes, this.deployments.configuration, false));
    const peer = this.controllerPeer;
    this.metrics.setControllerConnected(peer ? peer.connected : this.controllerOrigins.size > 0);
  }

  close(): void {
    this.closed = true;
    this.requests.clear();
    this.endpoint.close();
    void this.zeekLinks.closeAll();
    clearInterval(this.archiveTimer);
  }

  /** Starts archiving what Zeek loggers rotate, now and every interval. */
  startLogArchival(): void {
    const archive = this.options.logArchive;
    if (!archive || this.archiveTimer) return;
    this.archiveTimer = setInterval(() => void this.archiveLogs(), archive.intervalMs);
    this.archiveTimer.unref();
    void this.archiveLogs();
  }

  /** One archival pass over every node directory, including those of nodes no longer deployed. */
  archiveLogs(): Promise<void> {
    const archive = this.options.logArchive;
    if (!archive) return Promise.resolve();
    this.archiving = this.archiving.then(async () => {
      const root = join(this.options.stateDir, "nodes");
      let dirs: string[];
      try {
        dirs = readdirSync(root);
      } catch {
        return;
      }
      for (const dir of dirs) {
        const written = await archiveQueuedLogs(logQueueDirectory(join(root, dir)), archive.directory, (msg) => this.log.error(msg));
        if (written.length) this.log.info(`archived ${written.length} rotated log(s) of ${dir} into ${archive.directory}`);
      }
    });
    return this.archiving;
  }

  // ---------------------------------------------------------------------------------------
  // Transport glue.

  private onHubConnect(origin: Origin, topics: readonly string[]): void {
    // A peer that subscribes to our topic is a controller that dialed in (c2a).
    const mine = agentTopic(this.options.name);
    if (!topics.some((t) => mine.startsWith(t) && t.startsWith(AGENT_TOPIC_PREFIX))) return;
    if (this.options.requireControllerProof && origin.principal !== CONTROLLER_PRINCIPAL) {
      // Not the controller; the hello alone (name and Broker ID) still tells a client that
      // was pointed at this port by mistake that it reached an agent.
      this.hub.sendTo(origin.id, mine, eventToData(this.hello()));
      return;
    }
    this.controllerOrigins.add(origin.id);
    this.sendHello();
  }

  private onHubDelivery(d: Delivery): void {
    const event = deliveryEvent(d);
    if (!event) return;
    if (d.topic === NODE_TOPIC) {
      // Node traffic is accepted only from the agent's own nodes (they hold the token).
      if (d.origin.principal === "node") this.onNodeEvent(event);
      return;
    }
    // An agent that dials its controller takes requests only over that link; anyone else
    // reaching its listener (a node, a stray local process) is not the controller.
    if (d.topic !== agentTopic(this.options.name) || this.options.connectsToController) return;
    if (this.options.requireControllerProof && d.origin.principal !== CONTROLLER_PRINCIPAL) {
      this.refuseRequest(d.origin, event);
      return;
    }
    void this.onControllerEvent(event);
  }

  /** A request from a connection that did not prove it is the controller: nothing happens but the error. */
  private refuseRequest(origin: Origin, event: ZeekEvent): void {
    if (!CONTROLLER_REQUESTS.has(event.name)) return;
    const message = `agent ${this.options.name} takes ${event.name} only from its controller, and this connection did not prove it is that controller`;
    this.hub.connection(origin.id)?.sendError(CONTROLLER_UNAUTHORIZED, message);
    if (this.refusedOrigins.has(origin.id)) return;
    this.refusedOrigins.add(origin.id);
    const from = origin.remoteAddress !== undefined ? `${origin.remoteAddress}:${origin.remotePort ?? "?"}` : "an unknown address";
    this.log.warning(`refused ${event.name} from ${from}: not the controller (further requests of that connection are refused silently)`);
  }

  private sendToController(event: ZeekEvent): void {
    const topic = agentTopic(this.options.name);
    if (this.options.requireControllerProof) {
      // Answers and notifications carry configurations and node details: for the proven
      // controller only, not for whoever else subscribed to the topic.
      if (this.controllerOrigins.size > 0) {
        const data = eventToData(event);
        for (const id of this.controllerOrigins) this.hub.sendTo(id, topic, data);
      }
    } else {
      this.endpoint.publishEvent(topic, event);
    }
    this.controllerPeer?.publishEvent(topic, event);
  }

  private hello(): ZeekEvent {
    return AgentApi.notify_agent_hello.make(this.options.name, this.hub.endpointId, this.options.connectsToController, AGENT_API_VERSION);
  }

  private sendHello(): void {
    this.log.info(`tx ${AgentApi.notify_agent_hello.name} ${this.options.name}`);
    this.sendToController(this.hello());
  }

  private reply(event: ZeekEvent, summary: string): void {
    // Answers to read-only queries are DEBUG traffic, like their requests.
    if (event.name === AgentApi.get_nodes_response.name || event.name === AgentApi.node_dispatch_response.name) {
      this.log.debug(`tx ${event.name} ${summary}`);
    } else {
      this.log.info(`tx ${event.name} ${summary}`);
    }
    this.metrics.requests.answered(event, "request timed out");
    this.sendToController(event);
  }

  private notifyError(msg: string, node?: string): void {
    this.sendToController(AgentApi.notify_error.make(this.options.name, msg, node));
  }

  // ---------------------------------------------------------------------------------------
  // Controller requests.

  private async onControllerEvent(event: ZeekEvent): Promise<void> {
    if (this.closed) return;
    this.metrics.requests.received(event);
    try {
      switch (event.name) {
        case AgentApi.agent_welcome_request.name: {
          const [reqid] = AgentApi.agent_welcome_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          this.reply(AgentApi.agent_welcome_response.make(reqid, makeResult(reqid, { instance: this.options.name })), reqid);
          return;
        }
        case AgentApi.agent_standby_request.name: {
          const [reqid] = AgentApi.agent_standby_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          this.reply(AgentApi.agent_standby_response.make(reqid, makeResult(reqid, { instance: this.options.name })), reqid);
          await this.deployments.standby();
          return;
        }
        case AgentApi.deploy_request.name: {
          const [reqid, config, force] = AgentApi.deploy_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.deployments.deploy(reqid, config, force === true);
          return;
        }
        case AgentApi.get_nodes_request.name: {
          const [reqid] = AgentApi.get_nodes_request.parse(event);
          this.log.debug(`rx ${event.name} ${reqid}`);
          await this.operations.getNodes(reqid);
          return;
        }
        case AgentApi.node_dispatch_request.name: {
          const [reqid, action, nodes] = AgentApi.node_dispatch_request.parse(event);
          this.log.debug(`rx ${event.name} ${reqid} ${action.join(" ")}`);
          this.operations.dispatch(reqid, action, nodes ?? []);
          return;
        }
        case AgentApi.restart_request.name: {
          const [reqid, nodes] = AgentApi.restart_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.operations.restart(reqid, nodes ?? []);
          return;
        }
        case ZmgmtAgentApi.node_logs_request.name: {
          const [reqid, query] = ZmgmtAgentApi.node_logs_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid} ${query.node}`);
          await this.zmgmt.logs(reqid, query);
          return;
        }
        case ZmgmtAgentApi.get_node_status_request.name: {
          const [reqid, nodes] = ZmgmtAgentApi.get_node_status_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.zmgmt.status(reqid, nodes);
          return;
        }
        case ZmgmtAgentApi.stop_nodes_request.name: {
          const [reqid, nodes] = ZmgmtAgentApi.stop_nodes_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid} ${nodes.join(" ")}`);
          await this.zmgmt.stop(reqid, nodes);
          return;
        }
        case ZmgmtAgentApi.start_nodes_request.name: {
          const [reqid, nodes] = ZmgmtAgentApi.start_nodes_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid} ${nodes.join(" ")}`);
          await this.zmgmt.start(reqid, nodes);
          return;
        }
        case ZmgmtAgentApi.node_stats_request.name: {
          const [reqid, capture] = ZmgmtAgentApi.node_stats_request.parse(event);
          this.log.debug(`rx ${event.name} ${reqid}`);
          await this.answerNodeStats(reqid, capture);
          return;
        }
        default:
          // Our own responses and notifications come back on the same topic when both
          // directions share a connection; anything else is not ours to answer.
          return;
      }
    } catch (err) {
      this.log.error(`cannot handle ${event.name}: ${errorMessage(err)}`);
      this.notifyError(`cannot handle ${event.name}: ${errorMessage(err)}`);
    }
  }

  private async answerNodeStats(reqid: string, capture: boolean): Promise<void> {
    const nodes = await collectNodeStats(this.statsContext(), this.crashes, this.deployments.configuration, capture);
    const stats: AgentNodeStats = {
      instance: this.options.name,
      ...(this.options.listenHost !== undefined ? { listenHost: this.options.listenHost } : {}),
      ...(this.options.listenPort !== undefined ? { listenPort: this.options.listenPort } : {}),
      nodes,
    };
    const result = makeResult(reqid, { instance: this.options.name, data: B.str(JSON.stringify(stats)) });
    // Scrapes come often; their answers stay out of the log at INFO.
    this.metrics.requests.answered(ZmgmtAgentApi.node_stats_response.make(reqid, result));
    this.log.debug(`tx ${ZmgmtAgentApi.node_stats_response.name} ${reqid}`);
    this.sendToController(ZmgmtAgentApi.node_stats_response.make(reqid, result));
  }

  private statsContext(): Pick<AgentContext, "nodes" | "supervisor"> {
    return { nodes: this.nodes, supervisor: this.supervisor };
  }

  /** The one timeout path: every kind of request answers for itself when it times out. */
  private answer(request: TrackedRequest<AgentRequest>, timedOut: boolean): void {
    if (hasKind(request, "deploy")) this.deployments.answer(request, timedOut);
    else if (hasKind(request, "restart")) this.operations.answerRestart(request, timedOut);
    else if (hasKind(request, "dispatch")) this.operations.answerDispatch(request);
  }

  // ---------------------------------------------------------------------------------------
  // Node reports.

  /** `link` names the Zeek node whose own link carried the event; it may speak only for itself. */
  private onNodeEvent(event: ZeekEvent, link?: string): void {
    if (event.name === NodeApi.notify_node_hello.name) {
      let name: string;
      let pid: number | undefined;
      try {
        [name, pid] = NodeApi.notify_node_hello.parse(event);
      } catch {
        return;
      }
      if (link !== undefined && name !== link) return;
      this.log.info(`rx ${event.name} ${name}`);
      if (!this.nodes.checkedIn(name, pid)) return;
      this.deployments.checkedIn(name);
      this.operations.checkedIn(name, pid);
      return;
    }
    if (event.name === NodeApi.node_dispatch_response.name) {
      let reqid: string;
      let result: Result;
      try {
        [reqid, result] = NodeApi.node_dispatch_response.parse(event);
      } catch {
        return;
      }
      this.operations.dispatchResponse(reqid, result, link);
    }
  }

  private onExit(exit: NodeExit): void {
    const how = this.nodes.exited(exit);
    if (how === undefined) return;
    this.crashes.crashed(exit.name);
    const msg = `node ${exit.name} (pid ${exit.pid}) ${how}`;
    this.log.warning(msg);
    this.sendToController(AgentApi.notify_log.make(this.options.name, msg, exit.name));
    this.nodes.afterExit(exit);
  }

  private onGaveUp(name: string, attempts: number): void {
    const rec = this.nodes.get(name);
    if (!rec) return;
    const msg = `node ${name} failed ${attempts} restart attempts; giving up until it is restarted or redeployed`;
    this.log.error(msg);
    this.notifyError(msg, name);
    this.nodes.setState(rec, "FAILED");
  }
}
