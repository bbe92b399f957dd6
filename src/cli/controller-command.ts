// Starts the controller for `zmgmt controller` (and for a supervisor's co-located one).

import { join } from "node:path";
import type { PeerTlsOptions } from "../broker/peer.js";
import type { TlsServerOptions } from "../broker/server.js";
import type { LogFormat, LogLevel } from "../management/log.js";
import { startController } from "../controller/main.js";

export interface ControllerCliOptions {
  name: string;
  stateDir: string;
  listenHost: string;
  listenPort: number;
  requestTimeoutMs: number;
  logLevel?: LogLevel;
  logToStderr?: boolean;
  /** Format of the stderr copy of the management log; applied process-wide by the command. */
  logFormat?: LogFormat;
  brokerStartPort?: number;
  metricsStartPort?: number;
  autoAssignBrokerPorts?: boolean;
  autoAssignMetricsPorts?: boolean;
  tls?: TlsServerOptions;
  allowInsecureListen?: boolean;
  agentTls?: PeerTlsOptions;
}

export async function startControllerFromCli(options: ControllerCliOptions): Promise<{ port: number; close(): Promise<void> }> {
  return startController({
    name: options.name,
    listenHost: options.listenHost,
    listenPort: options.listenPort,
    directory: join(options.stateDir, "nodes", options.name),
    requestTimeoutMs: options.requestTimeoutMs,
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    ...(options.logToStderr ? { logToStderr: options.logToStderr } : {}),
    ...(options.brokerStartPort !== undefined ? { brokerStartPort: options.brokerStartPort } : {}),
    ...(options.metricsStartPort !== undefined ? { metricsStartPort: options.metricsStartPort } : {}),
    ...(options.autoAssignBrokerPorts !== undefined ? { autoAssignBrokerPorts: options.autoAssignBrokerPorts } : {}),
    ...(options.autoAssignMetricsPorts !== undefined ? { autoAssignMetricsPorts: options.autoAssignMetricsPorts } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.allowInsecureListen ? { allowInsecureListen: true } : {}),
    ...(options.agentTls ? { agentTls: options.agentTls } : {}),
  });
}
