// Management::Node::API: agent <-> cluster node events on the node topic. Every node
// subscribes to the topic and filters dispatches by its own name.

import * as S from "../broker/schema.js";
import { ResultCodec } from "../management/records.js";

export const NODE_TOPIC = "zeek/management/node";

/**
 * Zeek nodes are dialed by their agent (Zeek serves WebSockets but cannot dial one) and use
 * topics private to each node, so requests and answers never spread through the cluster's
 * own pub/sub. The names must stay in step with zeek/zmgmt/node.zeek.
 */
export function nodeRequestTopic(node: string): string {
  return `${NODE_TOPIC}/${node}/request`;
}

export function nodeResponseTopic(node: string): string {
  return `${NODE_TOPIC}/${node}/response`;
}

const P = "Management::Node::API::";

export const NodeApi = {
  node_dispatch_request: S.defineEvent(`${P}node_dispatch_request`, S.string, S.vector(S.string), S.optional(S.set(S.string))),
  node_dispatch_response: S.defineEvent(`${P}node_dispatch_response`, S.string, ResultCodec),
  /**
   * Upstream carries only the name. Our nodes add their pid, so the agent can tell a
   * check-in of the current process from a late one of a process it already replaced.
   */
  notify_node_hello: S.defineEvent(`${P}notify_node_hello`, S.string, S.optional(S.int)),
} as const;

/**
 * Environment a supervised node is started with. Any executable can be a node command;
 * these variables are how it learns who it is and where its agent listens.
 */
export const NodeEnv = {
  /** The node's name (upstream sets CLUSTER_NODE the same way). */
  name: "CLUSTER_NODE",
  role: "ZMGMT_NODE_ROLE",
  /** The node's cluster (Broker) port, if it has one. */
  port: "ZMGMT_NODE_PORT",
  metricsPort: "ZMGMT_NODE_METRICS_PORT",
  interface: "ZMGMT_NODE_INTERFACE",
  /** Newline-separated script list (paths may contain spaces). */
  scripts: "ZMGMT_NODE_SCRIPTS",
  /** JSON: this node's Management::Node record (env, options, scripts, ...). */
  config: "ZMGMT_NODE_CONFIG",
  /** JSON: the whole cluster layout, name -> { role, host, port?, interface?, metricsPort? }. */
  cluster: "ZMGMT_CLUSTER",
  /** WebSocket URL of the agent's endpoint. */
  agentUrl: "ZMGMT_AGENT_URL",
  agentName: "ZMGMT_AGENT_NAME",
  /** Shared secret the agent's endpoint requires from local peers. */
  agentToken: "ZMGMT_AGENT_TOKEN",
  /** Also set upstream-style, for programs that only know these. */
  agentAddr: "ZEEK_AGENT_ADDR",
  agentPort: "ZEEK_AGENT_PORT",
  /** Zeek nodes: the loopback port their management endpoint listens on, for the agent to dial. */
  managementPort: "ZMGMT_NODE_MANAGEMENT_PORT",
} as const;

/** One entry of the cluster layout every node receives (upstream's ClusterEndpoint). */
export interface ClusterEndpoint {
  role: string;
  host: string;
  port?: number;
  interface?: string;
  metricsPort?: number;
}

export type ClusterLayout = Record<string, ClusterEndpoint>;
