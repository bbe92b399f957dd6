// The supervisor's control API, spoken by the agent to the supervisor that is its parent
// process. Names follow upstream's SupervisorControl events; the records are our own,
// since our supervisor runs arbitrary commands rather than Zeek scripts.

import { ProtocolError } from "../broker/errors.js";
import * as S from "../broker/schema.js";
import type { Codec } from "../broker/schema.js";
import { NodeOutputsCodec } from "../management/records.js";
import type { NodeOutputs } from "../management/types.js";
import { real } from "../management/zmgmt-records.js";

export const SUPERVISOR_TOPIC = "zeek/supervisor";
export const SUPERVISOR_RESPONSE_TOPIC = "zeek/supervisor/response";
export const SUPERVISOR_NOTIFY_TOPIC = "zeek/management/supervisor";

/** HTTP header carrying the shared secret that only the supervisor's own agent holds. */
export const SUPERVISOR_TOKEN_HEADER = "x-zmgmt-token";

/** Environment of the agent process the supervisor starts. */
export const SupervisorEnv = {
  url: "ZMGMT_SUPERVISOR_URL",
  token: "ZMGMT_SUPERVISOR_TOKEN",
  /** Marks management processes (AGENT / CONTROLLER); the agent never destroys them. */
  managementNode: "ZEEK_MANAGEMENT_NODE",
  supervisorPid: "ZMGMT_SUPERVISOR_PID",
  /** JSON options of the agent process. */
  agentOptions: "ZMGMT_AGENT_OPTIONS",
  /** JSON options of a co-located controller process. */
  controllerOptions: "ZMGMT_CONTROLLER_OPTIONS",
  /** The secret the agent's own nodes present to it; stable across agent restarts. */
  nodeToken: "ZMGMT_NODE_TOKEN",
} as const;

/** What the supervisor needs to run one process. */
export interface SupervisedNodeConfig {
  name: string;
  /** argv; argv[0] is looked up on PATH. */
  command: string[];
  directory: string;
  env: Record<string, string>;
  cpuAffinity?: number;
  /** "AGENT" / "CONTROLLER" for management processes, "" for cluster nodes. */
  managementRole: string;
  /** Opaque to the supervisor: the agent stores its view of the node here (JSON). */
  meta: string;
}

export const SupervisedNodeConfigCodec: Codec<SupervisedNodeConfig> = S.record<SupervisedNodeConfig>("Zmgmt::Supervisor::NodeConfig", {
  name: S.string,
  command: S.vector(S.string),
  directory: S.string,
  env: S.table(S.string),
  cpuAffinity: S.optional(S.int),
  managementRole: S.string,
  meta: S.string,
});

/** "stopped": an operator stopped the node; it stays down until started, restarted or destroyed. */
export const PROCESS_STATES = ["starting", "running", "backoff", "stopping", "failed", "stopped"] as const;
export type ProcessState = (typeof PROCESS_STATES)[number];

export interface SupervisedNodeStatus {
  config: SupervisedNodeConfig;
  state: ProcessState;
  pid?: number;
  restarts: number;
  /** Milliseconds since the epoch of the current process's spawn. */
  startedAt?: number;
  lastExitCode?: number;
  lastExitSignal?: string;
  /** Milliseconds since the epoch of the last exit. */
  lastExitAt?: number;
}

export const SupervisedNodeStatusCodec: Codec<SupervisedNodeStatus> = S.record<SupervisedNodeStatus>("Zmgmt::Supervisor::NodeStatus", {
  config: SupervisedNodeConfigCodec,
  state: {
    label: "process state",
    encode: (v: ProcessState) => S.string.encode(v),
    decode: (d, p) => {
      const v = S.string.decode(d, p);
      if (!(PROCESS_STATES as readonly string[]).includes(v)) throw new ProtocolError("invalid_event", `${p}: unknown process state ${v}`);
      return v as ProcessState;
    },
  },
  pid: S.optional(S.int),
  restarts: S.count,
  startedAt: S.optional(S.int),
  lastExitCode: S.optional(S.int),
  lastExitSignal: S.optional(S.string),
  lastExitAt: S.optional(S.int),
});

/** CPU and memory of one node's process, read from /proc. */
export interface ProcessUsage {
  name: string;
  pid: number;
  /** Over the time since the previous sample of this pid (at least a short interval). */
  cpuPercent: number;
  rssBytes: number;
}

export const ProcessUsageCodec: Codec<ProcessUsage> = S.record<ProcessUsage>("Zmgmt::Supervisor::ProcessUsage", {
  name: S.string,
  pid: S.int,
  cpuPercent: real,
  rssBytes: S.count,
});

export interface NodeExit {
  name: string;
  pid: number;
  exitCode?: number;
  signal?: string;
  /** Tails of the run that just ended. */
  outputs: NodeOutputs;
  /** Delay before the next attempt, or none when the supervisor gave up. */
  restartInMs?: number;
}

export const NodeExitCodec: Codec<NodeExit> = S.record<NodeExit>("Zmgmt::Supervisor::NodeExit", {
  name: S.string,
  pid: S.int,
  exitCode: S.optional(S.int),
  signal: S.optional(S.string),
  outputs: NodeOutputsCodec,
  restartInMs: S.optional(S.int),
});

const P = "SupervisorControl::";
const N = "Management::Supervisor::API::";
const Z = "Zmgmt::Supervisor::API::";

export const SupervisorApi = {
  create_request: S.defineEvent(`${P}create_request`, S.string, SupervisedNodeConfigCodec),
  /** "" on success, else upstream's error text. */
  create_response: S.defineEvent(`${P}create_response`, S.string, S.string),
  /** Answered once the process is gone (or immediately for unknown names, with F). */
  destroy_request: S.defineEvent(`${P}destroy_request`, S.string, S.string),
  destroy_response: S.defineEvent(`${P}destroy_response`, S.string, S.bool),
  restart_request: S.defineEvent(`${P}restart_request`, S.string, S.string),
  restart_response: S.defineEvent(`${P}restart_response`, S.string, S.bool),
  /** "" asks for every node. */
  status_request: S.defineEvent(`${P}status_request`, S.string, S.string),
  status_response: S.defineEvent(`${P}status_response`, S.string, S.vector(SupervisedNodeStatusCodec)),
  /** Every spawn: first start, restart and revival. */
  node_status: S.defineEvent(`${P}node_status`, S.string, S.int),
  /** An exit the supervisor did not cause, with the tails of that run. */
  notify_node_exit: S.defineEvent(`${N}notify_node_exit`, NodeExitCodec),
  /** The supervisor stopped reviving a node after too many attempts. */
  notify_node_gave_up: S.defineEvent(`${N}notify_node_gave_up`, S.string, S.count),
  /** Stops a node and keeps it down (state "stopped"); answered once the process is gone. F: unknown. */
  stop_request: S.defineEvent(`${Z}stop_request`, S.string, S.string),
  stop_response: S.defineEvent(`${Z}stop_response`, S.string, S.bool),
  /** Starts a stopped node again; a node that is not stopped is left alone. F: unknown. */
  start_request: S.defineEvent(`${Z}start_request`, S.string, S.string),
  start_response: S.defineEvent(`${Z}start_response`, S.string, S.bool),
  /** CPU and RSS of every live node process (""), or of one. */
  usage_request: S.defineEvent(`${Z}usage_request`, S.string, S.string),
  usage_response: S.defineEvent(`${Z}usage_response`, S.string, S.vector(ProcessUsageCodec)),
} as const;
