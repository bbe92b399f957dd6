// What the agent knows about each node for statistics: state and role (node table),
// restarts and pid (the supervisor, which outlives agent restarts), crashes (counted here),
// and, on request, capture statistics read from each worker's own Prometheus endpoint.
// The agent's /metrics and the controller's node_stats request both come from here.

import type { Configuration } from "../management/types.js";
import { loopbackFor } from "../management/hosts.js";
import { parsePrometheusText, sumSamples } from "../management/metrics.js";
import type { SupervisedNodeStatus } from "../supervisor/api.js";
import type { CaptureStats, NodeStats } from "./api.js";
import type { AgentContext } from "./context.js";

/** Zeek's packet counters (policy/misc/stats, loaded by the default `local`). */
export const ZEEK_CAPTURE_METRICS = {
  received: "zeek_net_received_packets_total",
  dropped: "zeek_net_dropped_packets_total",
  link: "zeek_net_link_packets_total",
} as const;

const SCRAPE_TIMEOUT_MS = 2000;
const NOT_ZEEK = "not a Zeek node: the built-in node does not capture";

/** Crashes per node name, since the agent process started. */
export class CrashCounts {
  private readonly counts = new Map<string, number>();

  crashed(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }
}

export async function collectNodeStats(
  ctx: Pick<AgentContext, "nodes" | "supervisor">,
  crashes: CrashCounts,
  config: Configuration | undefined,
  capture: boolean,
): Promise<NodeStats[]> {
  let supervised: SupervisedNodeStatus[] = [];
  try {
    supervised = await ctx.supervisor.status("");
  } catch {
    // Without the supervisor the node table still knows states; restarts read 0.
  }
  const bySupervisor = new Map(supervised.map((s) => [s.config.name, s]));
  const hosts = new Map((config?.instances ?? []).map((i) => [i.name, i.host]));
  const stats: NodeStats[] = [];
  // Only Zeek nodes have a management port; the others are not asked over HTTP at all, so
  // a slow scrape can never make a built-in node look unreachable.
  const zeekNodes = new Set<string>();
  for (const name of ctx.nodes.names().sort()) {
    const rec = ctx.nodes.get(name);
    if (!rec) continue;
    const sup = bySupervisor.get(name);
    // Nodes listen on their instance's address.
    const host = loopbackFor(hosts.get(rec.node.instance));
    const pid = rec.pid ?? sup?.pid;
    if (rec.managementPort !== undefined) zeekNodes.add(name);
    stats.push({
      node: name,
      instance: rec.node.instance,
      role: rec.node.role,
      state: rec.state,
      ...(pid !== undefined ? { pid } : {}),
      restarts: sup?.restarts ?? 0,
      crashes: crashes.get(name),
      ...(rec.node.metricsPort !== undefined ? { metricsHost: host, metricsPort: rec.node.metricsPort } : {}),
    });
  }
  if (capture) {
    await Promise.all(
      stats
        .filter((s) => s.role === "WORKER")
        .map(async (s) => {
          s.capture = zeekNodes.has(s.node) ? await captureStats(s) : { unavailable: NOT_ZEEK };
        }),
    );
  }
  return stats;
}

async function captureStats(s: NodeStats): Promise<CaptureStats> {
  if (s.metricsPort === undefined) return { unavailable: "no metrics port" };
  if (s.state !== "RUNNING") return { unavailable: `node is ${s.state}` };
  const host = s.metricsHost!.includes(":") ? `[${s.metricsHost}]` : s.metricsHost!;
  let text: string;
  try {
    const res = await fetch(`http://${host}:${s.metricsPort}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!res.ok) return { unavailable: `metrics endpoint answered HTTP ${res.status}` };
    text = await res.text();
  } catch (err) {
    return { unavailable: `metrics endpoint unreachable: ${err instanceof Error ? err.message : String(err)}` };
  }
  const samples = parsePrometheusText(text);
  if (!samples.some((x) => x.name.startsWith("zeek_"))) return { unavailable: NOT_ZEEK };
  const received = sumSamples(samples, ZEEK_CAPTURE_METRICS.received);
  if (received === undefined) return { unavailable: "Zeek reports no packet statistics (load misc/stats)" };
  const dropped = sumSamples(samples, ZEEK_CAPTURE_METRICS.dropped);
  const link = sumSamples(samples, ZEEK_CAPTURE_METRICS.link);
  return { received, ...(dropped !== undefined ? { dropped } : {}), ...(link !== undefined ? { link } : {}) };
}
