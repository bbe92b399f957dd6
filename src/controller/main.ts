// Wires a Controller to real sockets: a Hub served over WebSocket, where zeek-client
// style clients and agents that dial in (a2c) meet, plus the management.log writer.

import { Hub } from "../broker/hub.js";
import { HubServer, chainHttpHandlers, clientRate, type HttpHandler } from "../broker/server.js";
import { createLogger } from "../management/log.js";
import {
  AGENT_UNAUTHORIZED,
  agentPrincipal,
  loadOrCreateMasterSecret,
  principalInstance,
  readSecretFile,
  verifyAgent,
} from "../management/agent-auth.js";
import { checkListenSecurity } from "../management/security.js";
import { ControllerAccess, readAccessTokens } from "./access.js";
import { metricsRoute } from "../management/metrics.js";
import { DEFAULT_CONTROLLER_WEBSOCKET_PORT } from "./api.js";
import { dashboardHandler } from "./dashboard.js";
import { Controller, defaultControllerName } from "./controller.js";
import { createWebSocketAgentDialer, type AgentDialer } from "./links.js";
import { controllerDirectory, type ControllerDaemonOptions } from "./options.js";
import { controllerReplyRouting } from "./replies.js";
import { servicesRoute } from "./services-route.js";
import type { Timers } from "../management/request.js";

/** Reported in every handshake ack; it names our implementation, not a Zeek version. */
export const CONTROLLER_SOFTWARE_VERSION = "zmgmt 0.1.0";

/**
 * Loopback unless the operator says otherwise: the controller accepts configurations from
 * anyone who can reach it, so exposing it is a deliberate choice (pass a listen host).
 */
export const DEFAULT_CONTROLLER_LISTEN_HOST = "127.0.0.1";

/** The daemon's options, with the directory given directly and test hooks added. */
export interface StartControllerOptions extends Partial<Omit<ControllerDaemonOptions, "stateDir">> {
  /** State directory: stored configurations and management-<name>.log. */
  directory: string;
  /** For tests: how instances with a listen port are dialed. */
  dialAgent?: AgentDialer;
  timers?: Timers;
  /** Extra plain-HTTP routes on the listen port, tried before the built-in ones. */
  httpHandlers?: HttpHandler[];
}

export interface RunningController {
  /** WebSocket URL clients and agents connect to. */
  url: string;
  port: number;
  controller: Controller;
  close(): Promise<void>;
}

export async function startController(options: StartControllerOptions): Promise<RunningController> {
  const name = options.name ?? defaultControllerName();
  const host = options.listenHost ?? DEFAULT_CONTROLLER_LISTEN_HOST;
  // Checked before anything is opened or written, so a refused start leaves no traces.
  const verdict = checkListenSecurity("controller", host, options.tls, options.allowInsecureListen === true);
  if (verdict.error) throw new Error(verdict.error);
  const access = new ControllerAccess({
    listenHost: host,
    ...(options.accessTokensFile !== undefined ? { tokens: readAccessTokens(options.accessTokensFile) } : {}),
  });
  // Before the logger too: an unreadable secret must not start a controller that no agent can join.
  const master = options.agentMasterSecretFile
    ? readSecretFile(options.agentMasterSecretFile, "agent master secret")
    : loadOrCreateMasterSecret(options.directory).secret;
  const logger = createLogger({
    node: name,
    role: "CONTROLLER",
    directory: options.directory,
    level: options.logLevel ?? "INFO",
    ...(options.logToStderr ? { stderr: true } : {}),
  });
  const hub = new Hub({ version: CONTROLLER_SOFTWARE_VERSION, relayBetweenPeers: false, replies: controllerReplyRouting() });
  const controller = await Controller.open(
    hub,
    {
      name,
      directory: options.directory,
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.autoAssignBrokerPorts !== undefined ? { autoAssignBrokerPorts: options.autoAssignBrokerPorts } : {}),
      ...(options.autoAssignMetricsPorts !== undefined ? { autoAssignMetricsPorts: options.autoAssignMetricsPorts } : {}),
      ...(options.brokerStartPort !== undefined ? { brokerStartPort: options.brokerStartPort } : {}),
      ...(options.metricsStartPort !== undefined ? { metricsStartPort: options.metricsStartPort } : {}),
      ...(options.controllerPort !== undefined ? { controllerPort: options.controllerPort } : {}),
      ...(options.deployRollback !== undefined ? { deployRollback: options.deployRollback } : {}),
      ...(options.deployCheckDelayMs !== undefined ? { deployCheckDelayMs: options.deployCheckDelayMs } : {}),
    },
    {
      logger,
      dialAgent:
        options.dialAgent ?? createWebSocketAgentDialer({ masterSecret: master, ...(options.agentTls ? { tls: options.agentTls } : {}) }),
      ...(options.timers ? { timers: options.timers } : {}),
    },
  );

  // Plain HTTP on the WebSocket port; what no route answers gets 426.
  const httpRoutes: HttpHandler[] = [...(options.httpHandlers ?? [])];
  if (options.dashboard !== false) httpRoutes.push(dashboardHandler({ access, tls: options.tls !== undefined }));
  let server: HubServer;
  try {
    server = await HubServer.listen(hub, {
      host,
      port: options.listenPort ?? DEFAULT_CONTROLLER_WEBSOCKET_PORT,
      ...(options.tls ? { tls: options.tls } : {}),
      httpHandler: chainHttpHandlers(httpRoutes),
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.clientRateLimit !== undefined ? { rateLimit: clientRate(options.clientRateLimit) } : {}),
      // Agents prove their instance; everyone else is a client, whose access level
      // (dashboard tokens, certificates, loopback) is its principal.
      authorize: (req) => {
        const verdict = verifyAgent(req, master);
        if (verdict.kind === "client") return access.authorizeUpgrade(req);
        if (verdict.kind === "agent") return agentPrincipal(verdict.instance);
        logger.warning(`refused an agent connection from ${req.socket.remoteAddress ?? "?"}: ${verdict.message}`);
        return { refuse: { code: AGENT_UNAUTHORIZED, message: verdict.message } };
      },
      exemptPrincipal: (principal) => principalInstance(principal) !== undefined,
    });
  } catch (err) {
    logger.error(`cannot listen on ${host}:${options.listenPort ?? DEFAULT_CONTROLLER_WEBSOCKET_PORT}: ${String(err)}`);
    await controller.close();
    throw err;
  }
  httpRoutes.push(
    metricsRoute(controller.metrics.registry, () => controller.refreshMetrics()),
    servicesRoute((reachedAt) => controller.serviceDiscovery(reachedAt)),
  );
  // No I/O callback can run between the listener coming up and this line (only
  // microtasks do), so no agent's hello can reach the hub before the controller listens.
  controller.start({ host, port: server.port });
  if (verdict.warning) logger.warning(verdict.warning);

  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    controller,
    close: () =>
      (closing ??= (async () => {
        await controller.close();
        await server.close();
        logger.flush();
      })()),
  };
}

/** Starts the controller daemon (`zmgmt controller`, or the one a supervisor runs). */
export async function startControllerDaemon(options: ControllerDaemonOptions): Promise<RunningController> {
  const { stateDir: _stateDir, ...rest } = options;
  return startController({ ...rest, directory: controllerDirectory(options) });
}
