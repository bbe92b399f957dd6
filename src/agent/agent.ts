// The Management agent: one per instance. It takes the controller's requests, turns them
// into supervisor operations on this host's node processes, tracks node state from the
// nodes' check-ins and the supervisor's reports, and answers every request within its
// timeout. Sockets stay outside: the agent gets a hub (for nodes and controllers that dial
// in), an optional controller peer (when it dials out) and a supervisor link.

import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../broker/errors.js";
import type { Delivery, Hub, LocalEndpoint, Origin } from "../broker/hub.js";
import { deliveryEvent } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import { newReqId, type Peer } from "../broker/peer.js";
import type { Logger } from "../management/log.js";
import {
  NodeOutputsCodec,
  NodeStatusVecCodec,
  makeResult,
  resultToString,
} from "../management/records.js";
import type { Configuration, Node, NodeOutputs, NodeStatus, Result, State } from "../management/types.js";
import { NODE_TOPIC, NodeApi, NodeEnv, type ClusterLayout } from "../node/api.js";
import type { NodeExit, SupervisedNodeConfig, SupervisedNodeStatus } from "../supervisor/api.js";
import { AGENT_API_VERSION, AGENT_TOPIC_PREFIX, AgentApi, agentTopic } from "./api.js";
import type { SupervisorLink } from "./supervisor-link.js";
import { shlexSplit } from "../management/shlex.js";
import { decodeNodeMeta, encodeNodeMeta } from "./node-meta.js";
import { CLUSTER_LAYOUT_FILE, clusterLayoutScript, freeLoopbackPort, logQueueDirectory, zeekLaunch, type ZeekInstall } from "./zeek.js";
import { archiveQueuedLogs } from "./log-archiver.js";
import { ZeekNodeLinks } from "./zeek-links.js";

export interface AgentOptions {
  name: string;
  /** Where per-node directories and the agent's own state live. */
  stateDir: string;
  /** The agent's own directory (state file, log). */
  directory: string;
  requestTimeoutMs: number;
  /** argv of the default node program; a node's env ZMGMT_NODE_COMMAND overrides it. */
  nodeCommand: string[];
  /** URL nodes use to reach this agent's hub. */
  nodeUrl: string;
  /** Secret nodes present to this agent's hub. */
  nodeToken: string;
  /** This agent's listen port, reported in get_nodes when the controller dials in (c2a). */
  listenPort?: number;
  /** True when this agent dials the controller (a2c). */
  connectsToController: boolean;
  /** Extra environment for every node (e.g. the supervisor pid for orphan checks). */
  nodeBaseEnv?: Record<string, string>;
  /** Run nodes as this Zeek instead of `nodeCommand` (a node's ZMGMT_NODE_COMMAND still wins). */
  zeek?: ZeekInstall;
  /** Where Zeek loggers' rotated logs are archived, and how often the agent looks for them. */
  logArchive?: { directory: string; intervalMs: number };
}

interface NodeRecord {
  node: Node;
  state: State;
  pid?: number;
  /** The pid of the process that last checked in. */
  helloPid?: number;
  /** Zeek nodes: the loopback port of their management endpoint, which the agent dials. */
  managementPort?: number;
  /** Tails of the latest run that ended, for failure reports. */
  outputs?: NodeOutputs;
  lastExit?: string;
}

interface PendingDeploy {
  reqid: string;
  waiting: Set<string>;
  failures: Map<string, string>;
  timer: NodeJS.Timeout;
}

interface PendingRestart {
  reqid: string;
  waiting: Set<string>;
  /** Pids being replaced: a check-in from one of them does not count. */
  oldPids: Map<string, number | undefined>;
  results: Result[];
  timer: NodeJS.Timeout;
}

interface PendingDispatch {
  reqid: string;
  nodeReqid: string;
  waiting: Set<string>;
  results: Result[];
  timer: NodeJS.Timeout;
}

const STATE_FILE = "agent-state.json";
export const NODE_COMMAND_ENV = "ZMGMT_NODE_COMMAND";

