// What the shipped monitoring files (contrib/grafana, contrib/prometheus) query, so tests
// can check every name against what real processes serve.

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** Metric family names the shipped Prometheus rules and Grafana dashboard query, by prefix. */
export function contribMetricNames(prefix: "zmgmt" | "zeek"): string[] {
  const root = resolve(import.meta.dirname, "../../contrib");
  const text = ["grafana/zmgmt-dashboard.json", "prometheus/zmgmt-alerts.yml"].map((f) => readFileSync(join(root, f), "utf8")).join("\n");
  const names = text.match(new RegExp(`\\b${prefix}_[a-z_]+\\b`, "g")) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, "")))].sort();
}
