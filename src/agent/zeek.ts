// Running real Zeek as the cluster's nodes, the way Zeek's own supervisor and zeekctl start
// them: a working directory per node, CLUSTER_NODE, a generated cluster-layout.zeek that
// Zeek's cluster framework loads from ZEEKPATH, `-i` for capturing nodes, the node's
// scripts (`local` unless it names its own), and zmgmt's node script, which gives the agent
// a loopback management endpoint to dial.

import { execFileSync } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { Configuration, Node } from "../management/types.js";
import { compareText } from "../management/validation.js";
import { NodeEnv } from "../node/api.js";

/** zmgmt's Zeek script, loaded into every Zeek node (kept beside the compiled code's root). */
export const ZEEK_NODE_SCRIPT = resolve(import.meta.dirname, "../../zeek/zmgmt/node.zeek");

/** The file Zeek's cluster framework loads (`@load cluster-layout`) when Cluster::nodes is empty. */
export const CLUSTER_LAYOUT_FILE = "cluster-layout.zeek";

/**
 * Written by zeek/zmgmt/node.zeek into the node's directory once its management endpoint
 * listens, so the agent dials at that moment instead of on a retry schedule (Zeek takes
 * seconds to start, and a retry that just missed it cost up to half a second).
 */
export const MANAGEMENT_LISTENING_FILE = ".zmgmt-listening";

/** Zeek's cluster framework refuses to run a node without a cluster backend; zmgmt uses Broker's. */
const CLUSTER_BACKEND_SCRIPT = "frameworks/cluster/backend/broker";

/** Upstream's default for nodes without `scripts`: the site policy. */
const DEFAULT_SCRIPTS = ["local"];

/** The oldest major version whose WebSocket server and events the node script relies on. */
/** Zeek's own environment variables that the agent sets for its Zeek nodes. */
export const ZeekEnv = {
  path: "ZEEKPATH",
  listenAddress: "ZEEK_DEFAULT_LISTEN_ADDRESS",
} as const;

export const MIN_ZEEK_MAJOR = 8;

export interface ZeekInstall {
  /** Absolute path of the `zeek` executable. */
  path: string;
  /** As `zeek --version` prints it, e.g. "8.2.2". */
  version: string;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where an official package or a default source build puts Zeek when it is not on PATH. */
const WELL_KNOWN_ZEEK = ["/opt/zeek/bin/zeek", "/usr/local/zeek/bin/zeek"];

/** `zeek` on PATH, then the packages' usual prefixes; undefined when there is none. */
export function findZeekOnPath(searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = resolve(dir, "zeek");
    if (isExecutableFile(candidate)) return candidate;
  }
  return WELL_KNOWN_ZEEK.find(isExecutableFile);
}

/**
 * Checks that `path` runs a Zeek new enough for zmgmt's node script. Throws an error an
 * operator can act on otherwise.
 */
