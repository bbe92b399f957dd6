// Whether a deployment's nodes came up, for deployments that can roll back. Agents answer
// a deployment once each of their nodes checked in (RUNNING), or report the nodes that
// failed to start or did not check in within their timeout; a node that crashes right
// after checking in would still pass. So once every agent answered without a failure,
// the controller waits `checkDelayMs` (DEFAULT_DEPLOY_CHECK_DELAY_MS) and then asks the agents for their nodes:
//
// - every node of the configuration RUNNING: the deployment succeeded;
// - any node CRASHED, FAILED, STOPPED or missing: it failed;
// - otherwise (nodes still PENDING, e.g. after a restarted controller resent the
//   deployment): ask again every CHECK_INTERVAL_MS, until the deployment's own timeout.

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
    this.ctx.log.info(`deployment ${req.id} answered; checking its nodes in ${this.settings.checkDelayMs} ms`);
    this.later(req, this.settings.checkDelayMs);
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
        for (const s of NodeStatusVecCodec.decode(result.data, "data")) parent.state.observed.set(s.node, s.state);
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
      this.hooks.failed(req, `instance '${inst.name}' is not connected`);
      return;
    }
    if (this.ctx.requests.childCount(req.id) === 0) this.judge(req);
  }

  private judge(req: DeployRequest): void {
    if (req.finished) return;
    let pending = false;
    for (const node of req.state.config.nodes) {
      const state = req.state.observed.get(node.name);
      if (state === "RUNNING") continue;
      if (state === "PENDING") {
        pending = true;
        continue;
      }
      this.hooks.failed(req, state === undefined ? `node ${node.name} is not running` : `node ${node.name} is ${state}`);
      return;
    }
    if (pending) this.later(req, CHECK_INTERVAL_MS);
    else this.hooks.passed(req);
  }
}
