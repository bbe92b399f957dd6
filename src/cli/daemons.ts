// The long-running commands: `zmgmt agent` (supervisor + agent), `zmgmt controller`,
// `zmgmt node` (the default node program) and the internal `agent-process`.

import { Command, Option } from "commander";
import { defaultAgentOptions, runAgentProcess } from "../agent/main.js";
import { parseAgentDaemonOptions, type AgentDaemonOptions } from "../agent/options.js";
import { resolve } from "node:path";
import { pickFreePort } from "../management/free-port.js";
import { SupervisorEnv } from "../supervisor/api.js";
import { DEFAULT_AGENT_PORT, DEFAULT_AGENT_REQUEST_TIMEOUT_MS } from "../agent/api.js";
import {
  DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
  DEFAULT_CONTROLLER_WEBSOCKET_PORT,
  DEFAULT_DEPLOY_CHECK_DELAY_MS,
} from "../controller/api.js";
import { runNode } from "../node/main.js";
import { startSupervisor } from "../supervisor/main.js";
import { defaultAgentName, defaultControllerName, defaultStateDir } from "../management/env.js";
import { findZeekOnPath, probeZeek, type ZeekInstall } from "../agent/zeek.js";
import type { ProcessManagerOptions } from "../supervisor/process-manager.js";
import { startControllerDaemon } from "../controller/main.js";
import { controllerDirectory, parseControllerDaemonOptions, type ControllerDaemonOptions } from "../controller/options.js";
import {
  instanceSecret,
  loadOrCreateMasterSecret,
  readSecretFile,
  writeLocalAgentSecret,
  writeSecretFile,
} from "../management/agent-auth.js";
import type { LogFormat, LogLevel } from "../management/log.js";
import { addListenerTlsOptions, dialTlsFromFlags, enforceListenPolicy, listenerTlsFromFlags, type ListenerTlsFlags } from "./tls-flags.js";
import { addWithControllerOptions, controllerChild, type WithControllerFlags } from "./agent-controller.js";
import { applyLogFormat, listenUrl, logFormatOption, printStartupLine, waitForListener } from "./startup.js";

