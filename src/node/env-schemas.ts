// Schemas of the JSON a node receives in its environment (NodeEnv.config, NodeEnv.cluster).
// The agent writes them; a node validates them before use, so a mismatch shows up as a
// clear start-up error naming the variable rather than as a wrong value later. Unknown
// fields are allowed, so an agent that sends more than this node knows still works.

import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { CLUSTER_ROLES, STATES, type Node } from "../management/types.js";
import { PortSchema as Port, type Holds, type Same } from "../management/options-schema.js";
import type { ClusterEndpoint } from "./api.js";

/** NodeEnv.config: the node's Management::Node record, every field optional. */
export const NodeConfigSchema = Type.Partial(
  Type.Object({
    name: Type.String(),
    instance: Type.String(),
    role: Type.Union(CLUSTER_ROLES.map((r) => Type.Literal(r))),
    state: Type.Union(STATES.map((s) => Type.Literal(s))),
    port: Port,
    scripts: Type.Array(Type.String()),
    options: Type.Array(Type.Object({ name: Type.String(), value: Type.String() })),
    interface: Type.String(),
    cpuAffinity: Type.Integer(),
    env: Type.Record(Type.String(), Type.String()),
    metricsPort: Port,
  }),
);

const ClusterEndpointSchema = Type.Object({
  role: Type.String(),
  host: Type.String(),
  port: Type.Optional(Port),
  interface: Type.Optional(Type.String()),
  metricsPort: Type.Optional(Port),
});

/** NodeEnv.cluster: the whole cluster layout by node name. */
export const ClusterLayoutSchema = Type.Record(Type.String(), ClusterEndpointSchema);

// Fails to compile when the records and these schemas drift apart.
export type SchemasMatch = [
  Holds<Same<Static<typeof NodeConfigSchema>["role"], Node["role"] | undefined>>,
  Holds<Same<Static<typeof NodeConfigSchema>["state"], Node["state"] | undefined>>,
  Holds<Same<Static<typeof ClusterEndpointSchema>, ClusterEndpoint>>,
];

export const checkNodeConfig = TypeCompiler.Compile(NodeConfigSchema);
export const checkClusterLayout = TypeCompiler.Compile(ClusterLayoutSchema);

export class NodeEnvError extends Error {
  readonly code = "invalid_node_env";
  constructor(message: string) {
    super(message);
    this.name = "NodeEnvError";
  }
}

/** Parses a JSON environment variable and validates it; an unset variable yields `fallback`. */
export function parseJsonEnv<T extends TSchema>(env: NodeJS.ProcessEnv, key: string, check: TypeCheck<T>, fallback: Static<T>): Static<T> {
  const text = env[key];
  if (!text) return fallback;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new NodeEnvError(`${key} holds invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (check.Check(value)) return value;
  const first = check.Errors(value).First();
  throw new NodeEnvError(`${key} holds an invalid value${first ? ` at ${first.path || "/"}: ${first.message}` : ""}`);
}
