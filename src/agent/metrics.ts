// The agent's Prometheus metrics, served on GET /metrics of its listener: its nodes by
// state and role, restarts and crashes per node, the requests it answers, its WebSocket
// peers and whether its controller is connected. Node values are read fresh at each scrape.
// Labels say cluster_node / cluster_role rather than node / role: service discovery gives
// every target node, role and instance labels, which would otherwise shadow these.

import { Counter, Gauge, Registry } from "prom-client";
import { STATES } from "../management/types.js";
import { RequestMetrics, connectionMetrics } from "../management/metrics.js";
import type { NodeStats } from "./api.js";

/** Roles a cluster node can have; every state of each is exported, zeros included. */
const NODE_ROLES = ["MANAGER", "LOGGER", "PROXY", "WORKER"] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly requests: RequestMetrics;
  private readonly connections: { accepted(): void };
  private readonly nodes: Gauge<"state" | "cluster_role">;
  private readonly restarts: Counter<"cluster_node" | "cluster_role">;
  private readonly crashes: Counter<"cluster_node" | "cluster_role">;
  private readonly controllerConnected: Gauge;

  constructor(openConnections: () => number) {
    this.requests = new RequestMetrics(this.registry);
    this.connections = connectionMetrics(this.registry, openConnections);
    this.nodes = new Gauge({
      name: "zmgmt_nodes",
      help: "Cluster nodes of this instance, by state and cluster role.",
      labelNames: ["state", "cluster_role"],
      registers: [this.registry],
    });
    this.restarts = new Counter({
      name: "zmgmt_node_restarts_total",
      help: "Processes started for a node after its first one (crash revivals and requested restarts).",
      labelNames: ["cluster_node", "cluster_role"],
      registers: [this.registry],
    });
    this.crashes = new Counter({
      name: "zmgmt_node_crashes_total",
      help: "Runs of a node that ended without the supervisor ending them, since the agent started.",
      labelNames: ["cluster_node", "cluster_role"],
      registers: [this.registry],
    });
    this.controllerConnected = new Gauge({
      name: "zmgmt_controller_connected",
      help: "1 while a controller is connected to this agent, else 0.",
      registers: [this.registry],
    });
  }

  connectionAccepted(): void {
    this.connections.accepted();
  }

  setControllerConnected(up: boolean): void {
    this.controllerConnected.set(up ? 1 : 0);
  }

  /** Replaces the node series with a fresh reading (nodes gone since drop out). */
  update(stats: NodeStats[]): void {
    this.nodes.reset();
    for (const role of NODE_ROLES) for (const state of STATES) this.nodes.set({ state, cluster_role: role }, 0);
    for (const s of stats) this.nodes.inc({ state: s.state, cluster_role: s.role });
    // The supervisor and the crash tally own the totals; the counters mirror them.
    this.restarts.reset();
    this.crashes.reset();
    for (const s of stats) {
      const labels = { cluster_node: s.node, cluster_role: s.role };
      this.restarts.inc(labels, s.restarts);
      this.crashes.inc(labels, s.crashes);
    }
  }
}
