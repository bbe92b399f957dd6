// The Management framework's records as the page uses them: Broker records arrive as
// vectors whose fields are in upstream's declaration order (plain() has already turned them
// into arrays), and zmgmt's own records follow the same rule.

const CONTROLLER = "Management::Controller::API::";
const ZMGMT = "Zmgmt::Controller::API::";

export const Api = {
  getInstances: `${CONTROLLER}get_instances_request`,
  getNodes: `${CONTROLLER}get_nodes_request`,
  getConfiguration: `${CONTROLLER}get_configuration_request`,
  deploy: `${CONTROLLER}deploy_request`,
  restart: `${CONTROLLER}restart_request`,
  nodeStatus: `${ZMGMT}get_node_status_request`,
  nodeLogs: `${ZMGMT}node_logs_request`,
  deployHistory: `${ZMGMT}get_deploy_history_request`,
  netstats: `${ZMGMT}get_netstats_request`,
};

export const Notify = {
  change: "Management::Agent::API::notify_change",
  log: "Management::Agent::API::notify_log",
  error: "Management::Agent::API::notify_error",
};

export function result(r) {
  const [reqid, success, instance, data, error, node] = r;
  return { reqid, success, instance, data, error, node };
}

export function nodeStatus(v) {
  const [node, state, mgmtRole, clusterRole, pid, port, metricsPort] = v;
  return { node, state, mgmtRole, clusterRole, pid, port, metricsPort };
}

export function instance(v) {
  const [name, host, listenPort] = v;
  return { name, host, listenPort };
}

export function clusterNode(v) {
  const [name, inst, role, state, port, scripts, options, iface, cpuAffinity, env, metricsPort] = v;
  return { name, instance: inst, role, state, port, scripts, options, interface: iface, cpuAffinity, env, metricsPort };
}

export function configuration(v) {
  const [id, instances, nodes] = v;
  return { id, instances: instances.map(instance), nodes: nodes.map(clusterNode) };
}

export function processStatus(v) {
  const [node, inst, state, role, pid, startedAt, uptimeMs, restarts, lastExitCode, lastExitSignal, lastExitAt, cpuPercent, rssBytes] = v;
  return {
    node,
    instance: inst,
    state,
    role,
    pid,
    startedAt,
    uptimeMs,
    restarts,
    lastExitCode,
    lastExitSignal,
    lastExitAt,
    cpuPercent,
    rssBytes,
  };
}

export function nodeLogs(v) {
  const [node, inst, stream, lines, cursor, truncated] = v;
  return { node, instance: inst, stream, lines, cursor, truncated };
}

export function deployRecord(v) {
  const [reqid, configId, startedAt, finishedAt, outcome, internal, failedNodes, error] = v;
  return { reqid, configId, startedAt, finishedAt, outcome, internal, failedNodes, error };
}

/** A configuration as zeek-client's INI, so the diff reads like the file operators edit. */
export function configurationText(config) {
  if (!config) return "";
  const lines = ["[instances]"];
  for (const i of [...config.instances].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(i.listenPort !== undefined ? `${i.name} = ${i.host}:${i.listenPort}` : i.name);
  }
  for (const n of [...config.nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push("", `[${n.name}]`, `instance = ${n.instance}`, `role = ${n.role.toLowerCase()}`);
    if (n.port !== undefined) lines.push(`port = ${n.port}`);
    if (n.interface !== undefined) lines.push(`interface = ${n.interface}`);
    if (n.cpuAffinity !== undefined) lines.push(`cpu_affinity = ${n.cpuAffinity}`);
    if (n.scripts?.length) lines.push(`scripts = ${n.scripts.join(" ")}`);
    if (n.env?.length) lines.push(`env = ${n.env.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`);
    if (n.metricsPort !== undefined) lines.push(`metrics_port = ${n.metricsPort}`);
  }
  return lines.join("\n");
}

/**
 * A line diff (longest common subsequence): [{op: " " | "-" | "+", text}], old lines
 * marked "-", new ones "+". Configurations are small, so the quadratic table is fine.
 */
export function lineDiff(oldText, newText) {
  const a = oldText === "" ? [] : oldText.split("\n");
  const b = newText === "" ? [] : newText.split("\n");
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: " ", text: a[i++] });
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: "-", text: a[i++] });
    else out.push({ op: "+", text: b[j++] });
  }
  while (i < n) out.push({ op: "-", text: a[i++] });
  while (j < m) out.push({ op: "+", text: b[j++] });
  return out;
}

