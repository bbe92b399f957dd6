// Records of zmgmt's own requests (node logs, process status, stop/start), which zeek-client
// neither sends nor understands. Each travels as a Broker record (a vector, fields in the
// order below) and every decoded value is also checked against a TypeBox schema, so limits
// (a line count, a stream name, non-negative numbers) hold wherever the record arrives.

import { Type, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { B } from "../broker/data.js";
import { ProtocolError } from "../broker/errors.js";
import * as S from "../broker/schema.js";
import type { Codec } from "../broker/schema.js";
import { StateCodec } from "./records.js";
import { STATES, type State } from "./types.js";

/** Most lines one logs answer carries, whatever was asked for. */
export const MAX_LOG_LINES = 5_000;
/** Most bytes of log text one answer carries (the hub's frame limit is 4 MiB). */
export const MAX_LOG_BYTES = 512 * 1024;
/** Longest node name or cursor accepted in a request. */
const MAX_NAME = 256;

export const LOG_STREAMS = ["stdout", "stderr"] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

/** What a logs request asks for. */
export interface NodeLogsQuery {
  node: string;
  stream: LogStream;
  /** Last lines wanted (without a cursor), 0 for none; at most MAX_LOG_LINES. */
  lines: number;
  /** From a previous answer: only what was written after it (follow mode). */
  cursor?: string;
}

/** A logs answer: the lines and where to continue from. */
export interface NodeLogs {
  node: string;
  instance: string;
  stream: LogStream;
  lines: string[];
  /** Opaque; pass it back to get only newer lines. */
  cursor: string;
  /** True when more was there than one answer carries (older lines were left out). */
  truncated: boolean;
}

/** One node's process facts, as `zmgmt status` shows them. */
export interface NodeProcessStatus {
  node: string;
  instance: string;
  /** Management state; STOPPED when an operator stopped the node. */
  state: State;
  /** Cluster role (MANAGER, WORKER, …) or management role (AGENT, CONTROLLER). */
  role: string;
  pid?: number;
  /** Epoch milliseconds of the current process's start. */
  startedAt?: number;
  uptimeMs?: number;
  /** Spawns since the node was deployed, beyond the first: revivals and restarts. */
  restarts: number;
  lastExitCode?: number;
  lastExitSignal?: string;
  /** Epoch milliseconds of the last exit. */
  lastExitAt?: number;
  /** CPU use of the process (all threads) over the last sample interval, in percent of one core. */
  cpuPercent?: number;
  rssBytes?: number;
}

/** A float (Zeek's `double`); Broker JSON calls it `real`. */
export const real: Codec<number> = {
  label: "double",
  encode: (v) => B.real(v),
  decode(data, path) {
    if (data.type !== "real" && data.type !== "count" && data.type !== "integer") {
      throw new ProtocolError("invalid_event", `${path}: expected double, got ${data.type}`);
    }
    return data.value;
  },
};

/** A record codec whose decoded values must also satisfy `schema`. */
function checked<T extends object>(codec: Codec<T>, schema: TSchema): Codec<T> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    label: codec.label,
    encode: (v) => codec.encode(v),
    decode(data, path) {
      const value = codec.decode(data, path);
      if (!compiled.Check(value)) {
        const first = compiled.Errors(value).First();
        const where = first ? `${path}${first.path.replace(/\//g, ".")}` : path;
        throw new ProtocolError("invalid_event", `${where}: ${first?.message ?? "invalid value"} in ${codec.label}`);
      }
      return value;
    },
  };
}

const Name = Type.String({ minLength: 1, maxLength: MAX_NAME });
const Stream = Type.Union(LOG_STREAMS.map((s) => Type.Literal(s)));
const Nat = Type.Integer({ minimum: 0 });

export const NodeLogsQuerySchema = Type.Object({
  node: Name,
  stream: Stream,
  lines: Type.Integer({ minimum: 0, maximum: MAX_LOG_LINES }),
  cursor: Type.Optional(Type.String({ maxLength: MAX_NAME })),
});

export const NodeLogsSchema = Type.Object({
  node: Name,
  instance: Type.String(),
  stream: Stream,
  lines: Type.Array(Type.String(), { maxItems: MAX_LOG_LINES }),
  cursor: Type.String({ maxLength: MAX_NAME }),
  truncated: Type.Boolean(),
});

export const NodeProcessStatusSchema = Type.Object({
  node: Name,
  instance: Type.String(),
  state: Type.Union(STATES.map((s) => Type.Literal(s))),
  role: Type.String(),
  pid: Type.Optional(Nat),
  startedAt: Type.Optional(Nat),
  uptimeMs: Type.Optional(Nat),
  restarts: Nat,
  lastExitCode: Type.Optional(Type.Integer()),
  lastExitSignal: Type.Optional(Type.String()),
  lastExitAt: Type.Optional(Nat),
  cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
  rssBytes: Type.Optional(Nat),
});

const streamCodec: Codec<LogStream> = {
  label: "log stream",
  encode: (v) => S.string.encode(v),
  decode: (d, p) => S.string.decode(d, p) as LogStream, // checked by the record's schema
};

export const NodeLogsQueryCodec: Codec<NodeLogsQuery> = checked(
  S.record<NodeLogsQuery>("Zmgmt::NodeLogsQuery", {
    node: S.string,
    stream: streamCodec,
    lines: S.count,
    cursor: S.optional(S.string),
  }),
  NodeLogsQuerySchema,
);

export const NodeLogsCodec: Codec<NodeLogs> = checked(
  S.record<NodeLogs>("Zmgmt::NodeLogs", {
    node: S.string,
    instance: S.string,
    stream: streamCodec,
    lines: S.vector(S.string),
    cursor: S.string,
    truncated: S.bool,
  }),
  NodeLogsSchema,
);

export const NodeProcessStatusCodec: Codec<NodeProcessStatus> = checked(
  S.record<NodeProcessStatus>("Zmgmt::NodeProcessStatus", {
    node: S.string,
    instance: S.string,
    state: StateCodec,
    role: S.string,
    pid: S.optional(S.int),
    startedAt: S.optional(S.int),
    uptimeMs: S.optional(S.int),
    restarts: S.count,
    lastExitCode: S.optional(S.int),
    lastExitSignal: S.optional(S.string),
    lastExitAt: S.optional(S.int),
    cpuPercent: S.optional(real),
    rssBytes: S.optional(S.count),
  }),
  NodeProcessStatusSchema,
);

export const NodeProcessStatusVecCodec = S.vector(NodeProcessStatusCodec);

/** A node set in a request: bounded names. */
export const NodeNamesCodec: Codec<string[]> = {
  label: "set of node names",
  encode: (v) => S.set(S.string).encode(v),
  decode(data, path) {
    const names = S.set(S.string).decode(data, path);
    for (const n of names) {
      if (n.length === 0 || n.length > MAX_NAME)
        throw new ProtocolError("invalid_event", `${path}: invalid node name ${JSON.stringify(n)}`);
    }
    return names;
  },
};

/** The error of a result for a node name nobody runs; its `data` lists the known names. */
export const UNKNOWN_NODE = "unknown cluster node";
