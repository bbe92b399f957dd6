// `zmgmt up`: a whole local cluster in one command. A supervisor runs the controller and an
// agent; the default configuration (manager, logger, proxy, two workers) or a given INI
// file is staged and deployed; the nodes are shown as they come up. Ctrl-C stops it all.

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import { Command, Option } from "commander";
import pc from "picocolors";
import { DEFAULT_AGENT_PORT, DEFAULT_AGENT_REQUEST_TIMEOUT_MS } from "../agent/api.js";
import { defaultAgentOptions } from "../agent/main.js";
import { DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS, DEFAULT_CONTROLLER_WEBSOCKET_PORT } from "../controller/api.js";
import { ControllerClient, resultNodeOutputs } from "../client/controller-client.js";
import { locatedErrors, parseClusterConfig } from "../client/cluster-config.js";
import type { Configuration } from "../management/types.js";
import type { LogLevel } from "../management/log.js";
import { startSupervisor } from "../supervisor/main.js";
import { addSupervisionOptions, chooseZeek, closeOnSignals, parseHostPort, processOptions, type SupervisionFlags } from "./daemons.js";
import { controllerDirectory, type ControllerDaemonOptions } from "../controller/options.js";
import { writeLocalAgentSecret } from "../management/agent-auth.js";
import { pickFreePort } from "../management/free-port.js";
import { defaultStateDir } from "../management/env.js";
import { ALLOW_INSECURE_LISTEN_FLAG } from "../management/security.js";
import { enforceListenPolicy } from "./tls-flags.js";
import { LiveView } from "./up-view.js";

export function defaultClusterIni(instance: string): string {
  return [
    "[instances]",
    instance,
    "",
    "[manager]",
    `instance = ${instance}`,
    "role = manager",
    "",
    "[logger-01]",
    `instance = ${instance}`,
    "role = logger",
    "",
    "[proxy-01]",
    `instance = ${instance}`,
    "role = proxy",
    "",
    "[worker-01]",
    `instance = ${instance}`,
    "role = worker",
    "interface = lo",
    "",
    "[worker-02]",
    `instance = ${instance}`,
    "role = worker",
    "interface = lo",
    "",
  ].join("\n");
}