/**
 * `deployed` without the ports the controller filled in: those of nodes that have none in
 * `staged` (the controller assigns them when it readies a configuration for deployment).
 */
export function withoutAssignedPorts(deployed, staged) {
  if (!deployed || !staged) return deployed;
  const given = new Map(staged.nodes.map((n) => [n.name, n]));
  return {
    ...deployed,
    nodes: deployed.nodes.map((n) => {
      const s = given.get(n.name);
      if (!s) return n;
      return {
        ...n,
        port: s.port === undefined ? undefined : n.port,
        metricsPort: s.metricsPort === undefined ? undefined : n.metricsPort,
      };
    }),
  };
}

/** A node from get_nodes with the process facts of zmgmt's status request, where known. */
export function withProcess(node, facts) {
  if (!facts || (node.pid !== undefined && facts.pid !== node.pid)) return node;
  // get_nodes stays the authority on who the node is and its state.
  const { uptimeMs, restarts, lastExitCode, lastExitSignal, lastExitAt, cpuPercent, rssBytes, startedAt } = facts;
  return { ...node, uptimeMs, restarts, lastExitCode, lastExitSignal, lastExitAt, cpuPercent, rssBytes, startedAt };
}

/**
 * Capture statistics by node from a get_netstats answer: one Result per instance whose data
 * is the JSON of the agent's node statistics. Only nodes that report capture are listed.
 */
export function captureByNode(results) {
  const out = new Map();
  for (const raw of results) {
    const r = result(raw);
    if (!r.success || typeof r.data !== "string") continue;
    let stats;
    try {
      stats = JSON.parse(r.data);
    } catch {
      continue;
    }
    for (const n of Array.isArray(stats.nodes) ? stats.nodes : []) if (n.capture) out.set(n.node, n.capture);
  }
  return out;
}

/** Capture health as zmgmt netstats words it: dropped / (received + dropped), in percent. */
export function captureSummary(c) {
  if (!c) return { text: "", drops: false };
  if (c.unavailable !== undefined) return { text: "n/a", title: c.unavailable, drops: false };
  const received = c.received ?? 0;
  const dropped = c.dropped ?? 0;
  const pct = received + dropped > 0 ? ` (${((100 * dropped) / (received + dropped)).toFixed(2)}%)` : "";
  const link = c.link !== undefined ? ` link ${c.link}` : "";
  return { text: `recvd ${received} dropped ${dropped}${pct}${link}`, drops: dropped > 0 };
}

const ROLE_ORDER = ["MANAGER", "LOGGER", "PROXY", "WORKER"];

/** Nodes grouped by instance, then by role in cluster order: [[instance, [[role, nodes]]]]. */
export function groupNodes(nodes) {
  const byInstance = new Map();
  for (const n of nodes) {
    if (!byInstance.has(n.instance)) byInstance.set(n.instance, new Map());
    const roles = byInstance.get(n.instance);
    if (!roles.has(n.role)) roles.set(n.role, []);
    roles.get(n.role).push(n);
  }
  const rank = (r) => (ROLE_ORDER.includes(r) ? ROLE_ORDER.indexOf(r) : ROLE_ORDER.length);
  return [...byInstance.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([inst, roles]) => [
      inst,
      [...roles.entries()]
        .sort(([a], [b]) => rank(a) - rank(b))
        .map(([role, list]) => [role, list.sort((x, y) => x.name.localeCompare(y.name))]),
    ]);
}

export function formatDuration(ms) {
  if (ms === undefined) return "";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function formatBytes(n) {
  if (n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function formatTime(ms) {
  return ms === undefined ? "" : new Date(ms).toLocaleString();
}

export function lastExit(s) {
  if (s.lastExitAt === undefined && s.lastExitCode === undefined && s.lastExitSignal === undefined) return "";
  const how = s.lastExitSignal ? s.lastExitSignal : `exit ${s.lastExitCode ?? "?"}`;
  return s.lastExitAt !== undefined ? `${how}, ${formatDuration(Date.now() - s.lastExitAt)} ago` : how;
}
