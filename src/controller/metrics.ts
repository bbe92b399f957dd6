// The controller's Prometheus metrics, served on GET /metrics of its WebSocket listener:
// the cluster's nodes by state and role, restarts and crashes per node (asked of the agents
// at each scrape), agents connected, requests by type and result with latencies, deploys
// and rollbacks, WebSocket peers.

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { STATES } from "../management/types.js";
import { RequestMetrics, connectionMetrics } from "../management/metrics.js";
import type { AgentNodeStats } from "../agent/api.js";

const NODE_ROLES = ["MANAGER", "LOGGER", "PROXY", "WORKER"] as const;

/** Deploys of a few nodes take a second or two; of many Zeek nodes, up to minutes. */
const DEPLOY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export type DeployTrigger = "client" | "internal";
export type DeployOutcome = "success" | "failure" | "timeout";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly requests: RequestMetrics;
  private readonly connections: { accepted(): void };
  private readonly nodes: Gauge<"state" | "cluster_role">;
  private readonly restarts: Counter<"cluster_node" | "cluster_role" | "cluster_instance">;
  private readonly crashes: Counter<"cluster_node" | "cluster_role" | "cluster_instance">;
  private readonly statsAnswered: Gauge<"cluster_instance">;
  private readonly deploys: Counter<"trigger" | "result">;
  private readonly deployDuration: Histogram<"trigger" | "result">;
  private readonly rollbacks: Counter;
  private readonly deployStarts = new Map<string, { at: bigint; trigger: DeployTrigger }>();

  constructor(hooks: { openConnections: () => number; agentsConnected: () => number }) {
    const registers = [this.registry];
    this.requests = new RequestMetrics(this.registry);
    this.connections = connectionMetrics(this.registry, hooks.openConnections);
    new Gauge({
      name: "zmgmt_agents_connected",
      help: "Agents checked in with the controller.",
      registers,
      collect() {
        this.set(hooks.agentsConnected());
      },
    });
    this.nodes = new Gauge({
      name: "zmgmt_nodes",
      help: "Cluster nodes reported by the connected agents, by state and cluster role.",
      labelNames: ["state", "cluster_role"],
      registers,
    });
    this.restarts = new Counter({
      name: "zmgmt_node_restarts_total",
      help: "Processes started for a node after its first one (crash revivals and requested restarts).",
      labelNames: ["cluster_node", "cluster_role", "cluster_instance"],
      registers,
    });
    this.crashes = new Counter({
      name: "zmgmt_node_crashes_total",
      help: "Runs of a node that ended without its supervisor ending them, since its agent started.",
      labelNames: ["cluster_node", "cluster_role", "cluster_instance"],
      registers,
    });
    this.statsAnswered = new Gauge({
      name: "zmgmt_agent_stats_up",
      help: "1 when the agent answered the controller's node statistics request for this scrape, else 0.",
      labelNames: ["cluster_instance"],
      registers,
    });
    this.deploys = new Counter({
      name: "zmgmt_deploys_total",
      help: "Deployments finished, by trigger (client request or internal redeploy) and result.",
      labelNames: ["trigger", "result"],
      registers,
    });
    this.deployDuration = new Histogram({
      name: "zmgmt_deploy_duration_seconds",
      help: "Time from a deployment's start to its end, by trigger and result.",
      labelNames: ["trigger", "result"],
      buckets: DEPLOY_BUCKETS,
      registers,
    });
    this.rollbacks = new Counter({
      name: "zmgmt_deploy_rollbacks_total",
      help: "Deployments rolled back to the previously deployed configuration.",
      registers,
    });
  }

  connectionAccepted(): void {
    this.connections.accepted();
  }

  deployStarted(reqid: string, trigger: DeployTrigger): void {
    this.deployStarts.set(reqid, { at: process.hrtime.bigint(), trigger });
  }

  deployFinished(reqid: string, result: DeployOutcome): void {
    const start = this.deployStarts.get(reqid);
    if (!start) return;
    this.deployStarts.delete(reqid);
    const labels = { trigger: start.trigger, result };
    this.deploys.inc(labels);
    this.deployDuration.observe(labels, Number(process.hrtime.bigint() - start.at) / 1e9);
  }

  /** Call once per deployment that was rolled back. */
  deployRolledBack(): void {
    this.rollbacks.inc();
  }

  /**
   * Replaces the node series with the agents' fresh answers. `silent` are the agents that
   * did not answer in time: their nodes drop out until they answer again.
   */
  updateNodes(answers: AgentNodeStats[], silent: string[]): void {
    this.nodes.reset();
    this.restarts.reset();
    this.crashes.reset();
    this.statsAnswered.reset();
    for (const role of NODE_ROLES) for (const state of STATES) this.nodes.set({ state, cluster_role: role }, 0);
    for (const answer of answers) {
      this.statsAnswered.set({ cluster_instance: answer.instance }, 1);
      for (const n of answer.nodes) {
        this.nodes.inc({ state: n.state, cluster_role: n.role });
        const labels = { cluster_node: n.node, cluster_role: n.role, cluster_instance: n.instance };
        this.restarts.inc(labels, n.restarts);
        this.crashes.inc(labels, n.crashes);
      }
    }
    for (const name of silent) this.statsAnswered.set({ cluster_instance: name }, 0);
  }
}
