import type { BrokerData } from "../broker/data.js";

// Management framework records as plain TypeScript values. The Broker wire layout of each
// record (field order, `none` for unset optionals) lives in ./records.ts; everything else in
// the code base works with these shapes.

export const CLUSTER_ROLES = ["NONE", "LOGGER", "MANAGER", "PROXY", "WORKER"] as const;
export type ClusterRole = (typeof CLUSTER_ROLES)[number];

export const STATES = ["PENDING", "RUNNING", "STOPPED", "FAILED", "CRASHED", "UNKNOWN"] as const;
export type State = (typeof STATES)[number];

export const MGMT_ROLES = ["NONE", "AGENT", "CONTROLLER", "NODE"] as const;
export type MgmtRole = (typeof MGMT_ROLES)[number];

/** Management::Option: declared upstream, carried through unchanged, never acted on. */
export interface Option {
  name: string;
  value: string;
}

/** Management::Instance. A listenPort means the controller dials the agent (c2a). */
export interface Instance {
  name: string;
  /** IP address; "0.0.0.0" means "not known (yet)". */
  host: string;
  listenPort?: number;
}

/** Management::Node (11 fields on the wire). Ports are TCP port numbers. */
export interface Node {
  name: string;
  instance: string;
  role: ClusterRole;
  state: State;
  port?: number;
  scripts?: string[];
  options?: Option[];
  interface?: string;
  cpuAffinity?: number;
  env: Record<string, string>;
  metricsPort?: number;
}

/** Management::Configuration. The id is chosen by the client; agents compare ids only. */
export interface Configuration {
  id: string;
  instances: Instance[];
  nodes: Node[];
}

/** Management::NodeStatus. */
export interface NodeStatus {
  node: string;
  state: State;
  mgmtRole: MgmtRole;
  clusterRole: ClusterRole;
  pid?: number;
  port?: number;
  metricsPort?: number;
}

/** Management::NodeOutputs: the last lines of a node's previous run. */
export interface NodeOutputs {
  stdout: string;
  stderr: string;
}

/**
 * Management::Result. `data` is Zeek's `any`: a config id string, a Configuration,
 * an InstanceVec, a NodeStatusVec, NodeOutputs or a JSON text, kept in Broker form
 * until the receiver knows which one to expect.
 */
export interface Result {
  reqid: string;
  success: boolean;
  instance?: string;
  data?: BrokerData;
  error?: string;
  node?: string;
}
