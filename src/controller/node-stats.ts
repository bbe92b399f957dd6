// Node statistics from every connected agent (zmgmt's node_stats request), for the
// controller's /metrics, `zmgmt netstats` and /services.json. These are not tracked client
// requests: each gathering has its own short deadline and answers with whatever arrived.

import { newReqId } from "../broker/request.js";
import { ZmgmtAgentApi, type AgentNodeStats } from "../agent/api.js";
import type { Configuration, Result } from "../management/types.js";
import type { Agents } from "./agents.js";
import type { InstanceRegistry } from "./instances.js";

export interface Gathered {
  answers: AgentNodeStats[];
  /** Connected agents that did not answer in time (or answered with a failure). */
  silent: string[];
}

interface Pending {
  waiting: Set<string>;
  answers: AgentNodeStats[];
  done: () => void;
}

export class NodeStatsGatherer {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly instances: InstanceRegistry,
    private readonly agents: Agents,
  ) {}

  /** Asks every connected agent; resolves once all answered or at the deadline. */
  async gather(capture: boolean, timeoutMs: number): Promise<Gathered> {
    const names = this.instances.knownNames();
    const entries = names.map((name) => ({ name, reqid: newReqId() }));
    const answers: AgentNodeStats[] = [];
    const waiting = new Set(names);
    await new Promise<void>((resolve) => {
      if (names.length === 0) {
        resolve();
        return;
      }
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      const pending: Pending = { waiting, answers, done: finish };
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      for (const e of entries) this.pending.set(e.reqid, pending);
      for (const e of entries) {
        if (!this.agents.send(e.name, ZmgmtAgentApi.node_stats_request.make(e.reqid, capture))) waiting.delete(e.name);
      }
      if (waiting.size === 0) finish();
    });
    for (const e of entries) this.pending.delete(e.reqid);
    answers.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
    const answered = new Set(answers.map((a) => a.instance));
    return { answers, silent: names.filter((n) => !answered.has(n)) };
  }

  onResponse(reqid: string, result: Result): void {
    const pending = this.pending.get(reqid);
    if (!pending) return;
    this.pending.delete(reqid);
    const stats = result.success && result.data?.type === "string" ? parseStats(result.data.value) : undefined;
    if (stats) pending.answers.push(stats);
    if (result.instance !== undefined) pending.waiting.delete(result.instance);
    if (pending.waiting.size === 0) pending.done();
  }
}

function parseStats(text: string): AgentNodeStats | undefined {
  try {
    const value = JSON.parse(text) as AgentNodeStats;
    return typeof value.instance === "string" && Array.isArray(value.nodes) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** One entry of Prometheus HTTP service discovery. */
export interface SdTarget {
  targets: string[];
  labels: Record<string, string>;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function usable(host: string | undefined): host is string {
  return host !== undefined && host !== "" && host !== "0.0.0.0" && host !== "::";
}

/**
 * Every deployed node that has a metrics port, on its instance's host (or, when the
 * configuration leaves it open, the address its agent checked in from); then the control
 * plane: the controller at the address the scraper reached it on, and each agent that
 * reported its listener.
 */
export function serviceTargets(
  deployed: Configuration | undefined,
  instances: InstanceRegistry,
  agents: AgentNodeStats[],
  controller: { name: string; host: string; port: number },
): SdTarget[] {
  const observed = new Map(instances.known().map((k) => [k.observed.name, k.observed.host]));
  const configured = new Map((deployed?.instances ?? []).map((i) => [i.name, i.host]));
  const hostOf = (instance: string): string | undefined => {
    const host = configured.get(instance);
    if (usable(host)) return host;
    const seen = observed.get(instance);
    return usable(seen) ? seen : undefined;
  };
  const out: SdTarget[] = [];
  for (const node of deployed?.nodes ?? []) {
    const host = hostOf(node.instance);
    if (node.metricsPort === undefined || host === undefined) continue;
    out.push({
      targets: [hostPort(host, node.metricsPort)],
      labels: { node: node.name, role: node.role.toLowerCase(), instance: node.instance },
    });
  }
  out.push({
    targets: [hostPort(controller.host, controller.port)],
    labels: { node: controller.name, role: "controller", instance: controller.name },
  });
  for (const agent of agents) {
    if (agent.listenPort === undefined) continue;
    const host = usable(agent.listenHost) ? agent.listenHost : hostOf(agent.instance);
    if (host === undefined) continue;
    out.push({ targets: [hostPort(host, agent.listenPort)], labels: { node: agent.instance, role: "agent", instance: agent.instance } });
  }
  return out;
}
