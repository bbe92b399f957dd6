// Whether a deployment's nodes came up, for deployments that can roll back. Agents answer
// a deployment once each of their nodes checked in (RUNNING), or report the nodes that
// failed to start or did not check in within their timeout; a node that crashes right
// after checking in would still pass. So once every agent answered without a failure, the
// controller asks the agents for their nodes, in rounds:
//
// - any node of the configuration CRASHED, FAILED, STOPPED or missing: it failed;
// - any node still PENDING (e.g. after a restarted controller resent the deployment):
//   ask again after CHECK_INTERVAL_MS;
// - every node RUNNING: note their pids, and ask again `checkDelayMs` later
//   (DEFAULT_DEPLOY_CHECK_DELAY_MS); if then every node is still RUNNING under the same
//   pid, the deployment succeeded, and a new pid (a crash and revival in between) fails it.
//
// The deployment's own timeout bounds all of it; running into it fails the deployment.

import { AgentApi } from "../agent/api.js";
import { NodeStatusVecCodec } from "../management/records.js";
import type { Result } from "../management/types.js";
import type { Agents } from "./agents.js";
import { byName, type ControllerContext, type ControllerRequest } from "./context.js";

type DeployRequest = ControllerRequest<"deploy">;

const CHECK_INTERVAL_MS = 250;

export interface DeployCheckSettings {
  /** How long nodes must stay up after the agents answered. */
  checkDelayMs: number;
}

export interface DeployCheckHooks {
  passed(req: DeployRequest): void;
  failed(req: DeployRequest, reason: string): void;
}

export class DeployCheck {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly agents: Agents,
    private readonly settings: DeployCheckSettings,
    private readonly hooks: DeployCheckHooks,
  ) {}

  start(req: DeployRequest): void {
    this.ctx.log.info(`deployment ${req.id} answered; checking that its nodes stay up for ${this.settings.checkDelayMs} ms`);
    req.state.baseline = undefined;
    this.ask(req);
  }

  /** An agent's get_nodes answer; false when no check asked for it. */
  onResponse(reqid: string, result: Result): boolean {
    const { requests } = this.ctx;
    const child = requests.getOfKind(reqid, "agent");
    if (!child || child.state.op !== "get_nodes" || child.parentId === undefined) return false;
    const parent = requests.getOfKind(child.parentId, "deploy");
    if (!parent) return false;
    this.ctx.log.info(`rx ${AgentApi.get_nodes_response.name} ${reqid} (deployment check)`);
    requests.finish(reqid);
    if (result.success && result.data !== undefined) {
      try {
        for (const s of NodeStatusVecCodec.decode(result.data, "data")) parent.state.observed.set(s.node, { state: s.state, pid: s.pid });
      } catch {
        // A status list we cannot read leaves its nodes unobserved, which fails the check.
      }
    }
    if (requests.childCount(parent.id) === 0) this.judge(parent);
    return true;
  }

  /** A lost agent cannot vouch for its nodes. */
  agentLost(req: DeployRequest, name: string): void {
    for (const child of this.ctx.requests.childrenOf(req.id)) {
      if (child.state.kind === "agent" && child.state.instance === name) this.ctx.requests.cancel(child.id);
    }
    this.hooks.failed(req, `lost the connection to instance '${name}' while checking its nodes`);
  }

  private later(req: DeployRequest, ms: number): void {
    const timer = setTimeout(() => this.ask(req), ms);
    timer.unref();
  }

  private ask(req: DeployRequest): void {
    if (req.finished) return;
    req.state.observed.clear();
    for (const inst of [...req.state.config.instances].sort(byName)) {
      const child = this.ctx.requests.create({ parentId: req.id, state: { kind: "agent", instance: inst.name, op: "get_nodes" } });
      if (this.agents.send(inst.name, AgentApi.get_nodes_request.make(child.id))) {
        this.ctx.log.info(`tx ${AgentApi.get_nodes_request.name} ${child.id} to ${inst.name} (deployment check)`);
        continue;
      }
      this.ctx.requests.cancel(child.id);
      this.hooks.failed(req, this.ctx.instances.notConnected(inst.name));
      return;
    }
    if (this.ctx.requests.childCount(req.id) === 0) this.judge(req);
  }

  private judge(req: DeployRequest): void {
    if (req.finished) return;
    const { observed, baseline } = req.state;
    let pending = false;
    for (const node of req.state.config.nodes) {
      const seen = observed.get(node.name);
      if (seen?.state === "PENDING" && baseline) {
        this.hooks.failed(req, `node ${node.name} went down after it came up (PENDING again)`);
        return;
      } else if (seen?.state === "PENDING") pending = true;
      else if (seen?.state !== "RUNNING") {
        this.hooks.failed(req, seen === undefined ? `node ${node.name} is not running` : `node ${node.name} is ${seen.state}`);
        return;
      } else if (baseline && baseline.get(node.name) !== seen.pid) {
        this.hooks.failed(req, `node ${node.name} restarted (pid ${baseline.get(node.name) ?? "?"}, now ${seen.pid ?? "?"})`);
        return;
      }
    }
    if (pending) this.later(req, CHECK_INTERVAL_MS);
    else if (!baseline) {
      req.state.baseline = new Map(req.state.config.nodes.map((n) => [n.name, observed.get(n.name)?.pid]));
      this.later(req, this.settings.checkDelayMs);
    } else this.hooks.passed(req);
  }
}
