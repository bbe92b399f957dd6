// Management::Agent::API: controller <-> agent events, published on the agent's own
// topic `zeek/management/agent/<name>` in both directions.

import * as S from "../broker/schema.js";
import { ConfigurationCodec, NodeCodec, ResultCodec, ResultVecCodec, StateCodec } from "../management/records.js";
import { NodeLogsQueryCodec, NodeNamesCodec } from "../management/zmgmt-records.js";

export const AGENT_API_VERSION = 1;
export const AGENT_TOPIC_PREFIX = "zeek/management/agent";
export const DEFAULT_AGENT_PORT = 2151;
export const DEFAULT_AGENT_REQUEST_TIMEOUT_MS = 5_000;

/**
 * Set in a node's `env` (in the cluster configuration): the program to run for that node
 * instead of Zeek or the built-in node, as shell words.
 */
export const NODE_COMMAND_ENV = "ZMGMT_NODE_COMMAND";

export type { AgentDaemonOptions } from "./options.js";

export function agentTopic(instance: string): string {
  return `${AGENT_TOPIC_PREFIX}/${instance}`;
}

const P = "Management::Agent::API::";

export const AgentApi = {
  deploy_request: S.defineEvent(`${P}deploy_request`, S.string, ConfigurationCodec, S.optional(S.bool)),
  deploy_response: S.defineEvent(`${P}deploy_response`, S.string, ResultVecCodec),
  get_nodes_request: S.defineEvent(`${P}get_nodes_request`, S.string),
  get_nodes_response: S.defineEvent(`${P}get_nodes_response`, S.string, ResultCodec),
  node_dispatch_request: S.defineEvent(`${P}node_dispatch_request`, S.string, S.vector(S.string), S.optional(S.set(S.string))),
  node_dispatch_response: S.defineEvent(`${P}node_dispatch_response`, S.string, ResultVecCodec),
  restart_request: S.defineEvent(`${P}restart_request`, S.string, S.optional(S.set(S.string))),
  restart_response: S.defineEvent(`${P}restart_response`, S.string, ResultVecCodec),
  agent_welcome_request: S.defineEvent(`${P}agent_welcome_request`, S.string),
  agent_welcome_response: S.defineEvent(`${P}agent_welcome_response`, S.string, ResultCodec),
  agent_standby_request: S.defineEvent(`${P}agent_standby_request`, S.string),
  agent_standby_response: S.defineEvent(`${P}agent_standby_response`, S.string, ResultCodec),
  notify_agent_hello: S.defineEvent(`${P}notify_agent_hello`, S.string, S.string, S.bool, S.count),
  notify_change: S.defineEvent(`${P}notify_change`, S.string, NodeCodec, StateCodec, StateCodec),
  notify_error: S.defineEvent(`${P}notify_error`, S.string, S.string, S.optional(S.string)),
  notify_log: S.defineEvent(`${P}notify_log`, S.string, S.string, S.optional(S.string)),
} as const;

const Z = "Zmgmt::Agent::API::";

/** The agent's side of zmgmt's own requests (see ZmgmtControllerApi); same payloads. */
export const ZmgmtAgentApi = {
  node_logs_request: S.defineEvent(`${Z}node_logs_request`, S.string, NodeLogsQueryCodec),
  node_logs_response: S.defineEvent(`${Z}node_logs_response`, S.string, ResultCodec),
  /** One Result for the instance, data: vector of NodeProcessStatus (only the named nodes it runs). */
  get_node_status_request: S.defineEvent(`${Z}get_node_status_request`, S.string, NodeNamesCodec),
  get_node_status_response: S.defineEvent(`${Z}get_node_status_response`, S.string, ResultCodec),
  stop_nodes_request: S.defineEvent(`${Z}stop_nodes_request`, S.string, NodeNamesCodec),
  stop_nodes_response: S.defineEvent(`${Z}stop_nodes_response`, S.string, ResultVecCodec),
  start_nodes_request: S.defineEvent(`${Z}start_nodes_request`, S.string, NodeNamesCodec),
  start_nodes_response: S.defineEvent(`${Z}start_nodes_response`, S.string, ResultVecCodec),
  /** The bool asks for capture statistics too (workers' own telemetry, scraped on demand). */
  node_stats_request: S.defineEvent(`${Z}node_stats_request`, S.string, S.bool),
  /** Result.data is a string: the JSON of an AgentNodeStats. */
  node_stats_response: S.defineEvent(`${Z}node_stats_response`, S.string, ResultCodec),
} as const;

/** Packet counters a capturing node reports, or why there are none. */
export interface CaptureStats {
  /** zeek_net_received_packets_total */
  received?: number;
  /** zeek_net_dropped_packets_total */
  dropped?: number;
  /** zeek_net_link_packets_total */
  link?: number;
  /** Set when the node cannot report: the reason, for people. */
  unavailable?: string;
}

export interface NodeStats {
  node: string;
  instance: string;
  role: string;
  state: string;
  pid?: number;
  /** Processes started for the node after its first (crash revivals and restarts). */
  restarts: number;
  /** Runs that ended without the supervisor ending them, since the agent started. */
  crashes: number;
  /** Where the node serves its own Prometheus metrics. */
  metricsHost?: string;
  metricsPort?: number;
  capture?: CaptureStats;
}

export interface AgentNodeStats {
  instance: string;
  /** The agent's own listener (its /metrics), host as the agent was told to listen. */
  listenHost?: string;
  listenPort?: number;
  nodes: NodeStats[];
}
