// The agent process: started by its supervisor, it connects back to it, re-learns the nodes
// the supervisor runs, then listens for nodes and controllers and (optionally) dials the
// controller.

import { join } from "node:path";
import { Hub } from "../broker/hub.js";
import { Peer } from "../broker/peer.js";
import { connectRefusal, isConnectError } from "../broker/connection.js";
import type { IncomingMessage } from "node:http";
import { HubServer, chainHttpHandlers, clientRate, type HttpHandler, type HubServerOptions, type Refusal } from "../broker/server.js";
import { WEBSOCKET_PATH } from "../broker/messages.js";
import { defaultAgentName, defaultStateDir } from "../management/env.js";
import {
  AGENT_REFUSED,
  AGENT_REFUSED_EXIT_CODE,
  AGENT_UNAUTHORIZED,
  CONTROLLER_PRINCIPAL,
  CONTROLLER_UNAUTHORIZED,
  agentHeaders,
  readSecretFile,
  verifyController,
  type ControllerGuard,
} from "../management/agent-auth.js";
import { createLogger, type Logger } from "../management/log.js";
import { checkListenSecurity } from "../management/security.js";
import { SUPERVISOR_TOKEN_HEADER, SupervisorEnv } from "../supervisor/api.js";
import { zmgmtCommand } from "../management/paths.js";
import { Agent } from "./agent.js";
import { DEFAULT_AGENT_PORT, DEFAULT_AGENT_REQUEST_TIMEOUT_MS, agentTopic } from "./api.js";
import { SupervisorLink } from "./supervisor-link.js";
import { metricsRoute } from "../management/metrics.js";
import { webSocketUrl } from "../broker/url.js";
import { VERSION } from "../version.js";
import type { AgentDaemonOptions } from "./options.js";

/** Daemon options with the defaults filled in: name and state directory from the environment. */
export function defaultAgentOptions(partial: Partial<AgentDaemonOptions> = {}): AgentDaemonOptions {
  return {
    name: defaultAgentName(),
    stateDir: defaultStateDir(),
    listenHost: "127.0.0.1",
    listenPort: DEFAULT_AGENT_PORT,
    requestTimeoutMs: DEFAULT_AGENT_REQUEST_TIMEOUT_MS,
    ...partial,
  };
}

async function listenWithRetry(hub: Hub, options: HubServerOptions, deadlineMs: number): Promise<HubServer> {
  // A previous agent process may still hold the port for a moment while it exits.
  for (let attempt = 0; ; attempt++) {
    try {
      return await HubServer.listen(hub, options);
    } catch (err) {
      if (Date.now() > deadlineMs) throw err;
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 1000)));
    }
  }
}

export interface RunningAgent {
  agent: Agent;
  server: HubServer;
  close(): Promise<void>;
}

