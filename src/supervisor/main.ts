// The supervisor process (`zmgmt agent`, `zmgmt up`): owns a loopback control socket that
// only its agent can use, starts the agent (and optionally a controller) as revivable
// children, and on SIGTERM/SIGINT stops everything it runs.

import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Hub } from "../broker/hub.js";
import { HubServer } from "../broker/server.js";
import type { AgentDaemonOptions } from "../agent/api.js";
import type { ControllerDaemonOptions } from "../controller/api.js";
import { AGENT_REFUSED_EXIT_CODE } from "../management/agent-auth.js";
import { createLogger, type LogFormat, type LogLevel } from "../management/log.js";
import { zmgmtCommand } from "../management/paths.js";
import { VERSION } from "../version.js";
import { SUPERVISOR_TOKEN_HEADER, SupervisorEnv } from "./api.js";
import { ProcessManager, type ProcessManagerOptions } from "./process-manager.js";
import { AGENT_PRINCIPAL, Supervisor } from "./supervisor.js";

export interface ManagedChild<O> {
  name: string;
  /** Options handed to the child as JSON; the child's subcommand validates them. */
  options: O;
  /** Reported in get_nodes for a controller. */
  port?: number;
}

export interface SupervisorProcessOptions {
  stateDir: string;
  agent: ManagedChild<AgentDaemonOptions>;
  controller?: ManagedChild<ControllerDaemonOptions>;
  processOptions?: ProcessManagerOptions;
  logLevel?: LogLevel;
  logToStderr?: boolean;
  logFormat?: LogFormat;
}

export interface RunningSupervisor {
  supervisor: Supervisor;
  processes: ProcessManager;
  /** Stops every child (nodes included) and the control socket. */
  close(): Promise<void>;
}

export async function startSupervisor(options: SupervisorProcessOptions): Promise<RunningSupervisor> {
  process.title = `zmgmt supervisor ${options.agent.name}`;
  const log = createLogger({
    node: "supervisor",
    role: "SUPERVISOR",
    directory: join(options.stateDir, "nodes", "supervisor"),
    level: options.logLevel ?? "INFO",
    stderr: options.logToStderr ?? false,
    ...(options.logFormat ? { stderrFormat: options.logFormat } : {}),
  });
  const agentToken = randomBytes(24).toString("hex");
  const nodeToken = randomBytes(24).toString("hex");
  const hub = new Hub({ version: VERSION, relayBetweenPeers: false });
  const server = await HubServer.listen(hub, {
    host: "127.0.0.1",
    port: 0,
    authorize: (req) => (req.headers[SUPERVISOR_TOKEN_HEADER] === agentToken ? AGENT_PRINCIPAL : false),
  });
  const processes = new ProcessManager(options.processOptions ?? {});
  const supervisor = new Supervisor(hub, processes, log);
  // If the supervisor dies of an error, its nodes must not live on unsupervised.
  process.on("exit", () => processes.killAll("SIGKILL"));

  const baseEnv: Record<string, string> = {
    [SupervisorEnv.url]: server.url,
    [SupervisorEnv.token]: agentToken,
    [SupervisorEnv.nodeToken]: nodeToken,
    [SupervisorEnv.supervisorPid]: String(process.pid),
  };

  if (options.controller) {
    const c = options.controller;
    const error = supervisor.create({
      name: c.name,
      command: zmgmtCommand("controller", "--from-env"),
      directory: join(options.stateDir, "nodes", c.name),
      env: { [SupervisorEnv.managementNode]: "CONTROLLER", [SupervisorEnv.controllerOptions]: JSON.stringify(c.options) },
      managementRole: "CONTROLLER",
      meta: JSON.stringify({ port: c.port }),
    });
    if (error) throw new Error(`supervisor could not create controller node: ${error}`);
  }

  const error = supervisor.create({
    name: options.agent.name,
    command: zmgmtCommand("agent-process"),
    directory: join(options.stateDir, "nodes", options.agent.name),
    env: { ...baseEnv, [SupervisorEnv.managementNode]: "AGENT", [SupervisorEnv.agentOptions]: JSON.stringify(options.agent.options) },
    managementRole: "AGENT",
    meta: "{}",
  });
  if (error) throw new Error(`supervisor could not create agent node: ${error}`);
  log.info(`supervisor is live, pid ${process.pid}, control socket ${server.url}`);

  let closing: Promise<void> | undefined;
  const running: RunningSupervisor = {
    supervisor,
    processes,
    close() {
      closing ??= (async () => {
        await processes.shutdown();
        supervisor.close();
        await server.close();
        log.flush();
      })();
      return closing;
    },
  };
  // A refused agent would be refused again after every revival; the whole daemon stops
  // instead and says why, so the operator sees it at once (and systemd does not loop).
  processes.on("exit", (ev) => {
    if (ev.name !== options.agent.name || ev.code !== AGENT_REFUSED_EXIT_CODE) return;
    const why = ev.outputs.stderr.split("\n").findLast((line) => line.startsWith("zmgmt agent: ")) ?? "";
    log.error(`agent ${ev.name} was refused by the controller; stopping: ${why}`);
    process.stderr.write(`${why || `zmgmt agent: agent ${ev.name} was refused by the controller`}\n`);
    void running.close().finally(() => process.exit(AGENT_REFUSED_EXIT_CODE));
  });
  return running;
}
