// The controller daemon's options, declared once as a schema. `zmgmt controller` builds them
// from flags, `zmgmt up` from its own; a supervisor hands them to the controller process it
// starts as JSON in the environment, where they are validated before use, since a
// mismatch between the writing and the reading build would otherwise surface much later.

import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { join } from "node:path";
import type { PeerTlsOptions } from "../broker/peer.js";
import type { TlsServerOptions } from "../broker/server.js";
import type { LogLevel } from "../management/log.js";

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

const LogLevelSchema = Type.Union([Type.Literal("DEBUG"), Type.Literal("INFO"), Type.Literal("WARNING"), Type.Literal("ERROR")]);

const TlsServerSchema = Type.Object(
  {
    certFile: Type.String(),
    keyFile: Type.String(),
    caFile: Type.Optional(Type.String()),
    passphrase: Type.Optional(Type.String()),
    verifyClients: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const PeerTlsSchema = Type.Object(
  {
    caFile: Type.Optional(Type.String()),
    caPath: Type.Optional(Type.String()),
    certFile: Type.Optional(Type.String()),
    keyFile: Type.Optional(Type.String()),
    passphrase: Type.Optional(Type.String()),
    ciphers: Type.Optional(Type.String()),
    rejectUnauthorized: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

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
      logFormat: Type.Optional(Type.Union([Type.Literal("pretty"), Type.Literal("json")])),
      tls: Type.Optional(TlsServerSchema),
      /** Accept a plaintext listener on a non-loopback address (see checkListenSecurity). */
      allowInsecureListen: Type.Optional(Type.Boolean()),
      /** Dial agents that listen (c2a) over wss:// with these options; plain ws:// without. */
      agentTls: Type.Optional(PeerTlsSchema),
    }),
  ],
  { additionalProperties: false },
);

export type ControllerDaemonOptions = Static<typeof ControllerDaemonOptionsSchema>;

// The schemas restate types the broker and the logger own; these fail to compile when
// one side changes without the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
export type SchemasMatch = [
  Holds<Same<Static<typeof TlsServerSchema>, TlsServerOptions>>,
  Holds<Same<Static<typeof PeerTlsSchema>, PeerTlsOptions>>,
  Holds<Same<Static<typeof LogLevelSchema>, LogLevel>>,
];

export class ControllerOptionsError extends Error {
  readonly code = "invalid_controller_options";
  constructor(message: string) {
    super(message);
    this.name = "ControllerOptionsError";
  }
}

const checkDaemonOptions = TypeCompiler.Compile(ControllerDaemonOptionsSchema);

/** Parses and validates daemon options passed as JSON (e.g. through the environment). */
export function parseControllerDaemonOptions(text: string | undefined, source: string): ControllerDaemonOptions {
  if (text === undefined || text === "") throw new ControllerOptionsError(`${source} is not set`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ControllerOptionsError(`${source} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (checkDaemonOptions.Check(value)) return value;
  throw new ControllerOptionsError(`${source} holds invalid controller options: ${describeErrors(checkDaemonOptions.Errors(value))}`);
}

function describeErrors(errors: Iterable<{ path: string; message: string; schema: TSchema }>): string {
  const lines: string[] = [];
  for (const e of errors) {
    lines.push(`${e.path || "/"}: ${e.message}`);
    if (lines.length === 5) break;
  }
  return lines.join("; ");
}

/** The controller's own directory: stored configurations and its management log. */
export function controllerDirectory(options: Pick<ControllerDaemonOptions, "stateDir" | "name">): string {
  return join(options.stateDir, "nodes", options.name);
}
