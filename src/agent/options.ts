// The agent's options: what the daemon takes (AgentDaemonOptions, declared once as a schema,
// since `zmgmt agent` and `zmgmt up` hand them to the agent process as JSON in the
// environment, where they are validated before use) and what the agent's logic takes
// (AgentOptions), which the daemon derives from them.

import { Type, type Static } from "@sinclair/typebox";
import {
  LogFormatSchema,
  LogLevelSchema,
  PeerTlsSchema,
  PortSchema,
  TlsServerSchema,
  jsonOptionsReader,
  type Holds,
  type Same,
} from "../management/options-schema.js";
import type { ZeekInstall } from "./zeek.js";

const ZeekInstallSchema = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    version: Type.String(),
  },
  { additionalProperties: false },
);

export const AgentDaemonOptionsSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    /** Node directories and the agent's own (`<stateDir>/nodes/<name>`). */
    stateDir: Type.String({ minLength: 1 }),
    listenHost: Type.String({ minLength: 1 }),
    listenPort: PortSchema,
    /** ws(s)://host:port of the controller to dial (a2c); absent means wait for it (c2a). */
    controllerUrl: Type.Optional(Type.String({ minLength: 1 })),
    requestTimeoutMs: Type.Number({ minimum: 0 }),
    /** argv of the default node program (default: the built-in zmgmt node). */
    nodeCommand: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    logLevel: Type.Optional(LogLevelSchema),
    logToStderr: Type.Optional(Type.Boolean()),
    /** Format of the stderr copy of the management log (default pretty). */
    logFormat: Type.Optional(LogFormatSchema),
    /** TLS for the listener controllers dial (c2a); nodes then use a loopback listener of their own. */
    tls: Type.Optional(TlsServerSchema),
    /**
     * Port of that loopback node listener (TLS only). Nodes outlive agent restarts and keep
     * the URL they were started with, so the supervisor picks it once; 0 (default) is any port.
     */
    nodeListenPort: Type.Optional(PortSchema),
    /** Accept a plaintext listener on a non-loopback address (see checkListenSecurity). */
    allowInsecureListen: Type.Optional(Type.Boolean()),
    controllerTls: Type.Optional(PeerTlsSchema),
    /** This instance's secret, proving its name to the controller it dials (see agent-auth.ts). */
    agentSecretFile: Type.Optional(Type.String({ minLength: 1 })),
    /** Messages per second an unauthenticated peer may send (bursts of twice that). Default 200. */
    clientRateLimit: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Nodes run this Zeek; without it they run `nodeCommand` (the built-in node by default). */
    zeek: Type.Optional(ZeekInstallSchema),
    /** Archive for Zeek loggers' rotated logs (default `<stateDir>/logs`). */
    logArchiveDir: Type.Optional(Type.String({ minLength: 1 })),
    /** How often rotated logs are archived (default 60 s). */
    logArchiveIntervalMs: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export type AgentDaemonOptions = Static<typeof AgentDaemonOptionsSchema>;

// Fails to compile when the Zeek probe's result and the schema drift apart.
export type ZeekSchemaMatches = Holds<Same<Static<typeof ZeekInstallSchema>, ZeekInstall>>;

export class AgentOptionsError extends Error {
  readonly code = "invalid_agent_options";
  constructor(message: string) {
    super(message);
    this.name = "AgentOptionsError";
  }
}

/** Parses and validates agent daemon options passed as JSON (e.g. through the environment). */
export const parseAgentDaemonOptions = jsonOptionsReader(
  AgentDaemonOptionsSchema,
  "agent options",
  (message) => new AgentOptionsError(message),
);

export interface AgentOptions {
  name: string;
  /** Where per-node directories and the agent's own state live. */
  stateDir: string;
  /** The agent's own directory (state file, log). */
  directory: string;
  requestTimeoutMs: number;
  /** argv of the default node program; a node's env ZMGMT_NODE_COMMAND overrides it. */
  nodeCommand: string[];
  /** URL nodes use to reach this agent's hub. */
  nodeUrl: string;
  /** Secret nodes present to this agent's hub. */
  nodeToken: string;
  /** This agent's listen port, reported in get_nodes when the controller dials in (c2a). */
  listenPort?: number;
  /** The host the agent listens on (its /metrics); reported to the controller for service discovery. */
  listenHost?: string;
  /** True when this agent dials the controller (a2c). */
  connectsToController: boolean;
  /**
   * Waiting for its controller (c2a), take requests only from connections the listener
   * admitted as the controller (see verifyController in agent-auth.ts).
   */
  requireControllerProof?: boolean;
  /** Extra environment for every node (e.g. the supervisor pid for orphan checks). */
  nodeBaseEnv?: Record<string, string>;
  /** Run nodes as this Zeek instead of `nodeCommand` (a node's ZMGMT_NODE_COMMAND still wins). */
  zeek?: ZeekInstall;
  /** Where Zeek loggers' rotated logs are archived, and how often the agent looks for them. */
  logArchive?: { directory: string; intervalMs: number };
}
