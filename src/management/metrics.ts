// Prometheus plumbing shared by the controller and the agent: one registry per process
// role (never prom-client's global one, so several roles in one test process do not
// collide), request accounting by type and result, the GET /metrics route, and a reader
// for the Prometheus text other processes (Zeek nodes) serve.

import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ZeekEvent } from "../broker/messages.js";
import { ResultCodec, ResultVecCodec } from "./records.js";
import type { Result } from "./types.js";

export const METRICS_PATH = "/metrics";

/** Request latencies span a local answer (ms) to a deploy of many Zeek nodes (tens of s). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Requests never answered (a test_timeout without state) must not pile up. */
const MAX_PENDING = 10_000;

export type RequestOutcome = "success" | "failure" | "timeout";

/** Counts requests a role answers, by type and outcome, and how long each took. */
export class RequestMetrics {
  private readonly started = new Map<string, { type: string; at: bigint }>();
  private readonly total: Counter<"type" | "result">;
  private readonly duration: Histogram<"type" | "result">;

  constructor(registry: Registry) {
    this.total = new Counter({
      name: "zmgmt_requests_total",
      help: "Requests answered, by request type and result (success, failure, timeout).",
      labelNames: ["type", "result"],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "zmgmt_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by request type and result.",
      labelNames: ["type", "result"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
  }

  /** A request event arrived (`…_request`, request id first). */
  received(event: ZeekEvent): void {
    const reqid = event.args[0]?.type === "string" ? event.args[0].value : undefined;
    if (!event.name.endsWith("_request") || reqid === undefined) return;
    if (this.started.size >= MAX_PENDING) this.started.delete(this.started.keys().next().value!);
    this.started.set(reqid, { type: eventType(event.name, "_request"), at: process.hrtime.bigint() });
  }

  /** A response event is going out; counts it if it answers a request we saw arrive. */
  answered(event: ZeekEvent, timeoutText?: string): void {
    const reqid = event.args[0]?.type === "string" ? event.args[0].value : undefined;
    if (!event.name.endsWith("_response") || reqid === undefined) return;
    const start = this.started.get(reqid);
    if (!start) return;
    this.started.delete(reqid);
    const result = outcome(responseResults(event), timeoutText);
    const labels = { type: start.type, result };
    this.total.inc(labels);
    this.duration.observe(labels, Number(process.hrtime.bigint() - start.at) / 1e9);
  }
}

/** `Management::Controller::API::deploy_request` -> `deploy`. */
function eventType(name: string, suffix: string): string {
  const base = name.slice(name.lastIndexOf(":") + 1);
  return base.endsWith(suffix) ? base.slice(0, -suffix.length) : base;
}

function responseResults(event: ZeekEvent): Result[] {
  const payload = event.args[1];
  if (!payload) return [];
  try {
    return ResultVecCodec.decode(payload, "results");
  } catch {
    try {
      return [ResultCodec.decode(payload, "result")];
    } catch {
      return [];
    }
  }
}

function outcome(results: Result[], timeoutText: string | undefined): RequestOutcome {
  if (timeoutText !== undefined && results.some((r) => !r.success && r.error === timeoutText)) return "timeout";
  return results.every((r) => r.success) ? "success" : "failure";
}

/** Open WebSocket peers (gauge, read at scrape time) and connections accepted (counter). */
export function connectionMetrics(registry: Registry, open: () => number): { accepted(): void } {
  new Gauge({
    name: "zmgmt_websocket_connections",
    help: "WebSocket peers currently connected (clients, agents, controllers, nodes).",
    registers: [registry],
    collect() {
      this.set(open());
    },
  });
  const accepted = new Counter({
    name: "zmgmt_websocket_connections_total",
    help: "WebSocket peers that completed the Broker handshake since the process started.",
    registers: [registry],
  });
  return { accepted: () => accepted.inc() };
}

/**
 * GET /metrics: `refresh` runs first (it may ask other processes for current values),
 * then the registry is rendered in Prometheus text format.
 */
export function metricsRoute(registry: Registry, refresh?: () => Promise<void>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if ((req.url ?? "").split("?")[0] !== METRICS_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("method not allowed\n");
      return true;
    }
    if (refresh) await refresh();
    const text = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType });
    res.end(req.method === "HEAD" ? undefined : text);
    return true;
  };
}

/** One sample of Prometheus text: the metric name, its labels and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format (comments skipped, timestamps ignored). */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    samples.push({ name: m[1]!, labels: parseLabels(m[3] ?? ""), value: parseValue(m[4]!) });
  }
  return samples;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

/** The sum of every sample of `name` (all label sets), or undefined when there is none. */
export function sumSamples(samples: Sample[], name: string): number | undefined {
  const found = samples.filter((s) => s.name === name);
  return found.length === 0 ? undefined : found.reduce((a, s) => a + s.value, 0);
}

export { Registry };