export async function runAgentProcess(options: AgentDaemonOptions, env: NodeJS.ProcessEnv = process.env): Promise<RunningAgent> {
  const supervisorUrl = env[SupervisorEnv.url];
  const supervisorToken = env[SupervisorEnv.token];
  const nodeToken = env[SupervisorEnv.nodeToken];
  if (!supervisorUrl || !supervisorToken || !nodeToken) {
    throw new Error("the agent process must be started by its supervisor (zmgmt agent)");
  }
  const verdict = checkListenSecurity("agent", options.listenHost, options.tls, options.allowInsecureListen === true);
  if (verdict.error) throw new Error(verdict.error);
  const directory = join(options.stateDir, "nodes", options.name);
  // `ps` tells the agent apart from its supervisor and nodes, all `node …/main.js` otherwise.
  process.title = `zmgmt agent ${options.name}`;
  const log = createLogger({
    node: options.name,
    role: "AGENT",
    directory,
    level: options.logLevel ?? "INFO",
    stderr: options.logToStderr ?? false,
    ...(options.logFormat ? { stderrFormat: options.logFormat } : {}),
  });

  const supervisor = new SupervisorLink(supervisorUrl, supervisorToken, options.requestTimeoutMs).start();
  await supervisor.waitReady(30_000);

  const hub = new Hub({ version: VERSION, relayBetweenPeers: false });
  const nodeHost = options.listenHost === "0.0.0.0" || options.listenHost === "::" ? "127.0.0.1" : options.listenHost;
  const hostPart = nodeHost.includes(":") ? `[${nodeHost}]` : nodeHost;
  const secret = options.agentSecretFile ? readSecretFile(options.agentSecretFile, "agent secret") : undefined;
  const controllerPeer = options.controllerUrl
    ? new Peer({
        url: webSocketUrl(options.controllerUrl, options.controllerTls !== undefined),
        topics: [agentTopic(options.name)],
        headers: agentHeaders(options.name, secret),
        initialDelayMs: 250,
        maxDelayMs: 2000,
        ...(options.controllerTls ? { tls: options.controllerTls } : {}),
      })
    : undefined;

  // An agent that waits for its controller must tell it from anyone else reaching the port.
  const guard: ControllerGuard = controllerPeer
    ? { kind: "none" }
    : secret !== undefined
      ? { kind: "secret", secret }
      : options.tls?.verifyClients === true
        ? { kind: "certificate" }
        : { kind: "none" };
  const authorize = (req: IncomingMessage): string | boolean | Refusal => {
    if (req.headers[SUPERVISOR_TOKEN_HEADER] === nodeToken) return "node";
    if (controllerPeer) return true;
    const verdict = verifyController(req, options.name, guard);
    if (verdict.kind === "controller") return CONTROLLER_PRINCIPAL;
    if (verdict.kind === "other") return true;
    log.warning(`refused a controller connection from ${req.socket.remoteAddress ?? "?"}: ${verdict.message}`);
    return { refuse: { code: CONTROLLER_UNAUTHORIZED, message: verdict.message } };
  };

  // Plain HTTP on the public listener; what no route answers gets 426.
  const httpRoutes: HttpHandler[] = [];
  // The port must be known before the agent hands it to nodes.
  const deadline = Date.now() + 15_000;
  const server = await listenWithRetry(
    hub,
    {
      host: options.listenHost,
      port: options.listenPort,
      ...(options.tls ? { tls: options.tls } : {}),
      authorize,
      httpHandler: chainHttpHandlers(httpRoutes),
      ...(options.clientRateLimit !== undefined ? { rateLimit: clientRate(options.clientRateLimit) } : {}),
    },
    deadline,
  );
  // With TLS on the public listener, nodes would need the CA (and, with client
  // verification, certificates of their own). They run on this host and already prove
  // themselves with the node token, so they get a plaintext loopback listener that admits
  // nothing but that token, and the public one stays free of local special cases.
  let nodeServer: HubServer | undefined;
  if (options.tls) {
    try {
      nodeServer = await listenWithRetry(
        hub,
        {
          host: "127.0.0.1",
          port: options.nodeListenPort ?? 0,
          authorize: (req) => (req.headers[SUPERVISOR_TOKEN_HEADER] === nodeToken ? "node" : false),
        },
        deadline,
      );
    } catch (err) {
      await server.close();
      throw err;
    }
  }
  const agent: Agent = new Agent(
    {
      name: options.name,
      stateDir: options.stateDir,
      directory,
      requestTimeoutMs: options.requestTimeoutMs,
      nodeCommand: options.nodeCommand ?? zmgmtCommand("node"),
      nodeUrl: nodeServer ? nodeServer.url : `ws://${hostPart}:${server.port}${WEBSOCKET_PATH}`,
      nodeToken,
      listenPort: server.port,
      listenHost: options.listenHost,
      connectsToController: controllerPeer !== undefined,
      requireControllerProof: guard.kind !== "none",
      nodeBaseEnv: env[SupervisorEnv.supervisorPid] ? { [SupervisorEnv.supervisorPid]: env[SupervisorEnv.supervisorPid]! } : {},
      ...(options.zeek ? { zeek: options.zeek } : {}),
      logArchive: {
        directory: options.logArchiveDir ?? join(options.stateDir, "logs"),
        intervalMs: Math.max(1000, options.logArchiveIntervalMs ?? 60_000),
      },
    },
    hub,
    supervisor,
    controllerPeer,
    log,
  );
  // Routes are resolved per request, so the agent created after the listener is in time.
  httpRoutes.push(metricsRoute(agent.metrics.registry, () => agent.refreshMetrics()));
  await agent.recover();
  agent.startLogArchival();
  if (controllerPeer) {
    exitWhenRefused(controllerPeer, log);
    reportConnectFailures(controllerPeer, log, options.controllerTls?.certFile !== undefined);
  }
  controllerPeer?.start();
  log.info(
    `agent is live, Broker ID ${hub.endpointId}, listening on ${options.listenHost}:${server.port}` +
      (nodeServer ? ` (TLS; nodes on ${nodeServer.host}:${nodeServer.port})` : ""),
  );
  if (verdict.warning) log.warning(verdict.warning);
  if (!controllerPeer) {
    if (guard.kind === "none") {
      log.warning(
        "this agent waits for its controller without a way to tell it apart: anyone who reaches its port can control it " +
          "(deploy configurations, that is, run programs on this host). Give it its instance secret " +
          "(--agent-secret-file, from `zmgmt agent-secret NAME` on the controller's host) or client verification " +
          "(--tls-ca with --tls-verify-clients), or keep the port on loopback",
      );
    } else {
      log.info(
        guard.kind === "secret"
          ? "takes controller requests only from a connection that proves it holds this instance's secret"
          : "takes controller requests only from a connection with a client certificate from --tls-ca",
      );
    }
  }
  log.info(
    options.zeek
      ? `cluster nodes run Zeek ${options.zeek.version} (${options.zeek.path})`
      : "no Zeek configured; cluster nodes run the built-in zmgmt node",
  );

  supervisor.on("down", (why) => log.warning(`lost the supervisor: ${why}`));

  // An agent whose supervisor died is an orphan that would keep the port and keep answering
  // for nodes it can no longer manage; it goes away too (nodes do the same).
  const parent = process.ppid;
  const orphanCheck = setInterval(() => {
    if (process.ppid !== parent) {
      log.error(`supervisor (pid ${parent}) is gone; stopping`);
      clearInterval(orphanCheck);
      process.kill(process.pid, "SIGTERM");
    }
  }, 1000);
  orphanCheck.unref();

  return {
    agent,
    server,
    async close() {
      agent.close();
      await controllerPeer?.close();
      await server.close();
      await nodeServer?.close();
      await supervisor.close();
      log.flush();
    },
  };
}

