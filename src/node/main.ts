// The default node program (`zmgmt node`): a cluster node that listens on its cluster
// port (so port conflicts are real), serves Prometheus metrics on its metrics port, loads
// its scripts as ES modules, checks in with its agent and answers dispatches.

import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { NodeEnv, type ClusterLayout } from "./api.js";
import { checkClusterLayout, checkNodeConfig, parseJsonEnv } from "./env-schemas.js";
import { ManagedNode, managedNodeOptionsFromEnv, zeekPort } from "./managed-node.js";
import type { Node } from "../management/types.js";
import { SupervisorEnv } from "../supervisor/api.js";

const ROLE_TO_CLUSTER_TYPE: Record<string, string> = {
  MANAGER: "Cluster::MANAGER",
  LOGGER: "Cluster::LOGGER",
  PROXY: "Cluster::PROXY",
  WORKER: "Cluster::WORKER",
};

function listen(server: TcpServer | HttpServer, port: number, host: string, what: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "address already in use" : err.message;
      reject(new Error(`cannot listen on ${what} ${host}:${port}: ${why}`));
    });
    server.listen(port, host, () => resolvePromise());
  });
}

/** Zeek's Cluster::nodes rendering of the layout. */
function clusterNodesValue(layout: ClusterLayout): Record<string, unknown> {
  const manager = Object.entries(layout).find(([, e]) => e.role === "MANAGER")?.[0];
  const out: Record<string, unknown> = {};
  for (const [name, e] of Object.entries(layout)) {
    out[name] = {
      node_type: ROLE_TO_CLUSTER_TYPE[e.role] ?? "Cluster::NONE",
      ip: e.host,
      ...(e.port !== undefined ? { p: zeekPort(e.port) } : { p: { port: 0, proto: "unknown" } }),
      ...(e.interface !== undefined ? { interface: e.interface } : {}),
      ...(manager !== undefined && e.role !== "MANAGER" ? { manager } : {}),
      ...(e.metricsPort !== undefined ? { metrics_port: zeekPort(e.metricsPort) } : {}),
    };
  }
  return out;
}

/** The node's Management::Node record, with upstream's field names. */
function nodeRecordValue(node: Partial<Node>): Record<string, unknown> {
  return {
    name: node.name,
    instance: node.instance,
    role: node.role ? `Supervisor::${node.role}` : undefined,
    p: node.port !== undefined ? zeekPort(node.port) : undefined,
    scripts: node.scripts,
    options: node.options,
    interface: node.interface,
    cpu_affinity: node.cpuAffinity,
    env: node.env ?? {},
    metrics_port: node.metricsPort !== undefined ? zeekPort(node.metricsPort) : undefined,
  };
}

export async function runNode(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const startedAt = Date.now();
  const options = managedNodeOptionsFromEnv(env);
  // Every node is `node …/main.js node` on its command line; the title is what tells them
  // apart in `ps` and top. Linux truncates it to the length of the original command line.
  process.title = `zmgmt node ${options.name}`;
  const config = parseJsonEnv(env, NodeEnv.config, checkNodeConfig, {});
  const layout = parseJsonEnv(env, NodeEnv.cluster, checkClusterLayout, {});
  const role = env[NodeEnv.role] ?? config.role ?? "NONE";
  const port = env[NodeEnv.port] ? Number(env[NodeEnv.port]) : config.port;
  const metricsPort = env[NodeEnv.metricsPort] ? Number(env[NodeEnv.metricsPort]) : config.metricsPort;
  const self = layout[options.name];
  const host = self && self.host !== "0.0.0.0" ? self.host : "0.0.0.0";

  const node = new ManagedNode(options);
  node
    .setValue("Cluster::node", options.name)
    .setValue("Cluster::local_node_type", ROLE_TO_CLUSTER_TYPE[role] ?? "Cluster::NONE")
    .setValue("Cluster::nodes", clusterNodesValue(layout))
    .setValue("zmgmt::node", nodeRecordValue({ ...config, name: options.name }))
    .setValue("zmgmt::role", role)
    .setValue("zmgmt::pid", process.pid)
    .setValue("zmgmt::uptime", () => (Date.now() - startedAt) / 1000)
    .setValue("zmgmt::directory", () => process.cwd());
  // Values set through the configuration: env first, options override (both are strings).
  for (const [k, v] of Object.entries(config.env ?? {})) node.setValue(k, v);
  for (const o of config.options ?? []) node.setValue(o.name, o.value);

  const servers: Array<TcpServer | HttpServer> = [];
  const shutdown = async (code: number): Promise<never> => {
    await Promise.race([node.close(), new Promise((r) => setTimeout(r, 500))]);
    for (const s of servers) s.close();
    process.exit(code);
  };
  process.on("SIGTERM", () => void shutdown(0));
  process.on("SIGINT", () => void shutdown(0));

  // Cooperative orphan check: a node whose supervisor died stops too, like upstream's
  // once-a-second parent check.
  const supervisorPid = Number(env[SupervisorEnv.supervisorPid] ?? 0);
  if (supervisorPid > 0) {
    setInterval(() => {
      try {
        process.kill(supervisorPid, 0);
      } catch {
        void shutdown(0);
      }
    }, 1000).unref();
  }

  if (port !== undefined) {
    const cluster = createTcpServer((socket) => {
      socket.end(`${JSON.stringify({ node: options.name, role, pid: process.pid })}\n`);
      socket.on("error", () => undefined);
    });
    await listen(cluster, port, host, "cluster port");
    servers.push(cluster);
  }
  if (metricsPort !== undefined) {
    // The port is bound at start so conflicts surface at once; the metrics library loads on
    // the first scrape, which keeps node start-up (and so crash recovery) quick.
    let registry: Promise<import("prom-client").Registry> | undefined;
    const loadRegistry = async (): Promise<import("prom-client").Registry> => {
      const prom = await import("prom-client");
      const r = new prom.Registry();
      r.setDefaultLabels({ node: options.name, role });
      prom.collectDefaultMetrics({ register: r });
      return r;
    };
    const metrics = createHttpServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404);
        res.end();
        return;
      }
      registry ??= loadRegistry();
      void registry
        .then(async (r) => {
          const text = await r.metrics();
          res.writeHead(200, { "content-type": r.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
    });
    await listen(metrics, metricsPort, host, "metrics port");
    servers.push(metrics);
  }

  for (const script of (env[NodeEnv.scripts] ?? "").split("\n").filter(Boolean)) {
    const path = isAbsolute(script) ? script : resolve(process.cwd(), script);
    let mod: { init?: (n: ManagedNode) => unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as typeof mod;
    } catch (err) {
      throw new Error(`cannot load script ${script}: ${(err as Error).message}`);
    }
    if (typeof mod.init === "function") await mod.init(node);
  }

  console.log(`node ${options.name} (${role}) is live, pid ${process.pid}${port !== undefined ? `, cluster port ${port}` : ""}`);
  node.on("hello", () => console.log(`node ${options.name} checked in with its agent`));
  node.on("down", (why) => console.log(`node ${options.name} lost its agent: ${why}`));
  node.start();
}