export class Agent {
  private readonly endpoint: LocalEndpoint;
  private config: Configuration | undefined;
  /** A fresh random id until a deployment is adopted, so the first deploy always runs. */
  private configId: string = randomUUID();
  private readonly nodes = new Map<string, NodeRecord>();
  private deploy: PendingDeploy | undefined;
  private deployChain: Promise<void> = Promise.resolve();
  private readonly restarts = new Map<string, PendingRestart>();
  private readonly dispatches = new Map<string, PendingDispatch>();
  /** Hub origins of controllers that dialed in, to greet each of them once. */
  private readonly controllerOrigins = new Set<string>();
  private readonly zeekLinks = new ZeekNodeLinks((node, event) => this.onNodeEvent(event, node));
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
    this.endpoint = hub.local([agentTopic(options.name), NODE_TOPIC], (d) => this.onHubDelivery(d));
    hub.on("connect", (origin: Origin, topics: readonly string[]) => this.onHubConnect(origin, topics));
    hub.on("disconnect", (origin: Origin) => this.controllerOrigins.delete(origin.id));
    controllerPeer?.on("ready", () => this.sendHello());
    controllerPeer?.on("event", (topic, event) => {
      if (topic === agentTopic(options.name)) void this.onControllerEvent(event);
    });
    supervisor.on("spawn", (name, pid) => this.onSpawn(name, pid));
    supervisor.on("exit", (exit) => this.onExit(exit));
    supervisor.on("gave-up", (name, attempts) => this.onGaveUp(name, attempts));
  }

  get name(): string {
    return this.options.name;
  }

  /** Re-learns the nodes the supervisor still runs (after an agent restart). */
  async recover(): Promise<void> {
    const persisted = this.loadState();
    const running = await this.supervisor.status("");
    const clusterNodes = running.filter((s) => s.config.managementRole === "");
    for (const s of clusterNodes) {
      const meta = decodeNodeMeta(s.config.meta);
      if (!meta) {
        this.log.warning(`node ${s.config.name} has no valid agent metadata; it stays unmanaged until the next deploy`);
        continue;
      }
      const { node, managementPort } = meta;
      this.nodes.set(node.name, {
        node,
        // The node proves it is up by checking in again; until then it is pending.
        state: s.pid !== undefined ? "PENDING" : s.state === "failed" ? "FAILED" : "CRASHED",
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        ...(managementPort !== undefined ? { managementPort } : {}),
      });
      if (managementPort !== undefined) this.zeekLinks.open(node.name, managementPort);
    }
    if (persisted) {
      this.config = persisted;
      const mine = persisted.nodes.filter((n) => n.instance === this.options.name).map((n) => n.name);
      // Claim the persisted config only if its nodes are really still there; otherwise the
      // next deploy of that id must recreate them.
      if (mine.every((n) => this.nodes.has(n)) && this.nodes.size === mine.length) this.configId = persisted.id;
    }
    this.log.info(
      `agent ${this.options.name} recovered ${this.nodes.size} node(s) from the supervisor` +
        (this.configId === persisted?.id ? `, running config ${persisted.id}` : ""),
    );
  }

  close(): void {
    this.closed = true;
    for (const p of [this.deploy, ...this.restarts.values(), ...this.dispatches.values()]) if (p) clearTimeout(p.timer);
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
    if (topics.some((t) => mine.startsWith(t) && t.startsWith(AGENT_TOPIC_PREFIX))) {
      this.controllerOrigins.add(origin.id);
      this.sendHello();
    }
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
    if (d.topic === agentTopic(this.options.name) && !this.options.connectsToController) void this.onControllerEvent(event);
  }

  private sendToController(event: ZeekEvent): void {
    const topic = agentTopic(this.options.name);
    this.endpoint.publishEvent(topic, event);
    this.controllerPeer?.publishEvent(topic, event);
  }

  private sendHello(): void {
    this.log.info(`tx ${AgentApi.notify_agent_hello.name} ${this.options.name}`);
    this.sendToController(
      AgentApi.notify_agent_hello.make(this.options.name, this.hub.endpointId, this.options.connectsToController, AGENT_API_VERSION),
    );
  }

  private reply(event: ZeekEvent, summary: string): void {
    this.log.info(`tx ${event.name} ${summary}`);
    this.sendToController(event);
  }

  // ---------------------------------------------------------------------------------------
  // Controller requests.

  private async onControllerEvent(event: ZeekEvent): Promise<void> {
    if (this.closed) return;
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
          await this.standby();
          return;
        }
        case AgentApi.deploy_request.name: {
          const [reqid, config, force] = AgentApi.deploy_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.onDeploy(reqid, config, force === true);
          return;
        }
        case AgentApi.get_nodes_request.name: {
          const [reqid] = AgentApi.get_nodes_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.onGetNodes(reqid);
          return;
        }
        case AgentApi.node_dispatch_request.name: {
          const [reqid, action, nodes] = AgentApi.node_dispatch_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid} ${action.join(" ")}`);
          this.onDispatch(reqid, action, nodes ?? []);
          return;
        }
        case AgentApi.restart_request.name: {
          const [reqid, nodes] = AgentApi.restart_request.parse(event);
          this.log.info(`rx ${event.name} ${reqid}`);
          await this.onRestart(reqid, nodes ?? []);
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

  // ---------------------------------------------------------------------------------------
  // Deployment.

  private onDeploy(reqid: string, config: Configuration, force: boolean): Promise<void> {
    // Deployments run one after the other: each one tears down what the previous created.
    const run = this.deployChain.then(() => this.runDeploy(reqid, config, force));
    this.deployChain = run.catch(() => undefined);
    return run;
  }

  private async runDeploy(reqid: string, config: Configuration, force: boolean): Promise<void> {
    const instance = this.options.name;
    if (config.id === this.configId && !force) {
      this.log.info(`already running config ${config.id}`);
      this.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }
    this.config = config;
    this.configId = config.id;
    this.saveState(config);

    await this.destroyClusterNodes();

    const mine = config.nodes.filter((n) => n.instance === instance);
    if (mine.length === 0) {
      // Upstream waits for its timeout here and then sends a second, stray response; an
      // instance without nodes has simply nothing to do.
      this.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }

    const layout = clusterLayout(config);
    const pending: PendingDeploy = {
      reqid,
      waiting: new Set(mine.map((n) => n.name)),
      failures: new Map(),
      timer: setTimeout(() => this.finishDeploy(true), this.options.requestTimeoutMs),
    };
    this.deploy = pending;
    for (const node of mine) this.setState({ node, state: "PENDING" }, "PENDING", true);

    await Promise.all(
      mine.map(async (node) => {
        let error: string;
        try {
          const supervised = await this.supervisedConfig(node, config, layout);
          error = await this.supervisor.create(supervised);
          const port = this.nodes.get(node.name)?.managementPort;
          if (error === "" && port !== undefined) this.zeekLinks.open(node.name, port);
        } catch (err) {
          error = errorMessage(err);
        }
        if (error !== "") {
          const msg = `failed to create node ${node.name}: ${error}`;
          this.log.error(msg);
          this.notifyError(msg, node.name);
          if (this.deploy === pending) {
            pending.failures.set(node.name, msg);
            pending.waiting.delete(node.name);
          }
        }
      }),
    );
    if (this.deploy === pending && pending.waiting.size === 0) this.finishDeploy(false);
  }

  private finishDeploy(timedOut: boolean): void {
    const pending = this.deploy;
    if (!pending) return;
    this.deploy = undefined;
    clearTimeout(pending.timer);
    const instance = this.options.name;
    const results: Result[] = [];
    if (timedOut) {
      this.log.info(`request ${pending.reqid} timed out`);
      results.push(makeResult(pending.reqid, { instance, success: false, error: "request timed out" }));
    }
    for (const [name, rec] of this.nodes) {
      if (!this.config?.nodes.some((n) => n.name === name && n.instance === instance)) continue;
      const ok = !pending.waiting.has(name) && !pending.failures.has(name);
      const result = makeResult(pending.reqid, { instance, node: name, success: ok });
      if (!ok) {
        result.error =
          pending.failures.get(name) ??
          `node ${name} did not check in within ${this.options.requestTimeoutMs} ms` + (rec.lastExit ? ` (${rec.lastExit})` : "");
        if (rec.outputs) result.data = NodeOutputsCodec.encode(rec.outputs);
      }
      results.push(result);
    }
    this.reply(AgentApi.deploy_response.make(pending.reqid, results), pending.reqid);
  }

  private async standby(): Promise<void> {
    // Standby is a deploy of an empty configuration with a fresh id.
    const empty: Configuration = { id: randomUUID(), instances: [], nodes: [] };
    await (this.deployChain = this.deployChain.then(async () => {
      this.config = empty;
      this.configId = empty.id;
      this.saveState(empty);
      await this.destroyClusterNodes();
    }));
  }

  /** Destroys every cluster node the supervisor runs (never management processes). */
  private async destroyClusterNodes(): Promise<void> {
    const running = await this.supervisor.status("");
    const victims = running.filter((s) => s.config.managementRole === "");
    const known = new Set(victims.map((v) => v.config.name));
    for (const name of this.nodes.keys()) if (!known.has(name)) this.nodes.delete(name);
    await Promise.all(
      victims.map(async (s) => {
        const name = s.config.name;
        await this.zeekLinks.close(name);
        try {
          // Stopping escalates to SIGKILL on the supervisor's own schedule; allow for it.
          const ok = await this.supervisor.destroy(name, 60_000);
          if (!ok) {
            const msg = `failed to destroy node ${name}`;
            this.log.error(msg);
            this.notifyError(msg, name);
          }
        } catch (err) {
          const msg = `failed to destroy node ${name}: ${errorMessage(err)}`;
          this.log.error(msg);
          this.notifyError(msg, name);
        }
        this.nodes.delete(name);
      }),
    );
  }

  private async supervisedConfig(node: Node, config: Configuration, layout: ClusterLayout): Promise<SupervisedNodeConfig> {
    const directory = join(this.options.stateDir, "nodes", node.name);
    const override = node.env[NODE_COMMAND_ENV];
    const zeek = this.options.zeek;
    if (zeek && !override) {
      mkdirSync(directory, { recursive: true });
      writeFileSync(join(directory, CLUSTER_LAYOUT_FILE), clusterLayoutScript(config));
      const managementPort = await freeLoopbackPort();
      const launch = zeekLaunch(zeek, node, config, directory, managementPort, { ...process.env, ...node.env });
      const rec = this.nodes.get(node.name);
      if (rec) rec.managementPort = managementPort;
      return {
        name: node.name,
        command: launch.command,
        directory,
        env: { ...(this.options.nodeBaseEnv ?? {}), ...node.env, ...launch.env },
        ...(node.cpuAffinity !== undefined ? { cpuAffinity: node.cpuAffinity } : {}),
        managementRole: "",
        meta: encodeNodeMeta({ node, managementPort }),
      };
    }
    const env: Record<string, string> = {
      ...(this.options.nodeBaseEnv ?? {}),
      ...node.env,
      [NodeEnv.name]: node.name,
      [NodeEnv.role]: node.role,
      [NodeEnv.cluster]: JSON.stringify(layout),
      [NodeEnv.config]: JSON.stringify(node),
      [NodeEnv.agentUrl]: this.options.nodeUrl,
      [NodeEnv.agentName]: this.options.name,
      [NodeEnv.agentToken]: this.options.nodeToken,
    };
    if (node.port !== undefined) env[NodeEnv.port] = String(node.port);
    if (node.metricsPort !== undefined) env[NodeEnv.metricsPort] = String(node.metricsPort);
    if (node.interface !== undefined) env[NodeEnv.interface] = node.interface;
    if (node.scripts?.length) env[NodeEnv.scripts] = node.scripts.join("\n");
    const url = new URL(this.options.nodeUrl);
    env[NodeEnv.agentAddr] = url.hostname;
    env[NodeEnv.agentPort] = url.port;
    return {
      name: node.name,
      // Shell words, as the INI `env` values themselves are read.
      command: override ? shlexSplit(override) : this.options.nodeCommand,
      directory,
      env,
      ...(node.cpuAffinity !== undefined ? { cpuAffinity: node.cpuAffinity } : {}),
      managementRole: "",
      meta: encodeNodeMeta({ node }),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Node state.

  private setState(rec: NodeRecord, state: State, replace = false): void {
    const existing = this.nodes.get(rec.node.name);
    const old = replace || !existing ? undefined : existing.state;
    const target = replace || !existing ? rec : existing;
    target.state = state;
    this.nodes.set(rec.node.name, target);
    if (old !== undefined && old !== state) {
      this.sendToController(AgentApi.notify_change.make(this.options.name, target.node, old, state));
    }
  }

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
      const rec = this.nodes.get(name);
      if (!rec) return;
      if (pid !== undefined) {
        rec.helloPid = pid;
        rec.pid = pid;
      }
      this.setState(rec, "RUNNING");
      if (this.deploy?.waiting.delete(name) && this.deploy.waiting.size === 0) this.finishDeploy(false);
      for (const [id, r] of this.restarts) {
        if (pid !== undefined && r.oldPids.get(name) === pid) continue;
        if (r.waiting.delete(name)) {
          r.results.push(makeResult(r.reqid, { instance: this.options.name, node: name }));
          if (r.waiting.size === 0) this.finishRestart(id, false);
        }
      }
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
      const pending = this.dispatches.get(reqid);
      if (link !== undefined && result.node !== link) return;
      if (!pending || result.node === undefined || !pending.waiting.delete(result.node)) {
        this.log.debug(`response ${reqid} not expected, ignoring`);
        return;
      }
      this.log.info(`rx ${event.name} ${reqid} from ${result.node}`);
      result.instance = this.options.name;
      pending.results.push(result);
      if (pending.waiting.size === 0) this.finishDispatch(reqid);
    }
  }

  private onSpawn(name: string, pid: number): void {
    const rec = this.nodes.get(name);
    if (!rec) return;
    // The spawn report and the node's own check-in travel on different connections; a
    // node that already checked in under this pid stays RUNNING.
    if (pid > 0 && rec.helloPid === pid) return;
    if (pid > 0) rec.pid = pid;
    else delete rec.pid;
    this.setState(rec, "PENDING");
  }

  private onExit(exit: NodeExit): void {
    const rec = this.nodes.get(exit.name);
    if (!rec) return;
    if (rec.pid !== undefined && rec.pid !== exit.pid) return;
    delete rec.pid;
    rec.outputs = exit.outputs;
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode ?? "?"}`;
    rec.lastExit = exit.restartInMs !== undefined ? `${how}, restarting in ${exit.restartInMs} ms` : how;
    const msg = `node ${exit.name} (pid ${exit.pid}) ${rec.lastExit}`;
    this.log.warning(msg);
    this.sendToController(AgentApi.notify_log.make(this.options.name, msg, exit.name));
    this.setState(rec, exit.restartInMs !== undefined ? "CRASHED" : "FAILED");
  }

  private onGaveUp(name: string, attempts: number): void {
    const rec = this.nodes.get(name);
    if (!rec) return;
    const msg = `node ${name} failed ${attempts} restart attempts; giving up until it is restarted or redeployed`;
    this.log.error(msg);
    this.notifyError(msg, name);
    this.setState(rec, "FAILED");
  }

  private notifyError(msg: string, node?: string): void {
    this.sendToController(AgentApi.notify_error.make(this.options.name, msg, node));
  }

  // ---------------------------------------------------------------------------------------
  // get_nodes.

  private async onGetNodes(reqid: string): Promise<void> {
    const instance = this.options.name;
    let running: SupervisedNodeStatus[];
    try {
      running = await this.supervisor.status("");
    } catch (err) {
      const result = makeResult(reqid, { instance, success: false, error: `supervisor did not answer: ${errorMessage(err)}` });
      this.reply(AgentApi.get_nodes_response.make(reqid, result), resultToString(result));
      return;
    }
    const statuses: NodeStatus[] = [];
    for (const s of running) {
      const c = s.config;
      const pid = s.pid !== undefined ? { pid: s.pid } : {};
      if (c.managementRole === "AGENT") {
        statuses.push({
          node: c.name,
          state: "RUNNING",
          mgmtRole: "AGENT",
          clusterRole: "NONE",
          ...pid,
          ...(!this.options.connectsToController && this.options.listenPort !== undefined ? { port: this.options.listenPort } : {}),
        });
      } else if (c.managementRole === "CONTROLLER") {
        // Upstream reports the agent's port here (a bug baked into its baselines); we report
        // the controller's own WebSocket port, which the supervisor config carries in meta.
        const port = controllerPortFromMeta(c.meta);
        statuses.push({
          node: c.name,
          state: s.pid !== undefined ? "RUNNING" : "PENDING",
          mgmtRole: "CONTROLLER",
          clusterRole: "NONE",
          ...pid,
          ...(port !== undefined ? { port } : {}),
        });
      } else {
        const rec = this.nodes.get(c.name);
        const node = rec?.node ?? decodeNodeMeta(c.meta)?.node;
        statuses.push({
          node: c.name,
          state: rec?.state ?? "PENDING",
          mgmtRole: "NONE",
          clusterRole: node?.role ?? "NONE",
          ...pid,
          ...(node?.port !== undefined ? { port: node.port } : {}),
          ...(node?.metricsPort !== undefined ? { metricsPort: node.metricsPort } : {}),
        });
      }
    }
    const result = makeResult(reqid, { instance, data: NodeStatusVecCodec.encode(statuses) });
    this.reply(AgentApi.get_nodes_response.make(reqid, result), resultToString(result));
  }

  // ---------------------------------------------------------------------------------------
  // node_dispatch.

  private selectNodes(requested: string[]): { names: string[]; why?: string } {
    if (requested.length > 0) {
      const names = requested.filter((n) => this.nodes.has(n));
      return names.length ? { names } : { names, why: "no node overlap" };
    }
    const names = [...this.nodes.keys()];
    return names.length ? { names } : { names, why: "no nodes registered" };
  }

  private onDispatch(reqid: string, action: string[], requested: string[]): void {
    const instance = this.options.name;
    const { names, why } = this.selectNodes(requested);
    if (why) {
      this.reply(AgentApi.node_dispatch_response.make(reqid, []), `${reqid}, ${why}`);
      return;
    }
    const results: Result[] = [];
    const running: string[] = [];
    for (const n of names) {
      if (this.nodes.get(n)!.state === "RUNNING") running.push(n);
      else results.push(makeResult(reqid, { instance, node: n, success: false, error: `cluster node ${n} not in running state` }));
    }
    if (running.length === 0) {
      this.reply(AgentApi.node_dispatch_response.make(reqid, results), `${reqid}, no nodes running`);
      return;
    }
    const nodeReqid = newReqId();
    const pending: PendingDispatch = {
      reqid,
      nodeReqid,
      waiting: new Set(running),
      results,
      // Upstream has no timeout here and leaves the controller to time out; we answer for
      // the silent nodes ourselves, so the reply names them.
      timer: setTimeout(() => this.finishDispatch(nodeReqid), this.options.requestTimeoutMs),
    };
    this.dispatches.set(nodeReqid, pending);
    this.log.info(`tx ${NodeApi.node_dispatch_request.name} ${nodeReqid}`);
    const viaHub: string[] = [];
    for (const n of running) {
      if (this.nodes.get(n)!.managementPort === undefined) viaHub.push(n);
      else if (!this.zeekLinks.send(n, NodeApi.node_dispatch_request.make(nodeReqid, action, [n]))) {
        pending.waiting.delete(n);
        results.push(makeResult(reqid, { instance, node: n, success: false, error: `cluster node ${n} is not reachable by its agent` }));
      }
    }
    if (viaHub.length > 0) this.endpoint.publishEvent(NODE_TOPIC, NodeApi.node_dispatch_request.make(nodeReqid, action, viaHub));
    if (pending.waiting.size === 0) this.finishDispatch(nodeReqid);
  }

  private finishDispatch(nodeReqid: string): void {
    const pending = this.dispatches.get(nodeReqid);
    if (!pending) return;
    this.dispatches.delete(nodeReqid);
    clearTimeout(pending.timer);
    for (const n of pending.waiting) {
      pending.results.push(
        makeResult(pending.reqid, {
          instance: this.options.name,
          node: n,
          success: false,
          error: `cluster node ${n} did not respond within ${this.options.requestTimeoutMs} ms`,
        }),
      );
    }
    this.reply(AgentApi.node_dispatch_response.make(pending.reqid, pending.results), pending.reqid);
  }

  // ---------------------------------------------------------------------------------------
  // restart.

  private async onRestart(reqid: string, requested: string[]): Promise<void> {
    const instance = this.options.name;
    const { names, why } = this.selectNodes(requested);
    if (why) {
      this.reply(AgentApi.restart_response.make(reqid, []), `${reqid}, ${why}`);
      return;
    }
    // Crashed nodes are already being revived. Nodes the supervisor gave up on are not, and
    // a restart is what the give-up notice tells the operator to do, so they are included.
    const targets = names.filter((n) => ["RUNNING", "FAILED"].includes(this.nodes.get(n)!.state));
    const id = newReqId();
    const pending: PendingRestart = {
      reqid,
      waiting: new Set(targets),
      oldPids: new Map(targets.map((n) => [n, this.nodes.get(n)!.helloPid])),
      results: [],
      timer: setTimeout(() => this.finishRestart(id, true), this.options.requestTimeoutMs),
    };
    this.restarts.set(id, pending);
    await Promise.all(
      targets.map(async (n) => {
        const rec = this.nodes.get(n)!;
        this.setState(rec, "PENDING");
        let ok = false;
        try {
          ok = await this.supervisor.restart(n);
        } catch (err) {
          this.log.error(`failed to restart node ${n}: ${errorMessage(err)}`);
        }
        if (!ok) {
          const msg = `failed to restart node ${n}`;
          this.log.error(msg);
          this.notifyError(msg, n);
          if (pending.waiting.delete(n)) pending.results.push(makeResult(reqid, { instance, node: n, success: false, error: `could not restart node ${n}` }));
        }
      }),
    );
    if (pending.waiting.size === 0) this.finishRestart(id, false);
  }

  private finishRestart(id: string, timedOut: boolean): void {
    const pending = this.restarts.get(id);
    if (!pending) return;
    this.restarts.delete(id);
    clearTimeout(pending.timer);
    const instance = this.options.name;
    const results = [...pending.results];
    if (timedOut) {
      results.unshift(makeResult(pending.reqid, { instance, success: false, error: "request timed out" }));
      for (const n of pending.waiting) {
        const rec = this.nodes.get(n);
        const result = makeResult(pending.reqid, {
          instance,
          node: n,
          success: false,
          error: `node ${n} did not check in again within ${this.options.requestTimeoutMs} ms`,
        });
        if (rec?.outputs) result.data = NodeOutputsCodec.encode(rec.outputs);
        results.push(result);
      }
    }
    this.reply(AgentApi.restart_response.make(pending.reqid, results), pending.reqid);
  }

  // ---------------------------------------------------------------------------------------
  // Persistence of the adopted configuration (atomic write-rename).

  private loadState(): Configuration | undefined {
    try {
      const text = readFileSync(join(this.options.directory, STATE_FILE), "utf8");
      const parsed = JSON.parse(text) as { config?: Configuration };
      return parsed.config;
    } catch {
      return undefined;
    }
  }

  private saveState(config: Configuration): void {
    try {
      mkdirSync(this.options.directory, { recursive: true });
      const file = join(this.options.directory, STATE_FILE);
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, JSON.stringify({ version: 1, config }), { mode: 0o600 });
      renameSync(tmp, file);
    } catch (err) {
      this.log.error(`cannot persist agent state: ${errorMessage(err)}`);
    }
  }
}

export function clusterLayout(config: Configuration): ClusterLayout {
  const hosts = new Map(config.instances.map((i) => [i.name, i.host]));
  const layout: ClusterLayout = {};
  for (const n of config.nodes) {
    layout[n.name] = {
      role: n.role,
      host: hosts.get(n.instance) ?? "0.0.0.0",
      ...(n.port !== undefined ? { port: n.port } : {}),
      ...(n.interface !== undefined ? { interface: n.interface } : {}),
      ...(n.metricsPort !== undefined ? { metricsPort: n.metricsPort } : {}),
    };
  }
  return layout;
}

function controllerPortFromMeta(meta: string): number | undefined {
  try {
    const v = (JSON.parse(meta) as { port?: unknown }).port;
    return typeof v === "number" && v > 0 && v < 65536 ? v : undefined;
  } catch {
    return undefined;
  }
}
