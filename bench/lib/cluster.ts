// Real controller and agent processes from the built CLI, and the cluster configurations
// the benchmarks deploy.

import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { instanceSecret, writeSecretFile } from "../../src/management/agent-auth.js";
import { clusterLayout } from "../../src/agent/agent.js";
import { NodeEnv } from "../../src/node/api.js";
import { SupervisorEnv } from "../../src/supervisor/api.js";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../../src/client/controller-client.js";
import type { Configuration, Node, NodeStatus } from "../../src/management/types.js";
import { canConnect, freePort, freePortRange, waitFor, type Proc, type Scratch } from "./proc.js";

export interface RunningController {
  proc: Proc;
  port: number;
  stateDir: string;
  logFile: string;
  brokerStartPort: number;
  metricsStartPort: number;
  /** Agents prove their instance with a secret derived from this one. */
  masterSecret: string;
}

export async function startController(
  scratch: Scratch,
  opts: { requestTimeoutSec: number; portsNeeded: number; nodeArgs?: string[]; name?: string; args?: string[] },
): Promise<RunningController> {
  const port = await freePort();
  const taken = new Set<number>([port]);
  const brokerStartPort = await freePortRange(8, taken);
  const metricsStartPort = await freePortRange(opts.portsNeeded, taken);
  const name = opts.name ?? "controller";
  const stateDir = join(scratch.dir, name);
  const masterSecret = randomBytes(32).toString("hex");
  const masterSecretFile = join(scratch.dir, `${name}-agent-master-secret`);
  writeSecretFile(masterSecretFile, masterSecret);
  const proc = scratch.spawnCli(
    name,
    [
      "controller",
      "--name",
      name,
      "--listen",
      `127.0.0.1:${port}`,
      "--state-dir",
      stateDir,
      "--broker-start-port",
      String(brokerStartPort),
      "--metrics-start-port",
      String(metricsStartPort),
      "--request-timeout",
      String(opts.requestTimeoutSec),
      "--agent-master-secret-file",
      masterSecretFile,
      ...(opts.args ?? []),
    ],
    opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {},
  );
  await waitFor(() => canConnect(port), 20_000, `controller on port ${port}`);
  return {
    proc,
    port,
    stateDir,
    logFile: join(stateDir, "nodes", name, `management-${name}.log`),
    brokerStartPort,
    metricsStartPort,
    masterSecret,
  };
}

export interface RunningAgent {
  name: string;
  proc: Proc;
  port: number;
  stateDir: string;
  logFile: string;
  supervisorLogFile: string;
}

export async function startAgent(
  scratch: Scratch,
  opts: { name: string; controller: RunningController; args: string[]; env?: Record<string, string> },
): Promise<RunningAgent> {
  const port = await freePort();
  const stateDir = join(scratch.dir, `agent-${opts.name}`);
  const secretFile = join(stateDir, "agent-secret");
  writeSecretFile(secretFile, instanceSecret(opts.controller.masterSecret, opts.name));
  const proc = scratch.spawnCli(
    `agent-${opts.name}`,
    [
      "agent",
      "--name",
      opts.name,
      "--state-dir",
      stateDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--controller",
      `127.0.0.1:${opts.controller.port}`,
      "--agent-secret-file",
      secretFile,
      ...opts.args,
    ],
    opts.env ? { env: opts.env } : {},
  );
  await waitFor(() => canConnect(port), 20_000, `agent ${opts.name} on port ${port}`);
  return {
    name: opts.name,
    proc,
    port,
    stateDir,
    logFile: join(stateDir, "nodes", opts.name, `management-${opts.name}.log`),
    supervisorLogFile: join(stateDir, "nodes", "supervisor", "management-supervisor.log"),
  };
}

export async function connectClient(port: number, requestTimeoutMs = 60_000): Promise<ControllerClient> {
  return ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs, connectTimeoutMs: 20_000 });
}

export async function waitInstances(client: ControllerClient, n: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (resultInstances(await client.getInstances()) ?? []).length === n, timeoutMs, `${n} instances`, 100);
}

export function clusterNode(name: string, instance: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

/**
 * 1 manager + 1 logger + 2 proxies + `workers` workers. With several instances the
 * management roles go to different instances first and workers are dealt round-robin.
 */
export function standardConfig(instances: string[], workers: number, nodeEnv: Record<string, string> = {}): Configuration {
  const at = (i: number): string => instances[i % instances.length]!;
  const nodes: Node[] = [
    clusterNode("manager", at(0), "MANAGER", { env: { ...nodeEnv } }),
    clusterNode("logger-01", at(1), "LOGGER", { env: { ...nodeEnv } }),
    clusterNode("proxy-01", at(2), "PROXY", { env: { ...nodeEnv } }),
    clusterNode("proxy-02", at(3), "PROXY", { env: { ...nodeEnv } }),
  ];
  for (let w = 0; w < workers; w++) {
    nodes.push(clusterNode(`worker-${String(w + 1).padStart(2, "0")}`, at(w), "WORKER", { interface: "lo", env: { ...nodeEnv } }));
  }
  return { id: randomUUID(), instances: instances.map((name) => ({ name, host: "0.0.0.0" })), nodes };
}

export function emptyConfig(instances: string[]): Configuration {
  return { id: randomUUID(), instances: instances.map((name) => ({ name, host: "0.0.0.0" })), nodes: [] };
}

/** Cluster nodes (not agents) per name, from a get_nodes answer. */
export async function clusterNodeStates(client: ControllerClient): Promise<Map<string, NodeStatus & { instance: string }>> {
  const out = new Map<string, NodeStatus & { instance: string }>();
  for (const r of await client.getNodes()) {
    for (const s of resultNodeStatuses(r) ?? []) if (s.mgmtRole === "NONE") out.set(s.node, { ...s, instance: r.instance! });
  }
  return out;
}

export async function stageOrThrow(client: ControllerClient, config: Configuration): Promise<void> {
  const staged = await client.stageConfiguration(config);
  const bad = staged.filter((r) => !r.success);
  if (bad.length) throw new Error(`staging failed: ${bad.map((r) => r.error).join("; ")}`);
}

/** The environment an agent gives a node (see the agent's supervisedConfig), minus its token. */
export function floorNodeEnv(config: Configuration, nodeName: string, agentUrl: string): Record<string, string> {
  const node = config.nodes.find((n) => n.name === nodeName)!;
  const url = new URL(agentUrl);
  const env: Record<string, string> = {
    ...node.env,
    [NodeEnv.name]: node.name,
    [NodeEnv.role]: node.role,
    [NodeEnv.cluster]: JSON.stringify(clusterLayout(config)),
    [NodeEnv.config]: JSON.stringify(node),
    [NodeEnv.agentUrl]: agentUrl,
    [NodeEnv.agentName]: node.instance,
    [NodeEnv.agentAddr]: url.hostname,
    [NodeEnv.agentPort]: url.port,
    [SupervisorEnv.supervisorPid]: String(process.pid),
  };
  if (node.port !== undefined) env[NodeEnv.port] = String(node.port);
  if (node.metricsPort !== undefined) env[NodeEnv.metricsPort] = String(node.metricsPort);
  if (node.interface !== undefined) env[NodeEnv.interface] = node.interface;
  return env;
}
