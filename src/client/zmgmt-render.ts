// How zmgmt's own requests read: the status table (`zmgmt status`, `zmgmt top`), the outcome
// of stop/start, and their JSON. These commands have no zeek-client counterpart, so their
// JSON is zmgmt's own: the records of the API, in camelCase.

import type { Result } from "../management/types.js";
import { UNKNOWN_NODE, type NodeProcessStatus } from "../management/zmgmt-records.js";
import { resultProcessStatuses } from "./controller-client.js";
import { didYouMean } from "./suggest.js";
import { colorsFor, newTable, stateColor, type TableOptions } from "./tables.js";

/** A failed result, as one line a person can act on. */
export interface RequestError {
  node?: string;
  instance?: string;
  error: string;
}

/** The deployed node names an "unknown cluster node" result carries. */
function knownNames(result: Result): string[] {
  const d = result.data;
  if (d?.type !== "vector") return [];
  return d.value.flatMap((v) => (v.type === "string" ? [v.value] : []));
}

/** Failed results as errors; an unknown node's error names the closest deployed nodes. */
export function requestError(result: Result): RequestError {
  let error = result.error ?? "failed";
  if (error === UNKNOWN_NODE && result.node !== undefined) {
    const names = knownNames(result);
    const close = didYouMean(result.node, names);
    error = close
      ? `unknown node "${result.node}"${close}`
      : `unknown node "${result.node}"; the cluster's nodes are ${names.length ? names.join(", ") : "none"}`;
  }
  return {
    ...(result.node !== undefined ? { node: result.node } : {}),
    ...(result.instance !== undefined ? { instance: result.instance } : {}),
    error,
  };
}

export function errorText(e: RequestError): string {
  if (e.error.startsWith("unknown node")) return e.error;
  const where = e.node ?? e.instance;
  return where !== undefined ? `${where}: ${e.error}` : e.error;
}

export interface StatusView {
  nodes: NodeProcessStatus[];
  errors: RequestError[];
}

export function statusView(results: Result[]): StatusView {
  const nodes: NodeProcessStatus[] = [];
  const errors: RequestError[] = [];
  for (const r of results) {
    if (!r.success) errors.push(requestError(r));
    else nodes.push(...(resultProcessStatuses(r) ?? []));
  }
  nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { nodes, errors };
}

/** 0 when every node runs, 1 when a request failed, 3 when it answered but not every node is RUNNING. */
export function statusExitCode(view: StatusView): number {
  if (view.errors.length > 0) return 1;
  return view.nodes.length > 0 && view.nodes.every((n) => n.state === "RUNNING") ? 0 : 3;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatLastExit(n: NodeProcessStatus, now: number): string {
  if (n.lastExitAt === undefined && n.lastExitCode === undefined && n.lastExitSignal === undefined) return "";
  const how = n.lastExitSignal !== undefined ? n.lastExitSignal : `code ${n.lastExitCode ?? "?"}`;
  return n.lastExitAt !== undefined ? `${how}, ${formatDuration(Math.max(0, now - n.lastExitAt))} ago` : how;
}

export function statusTable(view: StatusView, options: TableOptions = {}, now = Date.now()): string {
  const c = colorsFor(options);
  const parts: string[] = [];
  if (view.nodes.length > 0) {
    const table = newTable(["node", "instance", "role", "state", "pid", "uptime", "restarts", "last exit", "cpu", "rss"], options);
    for (const n of view.nodes) {
      table.push([
        c.bold(n.node),
        n.instance,
        n.role.toLowerCase(),
        stateColor(c, n.state),
        n.pid !== undefined ? String(n.pid) : "",
        n.uptimeMs !== undefined ? formatDuration(n.uptimeMs) : "",
        n.restarts > 0 ? c.yellow(String(n.restarts)) : "0",
        formatLastExit(n, now),
        n.cpuPercent !== undefined ? `${n.cpuPercent.toFixed(1)}%` : "",
        n.rssBytes !== undefined ? formatBytes(n.rssBytes) : "",
      ]);
    }
    parts.push(table.toString());
  } else if (view.errors.length === 0) {
    parts.push(c.dim("no nodes"));
  }
  for (const e of view.errors) parts.push(`${c.red("error:")} ${errorText(e)}`);
  return parts.join("\n") + "\n";
}

export function statusJson(view: StatusView): string {
  return JSON.stringify(view, null, 2) + "\n";
}

export interface NodeOutcome {
  node: string;
  instance?: string;
  success: boolean;
  detail?: string;
}

export interface OutcomeView {
  nodes: NodeOutcome[];
  errors: RequestError[];
}

/** stop/start answers: one outcome per node, failures that name no node as errors. */
export function outcomeView(results: Result[]): OutcomeView {
  const nodes: NodeOutcome[] = [];
  const errors: RequestError[] = [];
  for (const r of results) {
    if (r.node === undefined || r.error === UNKNOWN_NODE) {
      if (!r.success) errors.push(requestError(r));
      continue;
    }
    const detail = r.error ?? (r.data?.type === "string" ? r.data.value : undefined);
    nodes.push({
      node: r.node,
      ...(r.instance !== undefined ? { instance: r.instance } : {}),
      success: r.success,
      ...(detail !== undefined ? { detail } : {}),
    });
  }
  nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { nodes, errors };
}

export function outcomeTable(view: OutcomeView, verb: string, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const parts: string[] = [];
  if (view.nodes.length > 0) {
    const table = newTable(["node", "instance", verb, "detail"], options);
    for (const n of view.nodes) table.push([c.bold(n.node), n.instance ?? "", n.success ? c.green("ok") : c.red("failed"), n.detail ?? ""]);
    parts.push(table.toString());
  }
  for (const e of view.errors) parts.push(`${c.red("error:")} ${errorText(e)}`);
  return parts.join("\n") + "\n";
}
