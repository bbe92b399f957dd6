// `zmgmt netstats`: packets received, dropped and seen on the link per worker, as zeekctl's
// netstats shows them, read from each Zeek worker's own telemetry by its agent.

import pc from "picocolors";
import type { AgentNodeStats, NodeStats } from "../agent/api.js";
import type { Result } from "../management/types.js";
import { compareText } from "../management/validation.js";

export interface NetstatsRow {
  node: string;
  instance: string;
  state: string;
  recvd?: number;
  dropped?: number;
  link?: number;
  /** dropped / (recvd + dropped), in percent, as Zeek reports it when it exits. */
  drop_pct?: number;
  /** Why there are no numbers (e.g. the built-in node does not capture). */
  unavailable?: string;
}

export interface RenderedNetstats {
  rows: NetstatsRow[];
  /** Instances that did not answer, and other failures. */
  errors: string[];
}

export function netstatsRows(results: Result[]): RenderedNetstats {
  const rows: NetstatsRow[] = [];
  const errors: string[] = [];
  for (const r of results) {
    if (!r.success) {
      errors.push(r.instance !== undefined ? `instance ${r.instance}: ${r.error ?? "failed"}` : (r.error ?? "failed"));
      continue;
    }
    const stats = parse(r);
    if (!stats) {
      errors.push(`instance ${r.instance ?? "?"}: unreadable answer`);
      continue;
    }
    for (const n of stats.nodes) if (n.role === "WORKER") rows.push(row(n));
  }
  rows.sort((a, b) => compareText(a.node, b.node));
  return { rows, errors };
}

function parse(r: Result): AgentNodeStats | undefined {
  if (r.data?.type !== "string") return undefined;
  try {
    const value = JSON.parse(r.data.value) as AgentNodeStats;
    return Array.isArray(value.nodes) ? value : undefined;
  } catch {
    return undefined;
  }
}

function row(n: NodeStats): NetstatsRow {
  const c = n.capture;
  const base = { node: n.node, instance: n.instance, state: n.state };
  if (!c || c.unavailable !== undefined || c.received === undefined) {
    return { ...base, unavailable: c?.unavailable ?? "no capture statistics" };
  }
  const out: NetstatsRow = { ...base, recvd: c.received };
  if (c.dropped !== undefined) {
    out.dropped = c.dropped;
    const seen = c.received + c.dropped;
    out.drop_pct = seen > 0 ? (100 * c.dropped) / seen : 0;
  }
  if (c.link !== undefined) out.link = c.link;
  return out;
}

/** One line per worker, zeekctl style; workers that drop packets stand out in colour. */
export function netstatsText(rows: NetstatsRow[], color: boolean): string {
  const colors = pc.createColors(color);
  const width = Math.max(0, ...rows.map((r) => r.node.length)) + 1;
  const lines = rows.map((r) => {
    const name = `${r.node}:`.padEnd(width);
    if (r.recvd === undefined) return `${name} ${colors.dim(`n/a: ${r.unavailable ?? "no capture statistics"}`)}`;
    const dropped = r.dropped === undefined ? "dropped=n/a" : `dropped=${r.dropped}`;
    const pct = r.drop_pct === undefined ? "" : ` (${r.drop_pct.toFixed(2)}%)`;
    const drops = `${dropped}${pct}`;
    const link = r.link === undefined ? "link=n/a" : `link=${r.link}`;
    return `${name} recvd=${r.recvd} ${(r.dropped ?? 0) > 0 ? colors.bold(colors.red(drops)) : drops} ${link}`;
  });
  return lines.length === 0 ? "no workers\n" : lines.join("\n") + "\n";
}
