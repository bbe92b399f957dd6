// The controller daemon's options, declared once as a schema. `zmgmt controller` builds them
// from flags, `zmgmt up` from its own; a supervisor hands them to the controller process it
// starts as JSON in the environment, where they are validated before use, since a
// mismatch between the writing and the reading build would otherwise surface much later.

import { Type, type Static } from "@sinclair/typebox";
import { join } from "node:path";
import {
  LogFormatSchema,
  LogLevelSchema,
  PeerTlsSchema,
  PortSchema as Port,
  TlsServerSchema,
  jsonOptionsReader,
} from "../management/options-schema.js";

/** What the controller's logic takes; every field has a default. */
export const ControllerSettingsSchema = Type.Object({
  /** Default 10 s. */
  requestTimeoutMs: Type.Optional(Type.Number({ minimum: 0 })),
  /** Default true. */
  autoAssignBrokerPorts: Type.Optional(Type.Boolean()),
  /** Default true. */
  autoAssignMetricsPorts: Type.Optional(Type.Boolean()),
  /** Default 2200. */
  brokerStartPort: Type.Optional(Port),
  /** Default 9000. */
  metricsStartPort: Type.Optional(Port),
  /** Roll back a deployment whose nodes do not come up, unless the client opts out. Default true. */
  deployRollback: Type.Optional(Type.Boolean()),
  /** How long a deployment's nodes must stay up after the agents answered. Default 1 s. */
  deployCheckDelayMs: Type.Optional(Type.Number({ minimum: 0 })),
  /** Upstream's Broker port, kept off-limits to nodes for compatibility. Default 2150. */
  controllerPort: Type.Optional(Port),
});

export type ControllerSettings = Static<typeof ControllerSettingsSchema>;

/** The controller daemon: its settings plus where it listens, logs and keeps state. */
export const ControllerDaemonOptionsSchema = Type.Composite(
  [
    ControllerSettingsSchema,
    Type.Object({
      name: Type.String({ minLength: 1 }),
      /** The controller's own directory is `<stateDir>/nodes/<name>`. */
      stateDir: Type.String({ minLength: 1 }),
      listenHost: Type.String({ minLength: 1 }),
      /** 0 picks a free port. */
      listenPort: Port,
      logLevel: Type.Optional(LogLevelSchema),
      /** Mirror management.log lines to stderr. */
      logToStderr: Type.Optional(Type.Boolean()),
      /** Format of that stderr copy; the file stays JSON lines. */
      logFormat: Type.Optional(LogFormatSchema),
      tls: Type.Optional(TlsServerSchema),
      /** Accept a plaintext listener on a non-loopback address (see checkListenSecurity). */
      allowInsecureListen: Type.Optional(Type.Boolean()),
      /**
       * The master secret agents' secrets derive from (see management/agent-auth.ts);
       * default `<controller dir>/agent-master-secret`, created on first start.
       */
      agentMasterSecretFile: Type.Optional(Type.String({ minLength: 1 })),
      /** Clients connected at once; authenticated agents are not counted. Default 512. */
      maxConnections: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Messages per second a client may send (bursts of twice that); agents are exempt. Default 200. */
      clientRateLimit: Type.Optional(Type.Integer({ minimum: 1 })),
      /** Dial agents that listen (c2a) over wss:// with these options; plain ws:// without. */
      agentTls: Type.Optional(PeerTlsSchema),
      /** Serve the web dashboard at `GET /` on the listen port. Default true. */
      dashboard: Type.Optional(Type.Boolean()),
      /** Lines of `read-write TOKEN` / `read-only TOKEN` (see ./access.ts). */
      accessTokensFile: Type.Optional(Type.String({ minLength: 1 })),
    }),
  ],
  { additionalProperties: false },
);

export type ControllerDaemonOptions = Static<typeof ControllerDaemonOptionsSchema>;

export class ControllerOptionsError extends Error {
  readonly code = "invalid_controller_options";
  constructor(message: string) {
    super(message);
    this.name = "ControllerOptionsError";
  }
}

/** Parses and validates daemon options passed as JSON (e.g. through the environment). */
export const parseControllerDaemonOptions = jsonOptionsReader(
  ControllerDaemonOptionsSchema,
  "controller options",
  (message) => new ControllerOptionsError(message),
);

/** The controller's own directory: stored configurations and its management log. */
export function controllerDirectory(options: Pick<ControllerDaemonOptions, "stateDir" | "name">): string {
  return join(options.stateDir, "nodes", options.name);
}
