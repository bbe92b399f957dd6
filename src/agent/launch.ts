// How the agent turns a node of a configuration into a process the supervisor runs: the
// node program (Zeek, the built-in node or a per-node override), its directory and the
// environment that tells it who it is and how to reach its agent.

import { rmSync, writeFileSync } from "node:fs";
import { ensurePrivateDir } from "../management/private-files.js";
import { join } from "node:path";
import { shlexSplit } from "../management/shlex.js";
import type { Configuration, Node } from "../management/types.js";
import { NodeEnv, type ClusterLayout } from "../node/api.js";
import type { SupervisedNodeConfig } from "../supervisor/api.js";
import { NODE_COMMAND_ENV } from "./api.js";
import { deploymentFingerprint } from "./config-equality.js";
import { encodeNodeMeta } from "./node-meta.js";
import type { AgentOptions } from "./options.js";
import { pickFreePort } from "../management/free-port.js";
import { CLUSTER_LAYOUT_FILE, MANAGEMENT_LISTENING_FILE, clusterLayoutScript, zeekLaunch } from "./zeek.js";

export type LaunchOptions = Pick<AgentOptions, "name" | "stateDir" | "nodeCommand" | "nodeUrl" | "nodeToken" | "nodeBaseEnv" | "zeek">;

export interface NodeLaunch {
  config: SupervisedNodeConfig;
  /** Zeek nodes: the loopback port their management endpoint will listen on. */
  managementPort?: number;
  /** Zeek nodes: the file the node writes once that endpoint listens. */
  listeningFile?: string;
}

export async function nodeLaunch(options: LaunchOptions, node: Node, config: Configuration, layout: ClusterLayout): Promise<NodeLaunch> {
  const directory = join(options.stateDir, "nodes", node.name);
  const override = node.env[NODE_COMMAND_ENV];
  const zeek = options.zeek;
  if (zeek && !override) {
    ensurePrivateDir(directory);
    writeFileSync(join(directory, CLUSTER_LAYOUT_FILE), clusterLayoutScript(config));
    // The previous process's word that it listened is no news about this one.
    const listeningFile = join(directory, MANAGEMENT_LISTENING_FILE);
    rmSync(listeningFile, { force: true });
    const managementPort = await pickFreePort("127.0.0.1");
    const launch = zeekLaunch(zeek, node, config, directory, managementPort, { ...process.env, ...node.env });
    return {
      config: {
        name: node.name,
        command: launch.command,
        directory,
        env: { ...(options.nodeBaseEnv ?? {}), ...node.env, ...launch.env },
        ...(node.cpuAffinity !== undefined ? { cpuAffinity: node.cpuAffinity } : {}),
        managementRole: "",
        meta: encodeNodeMeta({ node, managementPort, deployment: deploymentFingerprint(config) }),
      },
      managementPort,
      listeningFile,
    };
  }
  const env: Record<string, string> = {
    ...(options.nodeBaseEnv ?? {}),
    ...node.env,
    [NodeEnv.name]: node.name,
    [NodeEnv.role]: node.role,
    [NodeEnv.cluster]: JSON.stringify(layout),
    [NodeEnv.config]: JSON.stringify(node),
    [NodeEnv.agentUrl]: options.nodeUrl,
    [NodeEnv.agentName]: options.name,
    [NodeEnv.agentToken]: options.nodeToken,
  };
  if (node.port !== undefined) env[NodeEnv.port] = String(node.port);
  if (node.metricsPort !== undefined) env[NodeEnv.metricsPort] = String(node.metricsPort);
  if (node.interface !== undefined) env[NodeEnv.interface] = node.interface;
  if (node.scripts?.length) env[NodeEnv.scripts] = node.scripts.join("\n");
  const url = new URL(options.nodeUrl);
  env[NodeEnv.agentAddr] = url.hostname;
  env[NodeEnv.agentPort] = url.port;
  return {
    config: {
      name: node.name,
      // Shell words, as the INI `env` values themselves are read.
      command: override ? shlexSplit(override) : options.nodeCommand,
      directory,
      env,
      ...(node.cpuAffinity !== undefined ? { cpuAffinity: node.cpuAffinity } : {}),
      managementRole: "",
      meta: encodeNodeMeta({ node, deployment: deploymentFingerprint(config) }),
    },
  };
}

export function clusterLayout(config: Configuration): ClusterLayout {
  const hosts = new Map(config.instances.map((i) => [i.name, i.host]));
  const layout: ClusterLayout = {};
  for (const n of config.nodes) {
    layout[n.name] = {
      role: n.role,
      host: hosts.get(n.instance) ?? "0.0.0.0",
      ...(n.port !== undefined ? { port: n.port } : {}),
      ...(n.interface !== undefined ? { interface: n.interface } : {}),
      ...(n.metricsPort !== undefined ? { metricsPort: n.metricsPort } : {}),
    };
  }
  return layout;
}
