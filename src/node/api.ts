// Management::Node::API: agent <-> cluster node events on the node topic. Every node
// subscribes to the topic and filters dispatches by its own name.

import * as S from "../broker/schema.js";
import { ResultCodec } from "../management/records.js";

export const NODE_TOPIC = "zeek/management/node";

const P = "Management::Node::API::";

export const NodeApi = {
  node_dispatch_request: S.defineEvent(`${P}node_dispatch_request`, S.string, S.vector(S.string), S.optional(S.set(S.string))),
  node_dispatch_response: S.defineEvent(`${P}node_dispatch_response`, S.string, ResultCodec),
  notify_node_hello: S.defineEvent(`${P}notify_node_hello`, S.string),
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
  /** Space-separated script list. */
  scripts: "ZMGMT_NODE_SCRIPTS",
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
} as const;
