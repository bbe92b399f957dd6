// Broker layouts of the Management records: one vector per record, fields in upstream's
// declaration order, `none` for unset optionals (see the wire-protocol notes, section 4).

import * as S from "../broker/schema.js";
import type { Codec } from "../broker/schema.js";
import {
  CLUSTER_ROLES,
  MGMT_ROLES,
  STATES,
  type Configuration,
  type Instance,
  type Node,
  type NodeOutputs,
  type NodeStatus,
  type Option,
  type Result,
} from "./types.js";

export const ClusterRoleCodec = S.enumOf("Supervisor", CLUSTER_ROLES);
export const StateCodec = S.enumOf("Management", STATES);
export const MgmtRoleCodec = S.enumOf("Management", MGMT_ROLES);

export const OptionCodec: Codec<Option> = S.record<Option>("Management::Option", {
  name: S.string,
  value: S.string,
});

export const InstanceCodec: Codec<Instance> = S.record<Instance>("Management::Instance", {
  name: S.string,
  host: S.addr,
  listenPort: S.optional(S.port),
});

export const NodeCodec: Codec<Node> = S.record<Node>("Management::Node", {
  name: S.string,
  instance: S.string,
  role: ClusterRoleCodec,
  state: StateCodec,
  port: S.optional(S.port),
  scripts: S.optional(S.vector(S.string)),
  options: S.optional(S.set(OptionCodec)),
  interface: S.optional(S.string),
  cpuAffinity: S.optional(S.int),
  env: S.table(S.string),
  metricsPort: S.optional(S.port),
});

export const ConfigurationCodec: Codec<Configuration> = S.record<Configuration>("Management::Configuration", {
  id: S.string,
  instances: S.set(InstanceCodec),
  nodes: S.set(NodeCodec),
});

export const NodeStatusCodec: Codec<NodeStatus> = S.record<NodeStatus>("Management::NodeStatus", {
  node: S.string,
  state: StateCodec,
  mgmtRole: MgmtRoleCodec,
  clusterRole: ClusterRoleCodec,
  pid: S.optional(S.int),
  port: S.optional(S.port),
  metricsPort: S.optional(S.port),
});

export const ResultCodec: Codec<Result> = S.record<Result>("Management::Result", {
  reqid: S.string,
  success: S.bool,
  instance: S.optional(S.string),
  data: S.optional(S.any),
  error: S.optional(S.string),
  node: S.optional(S.string),
});

export const ResultVecCodec = S.vector(ResultCodec);
export const NodeStatusVecCodec = S.vector(NodeStatusCodec);
export const InstanceVecCodec = S.vector(InstanceCodec);

export const NodeOutputsCodec: Codec<NodeOutputs> = S.record<NodeOutputs>("Management::NodeOutputs", {
  stdout: S.string,
  stderr: S.string,
});

/** Builds a Result, leaving out what is not given (so it travels as `none`). */
export function makeResult(reqid: string, fields: Partial<Omit<Result, "reqid">> = {}): Result {
  const r: Result = { reqid, success: fields.success ?? true };
  if (fields.instance !== undefined) r.instance = fields.instance;
  if (fields.data !== undefined) r.data = fields.data;
  if (fields.error !== undefined) r.error = fields.error;
  if (fields.node !== undefined) r.node = fields.node;
  return r;
}

/** Upstream's `result_to_string`, used in log lines. */
export function resultToString(r: Result): string {
  let s = r.success ? "success" : r.error ? `error (${r.error})` : "error";
  const ctx: string[] = [];
  if (r.reqid) ctx.push(`reqid ${r.reqid}`);
  if (r.instance) ctx.push(`instance ${r.instance}`);
  if (r.node) ctx.push(`node ${r.node}`);
  if (ctx.length) s += ` (${ctx.join(", ")})`;
  return s;
}
