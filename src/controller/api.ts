// Management::Controller::API: the events the controller and its clients exchange on
// the controller topic. This is the contract zeek-client speaks.

import * as S from "../broker/schema.js";
import { ConfigurationCodec, ResultCodec, ResultVecCodec } from "../management/records.js";
import { NodeLogsQueryCodec, NodeNamesCodec } from "../management/zmgmt-records.js";

export type { ControllerDaemonOptions } from "./options.js";

export const CONTROLLER_API_VERSION = 1;
export const CONTROLLER_TOPIC = "zeek/management/controller";
export const DEFAULT_CONTROLLER_WEBSOCKET_PORT = 2149;
/** Upstream's Broker port for agents; we serve agents on the WebSocket port as well. */
export const DEFAULT_CONTROLLER_PORT = 2150;
export const DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS = 10_000;
/** How long a deployment's nodes must stay RUNNING after the agents answered. */
export const DEFAULT_DEPLOY_CHECK_DELAY_MS = 1000;

const P = "Management::Controller::API::";

export const ControllerApi = {
  get_instances_request: S.defineEvent(`${P}get_instances_request`, S.string),
  get_instances_response: S.defineEvent(`${P}get_instances_response`, S.string, ResultCodec),
  stage_configuration_request: S.defineEvent(`${P}stage_configuration_request`, S.string, ConfigurationCodec),
  stage_configuration_response: S.defineEvent(`${P}stage_configuration_response`, S.string, ResultVecCodec),
  get_configuration_request: S.defineEvent(`${P}get_configuration_request`, S.string, S.bool),
  get_configuration_response: S.defineEvent(`${P}get_configuration_response`, S.string, ResultCodec),
  deploy_request: S.defineEvent(`${P}deploy_request`, S.string),
  deploy_response: S.defineEvent(`${P}deploy_response`, S.string, ResultVecCodec),
  get_nodes_request: S.defineEvent(`${P}get_nodes_request`, S.string),
  get_nodes_response: S.defineEvent(`${P}get_nodes_response`, S.string, ResultVecCodec),
  get_id_value_request: S.defineEvent(`${P}get_id_value_request`, S.string, S.string, S.set(S.string)),
  get_id_value_response: S.defineEvent(`${P}get_id_value_response`, S.string, ResultVecCodec),
  restart_request: S.defineEvent(`${P}restart_request`, S.string, S.set(S.string)),
  restart_response: S.defineEvent(`${P}restart_response`, S.string, ResultVecCodec),
  test_timeout_request: S.defineEvent(`${P}test_timeout_request`, S.string, S.bool),
  test_timeout_response: S.defineEvent(`${P}test_timeout_response`, S.string, ResultCodec),
} as const;

/**
 * deploy_request as the controller reads it: a zmgmt client may add whether to roll back a
 * deployment whose nodes do not come up. zeek-client sends only the reqid and gets the
 * controller's default; without the flag zmgmt sends only the reqid too, as upstream's
 * controller takes no second argument.
 */
export const deployRequestWithRollback = S.defineEvent(`${P}deploy_request`, S.string, S.optional(S.bool));

export type ControllerEventName = (typeof ControllerApi)[keyof typeof ControllerApi]["name"];

const Z = "Zmgmt::Controller::API::";

/**
 * zmgmt's own requests, on the controller topic like the rest; zeek-client never sends
 * them. Every answer is a Result (or one per instance or node) whose `data` carries the
 * records of ../management/zmgmt-records.ts; a name nobody runs gets a failed Result with
 * `node` set, error UNKNOWN_NODE and the deployed node names as `data`.
 */
export const ZmgmtControllerApi = {
  /** A node's output: the last lines, or (with a cursor) what came after it. Data: NodeLogs. */
  node_logs_request: S.defineEvent(`${Z}node_logs_request`, S.string, NodeLogsQueryCodec),
  node_logs_response: S.defineEvent(`${Z}node_logs_response`, S.string, ResultCodec),
  /** Process facts of the named nodes (empty: all). One Result per instance, data: vector of NodeProcessStatus. */
  get_node_status_request: S.defineEvent(`${Z}get_node_status_request`, S.string, NodeNamesCodec),
  get_node_status_response: S.defineEvent(`${Z}get_node_status_response`, S.string, ResultVecCodec),
  /** Stops the named nodes (empty: all) until started or redeployed. One Result per node. */
  stop_nodes_request: S.defineEvent(`${Z}stop_nodes_request`, S.string, NodeNamesCodec),
  stop_nodes_response: S.defineEvent(`${Z}stop_nodes_response`, S.string, ResultVecCodec),
  /** Starts stopped nodes (empty: all); running ones are left alone. One Result per node. */
  start_nodes_request: S.defineEvent(`${Z}start_nodes_request`, S.string, NodeNamesCodec),
  start_nodes_response: S.defineEvent(`${Z}start_nodes_response`, S.string, ResultVecCodec),
  /** Recent deployments, newest first. Data: vector of DeployRecord (./deploy-history.ts). */
  get_deploy_history_request: S.defineEvent(`${Z}get_deploy_history_request`, S.string),
  get_deploy_history_response: S.defineEvent(`${Z}get_deploy_history_response`, S.string, ResultCodec),
  /** Capture statistics of every node; each Result is one instance, data the JSON of its AgentNodeStats. */
  get_netstats_request: S.defineEvent(`${Z}get_netstats_request`, S.string),
  get_netstats_response: S.defineEvent(`${Z}get_netstats_response`, S.string, ResultVecCodec),
} as const;