async function connectWithRetry(url: string, deadline: number): Promise<ControllerClient> {
  for (;;) {
    try {
      return await ControllerClient.connect({ url, connectTimeoutMs: 2000, requestTimeoutMs: 20_000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

interface ListenPort {
  what: string;
  flag: string;
  host: string;
  port: number;
}

/** Exits naming the first port that something else already listens on. */
async function assertPortsFree(ports: ListenPort[]): Promise<void> {
  for (const p of ports) {
    const error = await new Promise<NodeJS.ErrnoException | undefined>((done) => {
      const srv = createServer();
      srv.once("error", (err: NodeJS.ErrnoException) => done(err));
      srv.listen(p.port, p.host, () => srv.close(() => done(undefined)));
    });
    if (!error) continue;
    const where = `${p.host.includes(":") ? `[${p.host}]` : p.host}:${p.port}`;
    const why =
      error.code === "EADDRINUSE"
        ? `is in use: another \`zmgmt up\`, controller or agent probably runs there ` +
          (p.what === "controller" ? `(see \`zmgmt get-nodes --controller ${where}\`)` : "") +
          `; stop it, or pick another port with ${p.flag}`
        : `cannot be used: ${error.message}`;
    process.stderr.write(`zmgmt up: the ${p.what} port ${where} ${why}\n`);
    process.exit(1);
  }
}

// What commander hands the action, as the options below declare them.
interface UpFlags extends SupervisionFlags {
  stateDir: string;
  config?: string;
  instance: string;
  controllerListen: string;
  agentListen: string;
  timeout: number;
  brokerStartPort: number;
  metricsStartPort: number;
  zeek?: string | false;
  controllerName?: string;
  /** false with --no-auto-assign-metrics-ports. */
  autoAssignMetricsPorts: boolean;
  allowInsecureListen?: true;
  logLevel: LogLevel;
}

export function registerUpCommand(program: Command): void {
  addSupervisionOptions(
    program
      .command("up")
      .description("start a local cluster: controller + agent + a deployed configuration, with a live view")
      .option("--state-dir <dir>", "state directory", defaultStateDir())
      .option("--config <file>", "cluster configuration (INI) to deploy instead of the default one")
      .option("--instance <name>", "instance (agent) name", `agent-${hostname()}`)
      .option("--controller-listen <host:port>", "controller WebSocket address", `127.0.0.1:${DEFAULT_CONTROLLER_WEBSOCKET_PORT}`)
      .option("--agent-listen <host:port>", "agent address (use port 0 for any free port)", `127.0.0.1:${DEFAULT_AGENT_PORT}`)
      .option("--timeout <seconds>", "how long to wait for the cluster to come up", (v) => Number(v), 60)
      .option("--broker-start-port <port>", "first port for cluster-port auto-assignment", (v) => Number(v), 2200)
      .option("--metrics-start-port <port>", "first port for metrics-port auto-assignment", (v) => Number(v), 9000)
      .option("--controller-name <name>", "the controller's name (default: controller-<hostname>)")
      .option("--no-auto-assign-metrics-ports", "do not give nodes without a metrics_port one")
      .option("--zeek <path>", "run the cluster's nodes as this Zeek (default: zeek on PATH, else the built-in zmgmt node)")
      .option("--no-zeek", "run the built-in zmgmt node even where Zeek is installed")
      .option(ALLOW_INSECURE_LISTEN_FLAG, "allow non-loopback listen addresses (up has no TLS; see `zmgmt controller --help`)")
      .addOption(new Option("--log-level <level>").choices(["DEBUG", "INFO", "WARNING", "ERROR"]).default("INFO")),
  ).action(async (opts: UpFlags) => {
    const tty = process.stdout.isTTY;
    const controllerListen = parseHostPort(opts.controllerListen, DEFAULT_CONTROLLER_WEBSOCKET_PORT);
    const agentListen = parseHostPort(opts.agentListen, DEFAULT_AGENT_PORT);
    const allowInsecureListen = opts.allowInsecureListen === true;
    enforceListenPolicy("controller", controllerListen.host, undefined, allowInsecureListen);
    enforceListenPolicy("agent", agentListen.host, undefined, allowInsecureListen);
    if (controllerListen.port === 0) controllerListen.port = await pickFreePort(controllerListen.host);
    if (agentListen.port === 0) agentListen.port = await pickFreePort(agentListen.host);
    // Before anything starts: a second `up` would otherwise have its agent join the first
    // cluster's controller under the same name and take its nodes over.
    await assertPortsFree([
      { what: "controller", flag: "--controller-listen", ...controllerListen },
      { what: "agent", flag: "--agent-listen", ...agentListen },
    ]);
    // Daemons run in directories of their own below the state directory; a relative path
    // would be taken relative to those and nest the state inside itself.
    opts.stateDir = resolve(opts.stateDir);
    const controllerName = opts.controllerName ?? `controller-${hostname()}`;
    const controllerOptions: ControllerDaemonOptions = {
      name: controllerName,
      stateDir: opts.stateDir,
      listenHost: controllerListen.host,
      listenPort: controllerListen.port,
      requestTimeoutMs: DEFAULT_CONTROLLER_REQUEST_TIMEOUT_MS,
      logLevel: opts.logLevel,
      brokerStartPort: opts.brokerStartPort,
      metricsStartPort: opts.metricsStartPort,
      // Upstream's test setups run without metrics ports; so can this.
      ...(opts.autoAssignMetricsPorts ? {} : { autoAssignMetricsPorts: false }),
      ...(allowInsecureListen ? { allowInsecureListen } : {}),
    };
    const hostForUrl = controllerListen.host.includes(":") ? `[${controllerListen.host}]` : controllerListen.host;
    const controllerAddr = `${hostForUrl}:${controllerListen.port}`;

    const iniText = opts.config ? readFileSync(opts.config, "utf8") : defaultClusterIni(opts.instance);
    const parsed = parseClusterConfig(iniText, { fileName: opts.config ?? "<default>", hostname: hostname() });
    for (const w of parsed.warnings) process.stderr.write(`warning: ${w}\n`);
    if (!parsed.config) {
      for (const e of locatedErrors(parsed, opts.config ?? "<default>")) process.stderr.write(`error: ${e}\n`);
      process.exit(1);
    }
    const config: Configuration = parsed.config;
    const zeek = chooseZeek(opts.zeek);
    const instanceName = config.instances[0]?.name ?? opts.instance;

    // The agent proves its name with the secret the controller derives from its master
    // secret, handed over here, so the local cluster needs no set-up step.
    const agentSecretFile = writeLocalAgentSecret(controllerDirectory(controllerOptions), opts.stateDir, instanceName);

    const running = await startSupervisor({
      stateDir: opts.stateDir,
      controller: { name: controllerName, options: controllerOptions, port: controllerListen.port },
      agent: {
        name: instanceName,
        options: defaultAgentOptions({
          name: instanceName,
          stateDir: opts.stateDir,
          listenHost: agentListen.host,
          listenPort: agentListen.port,
          controllerUrl: controllerAddr,
          agentSecretFile,
          requestTimeoutMs: DEFAULT_AGENT_REQUEST_TIMEOUT_MS,
          logLevel: opts.logLevel,
          ...(allowInsecureListen ? { allowInsecureListen } : {}),
          ...(zeek ? { zeek } : {}),
        }),
      },
      processOptions: processOptions(opts),
      logLevel: opts.logLevel,
    });
    // eslint-disable-next-line prefer-const -- the signal handler below reads it before it is assigned
    let client: ControllerClient | undefined;
    // eslint-disable-next-line prefer-const -- as with client
    let pushes: ControllerClient | undefined;
    // eslint-disable-next-line prefer-const -- as with client: the handler may run before the view exists
    let stopView: (() => void) | undefined;
    closeOnSignals(async () => {
      process.stdout.write("\nstopping the cluster...\n");
      stopView?.();
      await client?.close();
      await pushes?.close();
      await running.close();
    });

    const deadline = Date.now() + opts.timeout * 1000;
    process.stdout.write(`controller ws://${controllerAddr}, agent ${instanceName}, state in ${join(opts.stateDir)}\n`);
    client = await connectWithRetry(controllerAddr, deadline);

    // Wait for the agent to check in, so staging fills in its address.
    for (;;) {
      const result = await client.getInstances();
      const names = result.data?.type === "vector" ? result.data.value.length : 0;
      if (names > 0) break;
      if (Date.now() > deadline) throw new Error(`agent ${instanceName} did not check in with the controller`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const staged = await client.stageConfiguration(config);
    const stageErrors = staged.filter((r) => !r.success).map((r) => r.error ?? "no reason given");
    if (stageErrors.length) {
      for (const e of stageErrors) process.stderr.write(`error: ${e}\n`);
      await running.close();
      process.exit(1);
    }
    process.stdout.write(`deploying configuration ${config.id} (${config.nodes.length} nodes)...\n`);
    // A controller restarted in the same state directory first redeploys what it had
    // deployed before; ours goes out once that is done.
    let deployed = await client.deploy(opts.timeout * 1000);
    while (deployed.some((r) => /^earlier deployment .* still pending$/.test(r.error ?? "")) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      deployed = await client.deploy(opts.timeout * 1000);
    }
    for (const r of deployed.filter((r) => !r.success)) {
      const outputs = resultNodeOutputs(r);
      process.stderr.write(`${pc.red("failed")}: ${r.node ?? r.instance ?? "deploy"}: ${r.error ?? ""}\n`);
      if (outputs?.stderr) process.stderr.write(`${outputs.stderr}\n`);
    }

    // Live view: follows the controller's notifications until Ctrl-C, heard on a
    // connection of their own (see LiveViewOptions.pushes).
    pushes = await connectWithRetry(controllerAddr, deadline);
    const view = new LiveView(client, {
      pushes,
      tty,
      expected: config.nodes.length,
      write: (text) => process.stdout.write(text),
      onUp: (nodes) =>
        process.stdout.write(
          `${tty ? pc.green("cluster is up") : "cluster is up"}: ${nodes} nodes running. ` +
            `Try \`zmgmt get-nodes --controller ${controllerAddr}\`; Ctrl-C stops everything.\n`,
        ),
    });
    stopView = () => view.stop();
    await view.start();
  });
}