export function probeZeek(path: string): ZeekInstall {
  const absolute = isAbsolute(path) ? path : resolve(path);
  if (!isExecutableFile(absolute)) throw new Error(`--zeek ${path}: not an executable file`);
  let output: string;
  try {
    output = execFileSync(absolute, ["--version"], { encoding: "utf8", timeout: 15_000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`${absolute} --version failed${stderr ? `: ${stderr}` : ""}`);
  }
  const m = /version\s+(\d+)\.(\d+)(?:\.(\d+))?\S*/.exec(output);
  if (!m) throw new Error(`${absolute} does not look like Zeek: --version printed "${output.trim()}"`);
  const version = m[0].replace(/^version\s+/, "");
  if (Number(m[1]) < MIN_ZEEK_MAJOR) {
    throw new Error(
      `${absolute} is Zeek ${version}; zmgmt needs Zeek ${MIN_ZEEK_MAJOR}.0 or newer (its nodes serve the agent over Cluster::listen_websocket)`,
    );
  }
  return { path: absolute, version };
}

/** A Zeek string literal. */
function zeekString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A Zeek addr literal; IPv6 addresses are bracketed. */
function zeekAddr(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

const NODE_TYPES: Record<Node["role"], string> = {
  NONE: "Cluster::NONE",
  MANAGER: "Cluster::MANAGER",
  LOGGER: "Cluster::LOGGER",
  PROXY: "Cluster::PROXY",
  WORKER: "Cluster::WORKER",
};

/** A node's peers must be able to reach it; an unspecified address reaches this host. */
function reachableHost(host: string | undefined): string {
  return host === undefined || host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
}

/**
 * The cluster layout every Zeek node of `config` loads: Cluster::nodes with each node's
 * role, address, cluster port and metrics port (Zeek serves its Prometheus telemetry on
 * the latter), and, as Zeek's supervisor does, a manager that is not the logger when the
 * cluster has loggers.
 */
export function clusterLayoutScript(config: Configuration): string {
  const hosts = new Map(config.instances.map((i) => [i.name, i.host]));
  const manager = config.nodes.find((n) => n.role === "MANAGER")?.name;
  const hasLoggers = config.nodes.some((n) => n.role === "LOGGER");
  const entries = [...config.nodes]
    .sort((a, b) => compareText(a.name, b.name))
    .map((n) => {
      const fields = [`$node_type=${NODE_TYPES[n.role]}`, `$ip=${zeekAddr(reachableHost(hosts.get(n.instance)))}`];
      if (n.port !== undefined) fields.push(`$p=${n.port}/tcp`);
      if (n.metricsPort !== undefined) fields.push(`$metrics_port=${n.metricsPort}/tcp`);
      if (manager !== undefined && n.role !== "MANAGER") fields.push(`$manager=${zeekString(manager)}`);
      return `\t[${zeekString(n.name)}] = [${fields.join(", ")}],`;
    });
  return [
    "# Generated by the zmgmt agent for each deployment; changes are overwritten.",
    `# Configuration ${config.id}.`,
    "",
    ...(hasLoggers ? ["redef Cluster::manager_is_logger = F;", ""] : []),
    "redef Cluster::nodes = {",
    ...entries,
    "};",
    "",
  ].join("\n");
}

export interface ZeekLaunch {
  command: string[];
  env: Record<string, string>;
}

/**
 * argv and environment of one Zeek node. `baseEnv` is the environment the node inherits
 * (the node's own `env` values included), consulted for ZEEKPATH.
 */
export function zeekLaunch(
  zeek: ZeekInstall,
  node: Node,
  config: Configuration,
  directory: string,
  managementPort: number,
  baseEnv: Record<string, string | undefined>,
): ZeekLaunch {
  const scripts = node.scripts?.length ? node.scripts : DEFAULT_SCRIPTS;
  const command = [
    zeek.path,
    ...(node.interface !== undefined ? ["-i", node.interface] : []),
    CLUSTER_BACKEND_SCRIPT,
    ...scripts,
    ZEEK_NODE_SCRIPT,
  ];
  const env: Record<string, string> = {
    [NodeEnv.name]: node.name,
    [NodeEnv.managementPort]: String(managementPort),
  };
  // Zeek's built-in ZEEKPATH starts with ".", the node's working directory, where its
  // cluster-layout.zeek lies. An explicit ZEEKPATH needs that directory put first.
  const zeekPath = baseEnv[ZeekEnv.path];
  if (zeekPath) env[ZeekEnv.path] = [directory, zeekPath].join(delimiter);
  // Nodes of an instance on a loopback address stay off the network: Broker and the
  // telemetry endpoint listen where ZEEK_DEFAULT_LISTEN_ADDRESS says (all interfaces
  // otherwise, as with any Zeek).
  const host = config.instances.find((i) => i.name === node.instance)?.host;
  if (host !== undefined && isLoopback(host) && baseEnv[ZeekEnv.listenAddress] === undefined) {
    env[ZeekEnv.listenAddress] = host;
  }
  return { command, env };
}

function isLoopback(host: string): boolean {
  return host === "::1" || /^127\./.test(host);
}

/** The directory a Zeek logger rotates into; see zeek/zmgmt/node.zeek. */
export function logQueueDirectory(nodeDirectory: string): string {
  return join(nodeDirectory, "log-queue");
}