export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d*))?$/.exec(text) ?? /^([^:]*)(?::(\d*))?$/.exec(text);
  if (!m) throw new Error(`invalid address "${text}": use HOST:PORT`);
  const host = m[1] || "127.0.0.1";
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port in "${text}"`);
  return { host, port };
}

function intOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
    return n;
  };
}

/** Exits cleanly on SIGTERM/SIGINT after `close` finishes (bounded). */
export function closeOnSignals(close: () => Promise<void>, graceMs = 60_000): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), graceMs);
    force.unref();
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** Stops (via `close`) once the parent process is gone, checking once a second. */
export function exitWhenOrphaned(close: () => Promise<void>): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    void close().finally(() => process.exit(0));
  }, 1000);
  timer.unref();
}

export interface SupervisionFlags {
  restartDelay: number;
  restartMaxDelay: number;
  restartMaxAttempts?: number;
  stopTimeout: number;
}

export function processOptions(flags: SupervisionFlags): ProcessManagerOptions {
  return {
    initialDelayMs: flags.restartDelay * 1000,
    maxDelayMs: flags.restartMaxDelay * 1000,
    ...(flags.restartMaxAttempts !== undefined ? { maxAttempts: flags.restartMaxAttempts } : {}),
    // Upstream re-sends SIGTERM every 2 s and escalates after 13 tries; --stop-timeout
    // bounds the whole stop instead.
    termIntervalMs: Math.min(2000, Math.max(100, (flags.stopTimeout * 1000) / 5)),
    maxTermAttempts: Math.max(1, Math.round((flags.stopTimeout * 1000) / Math.min(2000, Math.max(100, (flags.stopTimeout * 1000) / 5)))),
  };
}

export function addSupervisionOptions(cmd: Command): Command {
  return cmd
    .option("--restart-delay <seconds>", "first delay before reviving a crashed node", intOption("--restart-delay"), 1)
    .option(
      "--restart-max-delay <seconds>",
      "cap on the revival delay (it doubles every third attempt)",
      intOption("--restart-max-delay"),
      60,
    )
    .option(
      "--restart-max-attempts <n>",
      "give up on a node after this many revivals (default: never)",
      intOption("--restart-max-attempts"),
    )
    .option("--stop-timeout <seconds>", "SIGKILL a node that has not exited this long after SIGTERM", intOption("--stop-timeout"), 26);
}

function addAgentTlsOptions(cmd: Command): Command {
  return addListenerTlsOptions(cmd)
    .option("--controller-ca <file>", "CA bundle the controller's certificate must chain to (dials wss://)")
    .option("--controller-cert <file>", "client certificate for a controller that verifies clients (dials wss://)")
    .option("--controller-key <file>", "private key of --controller-cert");
}

function addControllerTlsOptions(cmd: Command): Command {
  return addListenerTlsOptions(cmd)
    .option("--agent-tls", "dial agents that listen (instances with a port) over wss://, verifying their certificates")
    .option("--agent-ca <file>", "CA bundle agents' certificates must chain to (implies --agent-tls)")
    .option("--agent-cert <file>", "client certificate presented to agents that verify clients (implies --agent-tls)")
    .option("--agent-key <file>", "private key of --agent-cert");
}

// What commander hands each action, as the options below declare them (a value with a
// default is always there; a --no-x flag makes x false).
interface AgentFlags extends SupervisionFlags, ListenerTlsFlags, WithControllerFlags {
  name: string;
  agentSecretFile?: string;
  clientRateLimit?: number;
  stateDir: string;
  listen: string;
  controller: string | false;
  controllerCa?: string;
  controllerCert?: string;
  controllerKey?: string;
  requestTimeout: number;
  zeek?: string | false;
  nodeCommand?: string[];
  logArchiveDir?: string;
  logArchiveInterval: number;
  logLevel: LogLevel;
  logStderr?: true;
  logFormat: LogFormat;
}

interface ControllerFlags extends ListenerTlsFlags {
  name: string;
  agentMasterSecretFile?: string;
  maxConnections?: number;
  clientRateLimit?: number;
  stateDir: string;
  listen: string;
  requestTimeout: number;
  logLevel: LogLevel;
  logStderr?: true;
  logFormat: LogFormat;
  brokerStartPort: number;
  metricsStartPort: number;
  autoAssignPorts: boolean;
  autoAssignMetricsPorts: boolean;
  deployRollback: boolean;
  deployCheckMs: number;
  agentTls?: true;
  agentCa?: string;
  agentCert?: string;
  agentKey?: string;
  dashboard: boolean;
  accessTokens?: string;
  fromEnv?: true;
}

export function registerDaemonCommands(program: Command): void {
  addWithControllerOptions(
    addAgentTlsOptions(
      addSupervisionOptions(
        program
          .command("agent")
          .description("run a supervisor and its agent on this host; the agent manages this instance's cluster nodes")
          .option("--name <name>", "instance (agent) name", defaultAgentName())
          .option("--state-dir <dir>", "state directory (node directories, logs)", defaultStateDir())
          .option(
            "--listen <host:port>",
            "where the agent listens for its nodes and for controllers that dial in",
            `127.0.0.1:${DEFAULT_AGENT_PORT}`,
          )
          .option(
            "--controller <host:port>",
            "controller to connect to (wss://host:port for TLS)",
            `127.0.0.1:${DEFAULT_CONTROLLER_WEBSOCKET_PORT}`,
          )
          .option("--no-controller", "do not dial a controller; wait for it to connect (the instance has a listen port in the config)")
          .option(
            "--client-rate-limit <n>",
            "messages per second an unauthenticated peer may send, in bursts of twice that (default 200)",
            intOption("--client-rate-limit"),
          )
          .option(
            "--agent-secret-file <file>",
            "this instance's secret, proving its name to the controller (from `zmgmt agent-secret NAME` on the controller's host)",
          )
          .option(
            "--request-timeout <seconds>",
            "timeout of agent-side requests",
            intOption("--request-timeout"),
            DEFAULT_AGENT_REQUEST_TIMEOUT_MS / 1000,
          )
          .option("--zeek <path>", "run every cluster node as this Zeek (default: zeek on PATH, else the built-in zmgmt node)")
          .option("--no-zeek", "run the built-in zmgmt node even where Zeek is installed")
          .option("--node-command <argv...>", "program to run for each node instead of Zeek or the built-in node")
          .option("--log-archive-dir <dir>", "where Zeek loggers' rotated logs are archived (default: <state-dir>/logs)")
          .option("--log-archive-interval <seconds>", "how often rotated logs are archived", intOption("--log-archive-interval"), 60)
          .addOption(
            new Option("--log-level <level>", "management log level").choices(["DEBUG", "INFO", "WARNING", "ERROR"]).default("INFO"),
          )
          .option("--log-stderr", "also print management log lines to stderr")
          .addOption(logFormatOption()),
      ),
    ),
  ).action(async (opts: AgentFlags, cmd: Command) => {
    const logFormat = applyLogFormat(opts.logFormat);
    const listen = parseHostPort(opts.listen, DEFAULT_AGENT_PORT);
    const tls = listenerTlsFromFlags(opts);
    const controllerFlags = { ca: opts.controllerCa, cert: opts.controllerCert, key: opts.controllerKey, passphrase: opts.tlsPassphrase };
    if (!opts.controller && (controllerFlags.ca || controllerFlags.cert || controllerFlags.key)) {
      throw new Error("--controller-ca, --controller-cert and --controller-key need --controller");
    }
    const controllerTls = dialTlsFromFlags(controllerFlags, { ca: "--controller-ca", cert: "--controller-cert", key: "--controller-key" });
    if (controllerTls && opts.controller && /^ws:\/\//i.test(opts.controller)) {
      throw new Error(`--controller ${opts.controller} is plaintext, but TLS options for it were given: use wss:// or HOST:PORT`);
    }
    enforceListenPolicy("agent", listen.host, tls, opts.allowInsecureListen === true);
    const controller = await controllerChild(
      opts,
      { stateDir: resolve(opts.stateDir), logLevel: opts.logLevel, allowInsecureListen: opts.allowInsecureListen === true },
      parseHostPort,
    );
    // With a controller of its own, the agent dials that one unless told otherwise.
    if (controller && cmd.getOptionValueSource("controller") === "default") opts.controller = controller.url;
    // ... and proves its name to it with the secret derived from that controller's master
    // secret, as `zmgmt up` does, so running both needs no set-up step.
    if (controller && !opts.agentSecretFile) {
      opts.agentSecretFile = writeLocalAgentSecret(controllerDirectory(controller.options), resolve(opts.stateDir), opts.name);
    }
    // The foreground's one start-up line says what the nodes run.
    let nodesRun = opts.nodeCommand ? `cluster nodes run ${opts.nodeCommand.join(" ")}` : "cluster nodes run the built-in zmgmt node";
    const zeek = opts.nodeCommand ? undefined : chooseZeek(opts.zeek, process.env, (m) => (nodesRun = m));
    const agentOptions: AgentDaemonOptions = defaultAgentOptions({
      name: opts.name,
      // The agent process runs in a directory below the state directory, so it gets the
      // path resolved here rather than one it would take relative to itself.
      stateDir: resolve(opts.stateDir),
      listenHost: listen.host,
      listenPort: listen.port,
      requestTimeoutMs: opts.requestTimeout * 1000,
      logLevel: opts.logLevel,
      logToStderr: opts.logStderr === true,
      logFormat,
      ...(opts.controller ? { controllerUrl: opts.controller } : {}),
      ...(opts.agentSecretFile ? { agentSecretFile: readableSecret(opts.agentSecretFile, "agent secret") } : {}),
      ...(opts.clientRateLimit ? { clientRateLimit: Math.floor(opts.clientRateLimit) } : {}),
      ...(opts.nodeCommand ? { nodeCommand: opts.nodeCommand } : {}),
      ...(zeek ? { zeek } : {}),
      ...(opts.logArchiveDir ? { logArchiveDir: resolve(opts.logArchiveDir) } : {}),
      logArchiveIntervalMs: opts.logArchiveInterval * 1000,
      ...(tls ? { tls, nodeListenPort: await pickFreePort("127.0.0.1") } : {}),
      ...(controllerTls ? { controllerTls } : {}),
      ...(opts.allowInsecureListen ? { allowInsecureListen: true } : {}),
    });
    if (listen.port === 0) agentOptions.listenPort = await pickFreePort(listen.host);
    const running = await startSupervisor({
      stateDir: opts.stateDir,
      agent: { name: opts.name, options: agentOptions },
      ...(controller ? { controller: { name: controller.name, options: controller.options, port: controller.port } } : {}),
      processOptions: processOptions(opts),
      logLevel: opts.logLevel,
      logToStderr: opts.logStderr === true,
      logFormat,
    });
    closeOnSignals(() => running.close());
    const url = listenUrl(listen.host, agentOptions.listenPort, tls !== undefined);
    const listening = await waitForListener(listen.host, agentOptions.listenPort, 15_000);
    const dials = controller
      ? `controller ${controller.name} on ${controller.url} (run by this agent)`
      : opts.controller
        ? `controller ${opts.controller}`
        : "waiting for a controller to dial in";
    printStartupLine(
      `zmgmt agent ${opts.name} ${listening ? "listening on" : "not yet listening on"} ${url}, ${dials}, ${nodesRun} (state in ${opts.stateDir})`,
    );
  });

  program
    .command("agent-process", { hidden: true })
    .description("the agent itself; started by `zmgmt agent`")
    .action(async () => {
      const running = await runAgentProcess(parseAgentDaemonOptions(process.env[SupervisorEnv.agentOptions], SupervisorEnv.agentOptions));
      closeOnSignals(() => running.close(), 10_000);
    });

  addControllerTlsOptions(
    program
      .command("controller")
      .description("run the controller: the Management API endpoint for clients and agents")
      .option("--name <name>", "controller name", defaultControllerName())
      .option("--state-dir <dir>", "state directory (persisted configurations, management log)", defaultStateDir())
      .option("--listen <host:port>", "WebSocket listen address for clients and agents", `127.0.0.1:${DEFAULT_CONTROLLER_WEBSOCKET_PORT}`)
      .option(
        "--request-timeout <seconds>",
        "timeout of controller requests",
        intOption("--request-timeout"),
        DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS / 1000,
      )
      .addOption(new Option("--log-level <level>", "management log level").choices(["DEBUG", "INFO", "WARNING", "ERROR"]).default("INFO"))
      .option("--log-stderr", "also print management log lines to stderr")
      .addOption(logFormatOption())
      .option("--broker-start-port <port>", "first port for cluster-port auto-assignment", intOption("--broker-start-port"), 2200)
      .option("--metrics-start-port <port>", "first port for metrics-port auto-assignment", intOption("--metrics-start-port"), 9000)
      .option("--no-auto-assign-ports", "do not assign cluster ports to manager, logger and proxy nodes that lack one")
      .option("--no-auto-assign-metrics-ports", "do not assign metrics ports to nodes that lack one")
      .option("--no-dashboard", "do not serve the web dashboard at GET / on the listen port")
      .option(
        "--access-tokens <file>",
        "tokens for the dashboard and zmgmt's own requests on a non-loopback listener: lines of 'read-write TOKEN' or 'read-only TOKEN'",
      )
      .option("--no-deploy-rollback", "keep a deployment whose nodes do not come up instead of rolling back (clients may still ask)")
      .option(
        "--deploy-check-ms <ms>",
        "how long a deployment's nodes must stay RUNNING after the agents answered",
        intOption("--deploy-check-ms"),
        DEFAULT_DEPLOY_CHECK_DELAY_MS,
      )
      .option(
        "--agent-master-secret-file <file>",
        "secret every agent's secret derives from (default: agent-master-secret in the controller's directory, created on first start)",
      )
      .option("--max-connections <n>", "clients connected at once; authenticated agents are not counted", intOption("--max-connections"))
      .option(
        "--client-rate-limit <n>",
        "messages per second a client may send, in bursts of twice that (default 200)",
        intOption("--client-rate-limit"),
      ),
  )
    .addOption(new Option("--from-env").hideHelp())
    .action(async (opts: ControllerFlags) => {
      let options: ControllerDaemonOptions;
      if (opts.fromEnv) {
        options = parseControllerDaemonOptions(process.env[SupervisorEnv.controllerOptions], SupervisorEnv.controllerOptions);
      } else {
        const listen = parseHostPort(opts.listen, DEFAULT_CONTROLLER_WEBSOCKET_PORT);
        const tls = listenerTlsFromFlags(opts);
        const agentTls =
          dialTlsFromFlags(
            { ca: opts.agentCa, cert: opts.agentCert, key: opts.agentKey, passphrase: opts.tlsPassphrase },
            { ca: "--agent-ca", cert: "--agent-cert", key: "--agent-key" },
          ) ?? (opts.agentTls ? { rejectUnauthorized: true } : undefined);
        enforceListenPolicy("controller", listen.host, tls, opts.allowInsecureListen === true, opts.logStderr !== true);
        options = {
          name: opts.name,
          stateDir: opts.stateDir,
          listenHost: listen.host,
          listenPort: listen.port,
          requestTimeoutMs: opts.requestTimeout * 1000,
          logLevel: opts.logLevel,
          logToStderr: opts.logStderr === true,
          logFormat: opts.logFormat,
          brokerStartPort: opts.brokerStartPort,
          metricsStartPort: opts.metricsStartPort,
          autoAssignBrokerPorts: opts.autoAssignPorts,
          autoAssignMetricsPorts: opts.autoAssignMetricsPorts,
          deployRollback: opts.deployRollback,
          deployCheckDelayMs: opts.deployCheckMs,
          ...(tls ? { tls } : {}),
          ...(agentTls ? { agentTls } : {}),
          ...(opts.allowInsecureListen ? { allowInsecureListen: true } : {}),
          ...(opts.dashboard ? {} : { dashboard: false }),
          ...(opts.accessTokens !== undefined ? { accessTokensFile: resolve(opts.accessTokens) } : {}),
          ...(opts.agentMasterSecretFile
            ? { agentMasterSecretFile: readableSecret(opts.agentMasterSecretFile, "agent master secret") }
            : {}),
          ...(opts.maxConnections ? { maxConnections: Math.floor(opts.maxConnections) } : {}),
          ...(opts.clientRateLimit ? { clientRateLimit: Math.floor(opts.clientRateLimit) } : {}),
        };
      }
      applyLogFormat(options.logFormat);
      process.title = `zmgmt controller ${options.name}`;
      const running = await startControllerDaemon(options);
      printStartupLine(
        `zmgmt controller ${options.name} listening on ${listenUrl(options.listenHost, running.port, options.tls !== undefined)} (state in ${options.stateDir})`,
      );
      // A controller started by a supervisor (zmgmt up) leaves with it; a standalone one
      // must not care who its parent is.
      if (opts.fromEnv) exitWhenOrphaned(() => running.close());
      closeOnSignals(() => running.close(), 10_000);
    });

  program
    .command("agent-secret")
    .description("print the secret an agent needs to join this host's controller (run it on the controller's host)")
    .argument("<instance>", "the agent's instance name (its --name)")
    .option("--state-dir <dir>", "the controller's state directory", defaultStateDir())
    .option("--controller-name <name>", "the controller's name", defaultControllerName())
    .option("--agent-master-secret-file <file>", "the controller's --agent-master-secret-file, if it has one")
    .option("--out <file>", "write the secret to this file (mode 0600) instead of printing it")
    .action((instance: string, opts: { stateDir: string; controllerName: string; agentMasterSecretFile?: string; out?: string }) => {
      const master = opts.agentMasterSecretFile
        ? readSecretFile(opts.agentMasterSecretFile, "agent master secret")
        : loadOrCreateMasterSecret(controllerDirectory({ stateDir: resolve(opts.stateDir), name: opts.controllerName })).secret;
      const secret = instanceSecret(master, instance);
      if (opts.out) writeSecretFile(resolve(opts.out), secret);
      else process.stdout.write(`${secret}\n`);
    });

  program
    .command("node")
    .description("the default cluster node program (started by an agent; reads its settings from the environment)")
    .action(async () => {
      await runNode();
    });
}

/** Checked in the foreground, and absolute, since supervised children run elsewhere. */
function readableSecret(file: string, what: string): string {
  const path = resolve(file);
  readSecretFile(path, what);
  return path;
}

/**
 * The Zeek that nodes run: `--zeek PATH`, else `zeek` on PATH (or a package's usual
 * prefix); none with --no-zeek or when there is none. Says which, once, on stderr.
 */
export function chooseZeek(
  flag: string | false | undefined,
  env: NodeJS.ProcessEnv = process.env,
  say: (message: string) => void = (m) => process.stderr.write(`zmgmt: ${m}\n`),
): ZeekInstall | undefined {
  if (flag === false) return undefined;
  const path = typeof flag === "string" ? flag : findZeekOnPath(env["PATH"]);
  if (path === undefined) {
    say("no zeek found on PATH; cluster nodes run the built-in zmgmt node (use --zeek PATH to run Zeek)");
    return undefined;
  }
  const zeek = probeZeek(path);
  say(`cluster nodes run Zeek ${zeek.version} (${zeek.path})`);
  return zeek;
}