/**
 * Failures to reach the controller are retried, but the operator must see why: a controller
 * that rejects this agent's certificate (a CA it does not trust) does so in the TLS
 * handshake, before any Broker message could say so. Each distinct reason is logged once
 * per outage, so a long one does not flood the log.
 */
function reportConnectFailures(peer: Peer, log: Logger, presentsCertificate: boolean): void {
  let last: string | undefined;
  peer.on("connect-error", (err) => {
    let why = isConnectError(err) && !err.message.includes(err.detail) ? `${err.message} (${err.detail})` : err.message;
    // Under TLS 1.3 the server judges the client certificate after the client considers the
    // handshake done, so its rejection arrives as a plain hang-up.
    if (presentsCertificate && isConnectError(err) && err.code === "closed" && err.phase === "connect") {
      why += "; a controller that does not trust this agent's certificate (--controller-cert) hangs up like this";
    }
    if (why === last) return;
    last = why;
    log.warning(`cannot connect to the controller, retrying: ${why}`);
  });
  peer.on("ready", () => {
    last = undefined;
  });
}

/**
 * The controller refused this agent (no valid identity, or its instance already has a live
 * agent): retrying cannot help, so the agent says why and exits with a code its supervisor
 * takes as final, rather than being revived into the same refusal forever.
 */
function exitWhenRefused(peer: Peer, log: Logger): void {
  const give = (context: string): void => {
    const message = `the controller refused this agent: ${context}`;
    log.error(message);
    log.flush();
    process.stderr.write(`zmgmt agent: ${message}\n`);
    process.exit(AGENT_REFUSED_EXIT_CODE);
  };
  const codes = [AGENT_REFUSED, AGENT_UNAUTHORIZED];
  peer.on("server-error", (code, context) => {
    if (codes.includes(code)) give(context);
  });
  peer.on("connect-error", (err) => {
    const refusal = connectRefusal(err);
    if (refusal && codes.includes(refusal.code)) give(refusal.context);
  });
}
