// `zmgmt agent --with-controller`: the host's supervisor also runs the controller, as
// upstream runs controller and agent of a single-host cluster under one supervisor. The
// controller is a management child like the agent (revived if it dies, stopped with the
// supervisor), get-nodes lists it under this instance with the CONTROLLER role and its
// port, and the agent dials it unless --controller names another one.

import { Option, type Command } from "commander";
import { hostname } from "node:os";
import {
  DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
  DEFAULT_CONTROLLER_WEBSOCKET_PORT,
  DEFAULT_DEPLOY_CHECK_DELAY_MS,
  type ControllerDaemonOptions,
} from "../controller/api.js";
import type { LogLevel } from "../management/log.js";
import { pickFreePort } from "../management/free-port.js";
import { enforceListenPolicy } from "./tls-flags.js";

export interface WithControllerFlags {
  withController?: true;
  controllerName?: string;
  controllerListen: string;
  controllerRequestTimeout: number;
  controllerBrokerStartPort: number;
  controllerMetricsStartPort: number;
  controllerDeployRollback: boolean;
}

function count(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

export function addWithControllerOptions(cmd: Command): Command {
  return cmd
    .option("--with-controller", "also run the controller under this agent's supervisor (listed in get-nodes under this instance)")
    .option("--controller-name <name>", "with --with-controller: the controller's name (default: controller-<hostname>)")
    .option(
      "--controller-listen <host:port>",
      "with --with-controller: where the controller listens (0 as port picks a free one)",
      `127.0.0.1:${DEFAULT_CONTROLLER_WEBSOCKET_PORT}`,
    )
    .option(
      "--controller-request-timeout <seconds>",
      "with --with-controller: timeout of controller requests",
      count("--controller-request-timeout"),
      DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS / 1000,
    )
    .option(
      "--controller-broker-start-port <port>",
      "with --with-controller: first port for cluster-port auto-assignment",
      count("--controller-broker-start-port"),
      2200,
    )
    .option(
      "--controller-metrics-start-port <port>",
      "with --with-controller: first port for metrics-port auto-assignment",
      count("--controller-metrics-start-port"),
      9000,
    )
    .addOption(new Option("--no-controller-deploy-rollback", "with --with-controller: keep deployments whose nodes do not come up"));
}

export interface ControllerChild {
  name: string;
  options: ControllerDaemonOptions;
  port: number;
  /** Where the agent reaches it. */
  url: string;
}

/** The controller child to run, or undefined without --with-controller. */
export async function controllerChild(
  flags: WithControllerFlags,
  common: { stateDir: string; logLevel: LogLevel; allowInsecureListen: boolean },
  parseHostPort: (text: string, defaultPort: number) => { host: string; port: number },
): Promise<ControllerChild | undefined> {
  if (!flags.withController) return undefined;
  const listen = parseHostPort(flags.controllerListen, DEFAULT_CONTROLLER_WEBSOCKET_PORT);
  enforceListenPolicy("controller", listen.host, undefined, common.allowInsecureListen);
  if (listen.port === 0) listen.port = await pickFreePort(listen.host);
  const name = flags.controllerName ?? `controller-${hostname()}`;
  const options: ControllerDaemonOptions = {
    name,
    stateDir: common.stateDir,
    listenHost: listen.host,
    listenPort: listen.port,
    requestTimeoutMs: flags.controllerRequestTimeout * 1000,
    logLevel: common.logLevel,
    brokerStartPort: flags.controllerBrokerStartPort,
    metricsStartPort: flags.controllerMetricsStartPort,
    deployRollback: flags.controllerDeployRollback,
    deployCheckDelayMs: DEFAULT_DEPLOY_CHECK_DELAY_MS,
    ...(common.allowInsecureListen ? { allowInsecureListen: true } : {}),
  };
  // A wildcard listener is reached over loopback from the same host.
  const dialHost = listen.host === "0.0.0.0" || listen.host === "::" ? "127.0.0.1" : listen.host;
  const url = `${dialHost.includes(":") ? `[${dialHost}]` : dialHost}:${listen.port}`;
  return { name, options, port: listen.port, url };
}
