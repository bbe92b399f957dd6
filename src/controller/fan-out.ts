// get_nodes, get_id_value and restart: one sub-request per agent, answered together once
// every agent asked has answered, or at the timeout with what came in so far.

import { EventFrameTemplate } from "../broker/frame-template.js";
import type { ZeekEvent } from "../broker/messages.js";
import { errorMessage } from "../broker/errors.js";
import { AgentApi } from "../agent/api.js";
import type { Logger } from "../management/log.js";
import { NodeStatusVecCodec, makeResult, resultToString } from "../management/records.js";
import { hasKind } from "../management/request.js";
import type { Configuration, Result } from "../management/types.js";
import { compareText } from "../management/validation.js";
import type { Agents } from "./agents.js";
import { ControllerApi } from "./api.js";
import {
  TIMED_OUT,
  unlessDuplicate,
  type ControllerContext,
  type ControllerRequest,
  type FanOutKind,
  type FanOutOp,
  type ZmgmtOp,
  type ResponseSpec,
} from "./context.js";

type FanOutRequest = ControllerRequest<FanOutKind>;

const RESPONSES: Record<FanOutKind, ResponseSpec<Result[]>> = {
  get_nodes: ControllerApi.get_nodes_response,
  get_id_value: ControllerApi.get_id_value_response,
  restart: ControllerApi.restart_response,
};

export function isFanOut(req: ControllerRequest): req is FanOutRequest {
  return hasKind(req, "get_nodes") || hasKind(req, "get_id_value") || hasKind(req, "restart");
}

export class FanOut {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly agents: Agents,
  ) {}

  onGetNodes(reqid: string): void {
    const { log, instances } = this.ctx;
    // Read-only queries are DEBUG traffic: clients poll them, and at INFO a dashboard would
    // fill the disk with them.
    log.debug(`rx ${ControllerApi.get_nodes_request.name} ${reqid}`);
    const known = instances.knownNames();
    if (known.length === 0) {
      this.ctx.replyAll(ControllerApi.get_nodes_response, reqid, [makeResult(reqid, { success: false, error: "no instances connected" })]);
      return;
    }
    const req = this.create(reqid, "get_nodes");
    if (!req) return;
    // Every agent that checked in, whether or not the configuration uses it.
    this.send(req, "get_nodes", known, (child) => AgentApi.get_nodes_request.make(child));
  }

  onGetIdValue(reqid: string, id: string, nodes: string[]): void {
    const { log, configs, instances } = this.ctx;
    log.debug(`rx ${ControllerApi.get_id_value_request.name} ${reqid} ${id}`);
    const deployed = configs.get("DEPLOYED");
    const wanted = [...new Set(nodes)];
    // Upstream fix: with a node list and no DEPLOYED config yet (first deployment pending
    // or timed out), Zeek's handler indexes a missing table entry and aborts, leaving the
    // client to time out. There is no cluster to ask, so say so.
    if (instances.wanted().length === 0 || (wanted.length > 0 && !deployed)) {
      this.ctx.replyAll(ControllerApi.get_id_value_response, reqid, [makeResult(reqid, { success: false, error: "no cluster deployed" })]);
      return;
    }
    const req = this.create(reqid, "get_id_value");
    if (!req) return;
    const valid = filterDeployedNodes(req, wanted, deployed);
    if (wanted.length > 0 && valid.length === 0) {
      this.finish(req);
      return;
    }
    const action = ["get_id_value", id];
    this.send(req, "node_dispatch", instances.readyNames(), (child) => AgentApi.node_dispatch_request.make(child, action, valid));
  }

  onRestart(reqid: string, nodes: string[]): void {
    const { log, configs, instances } = this.ctx;
    log.info(`rx ${ControllerApi.restart_request.name} ${reqid}`);
    const deployed = configs.get("DEPLOYED");
    let error: string | undefined;
    if (instances.knownNames().length === 0) error = "no instances connected";
    else if (!deployed) error = "no active cluster deployment";
    if (error !== undefined) {
      this.ctx.replyAll(ControllerApi.restart_response, reqid, [makeResult(reqid, { success: false, error })]);
      return;
    }
    const req = this.create(reqid, "restart");
    if (!req) return;
    const wanted = [...new Set(nodes)];
    const valid = filterDeployedNodes(req, wanted, deployed);
    if (wanted.length > 0 && valid.length === 0) {
      this.finish(req);
      return;
    }
    // Upstream forwards the node set as received, unknown names included; agents only
    // act on names they run.
    this.send(req, "restart", instances.readyNames(), (child) => AgentApi.restart_request.make(child, wanted));
  }

  /** An agent's answer to one sub-request. */
  onResponse(reqid: string, op: FanOutOp | ZmgmtOp, results: Result[]): void {
    const { log, requests } = this.ctx;
    const child = requests.getOfKind(reqid, "agent");
    if (!child || child.state.op !== op) {
      log.debug(`response ${reqid} not expected, ignoring`);
      return;
    }
    const parent = requests.parentOf(reqid);
    requests.finish(reqid);
    if (!parent || !isFanOut(parent)) return;
    parent.results.push(...results);
    if (requests.childCount(parent.id) === 0) this.finish(parent);
  }

  timedOut(req: FanOutRequest): void {
    req.results.push(makeResult(req.id, { success: false, error: TIMED_OUT }));
    this.reply(req);
  }

  /**
   * Sub-requests sent to a lost agent get no answer over a link that is gone. Say so now
   * rather than at the timeout, next to what the other agents said.
   */
  agentLost(name: string): void {
    for (const child of this.ctx.requests.pending()) {
      if (!hasKind(child, "agent") || child.state.instance !== name || child.state.op === "deploy") continue;
      const parent = this.ctx.requests.parentOf(child.id);
      if (!parent || !isFanOut(parent)) continue;
      const error = `lost the connection to instance '${name}' before it answered`;
      this.onResponse(child.id, child.state.op, [makeResult(parent.id, { success: false, instance: name, error })]);
    }
  }

  private create(reqid: string, kind: FanOutKind): FanOutRequest | undefined {
    return unlessDuplicate(this.ctx.log, () => this.ctx.requests.create({ id: reqid, state: { kind } }));
  }

  private send(req: FanOutRequest, op: FanOutOp, targets: string[], make: (childId: string) => ZeekEvent): void {
    // With no agent to ask, upstream lets the request run into its timeout; so do we.
    // The sub-requests differ only in their id: encoded once, spliced per agent.
    const sample = make("");
    const template = new EventFrameTemplate(sample.name, sample.args.slice(1));
    const sorted = [...targets].sort(compareText);
    // One INFO line per fan-out, the per-agent lines at DEBUG: at 1,000 agents a line per
    // sub-request and per answer was a large share of a query's cost.
    // Read-only queries stay at DEBUG like their requests; a restart changes things.
    const line = `tx ${sample.name} for ${req.id} to ${sorted.length} instance(s)`;
    if (op === "restart") this.ctx.log.info(line);
    else this.ctx.log.debug(line);
    for (const name of sorted) {
      const child = this.ctx.requests.create({ parentId: req.id, state: { kind: "agent", instance: name, op }, ownTimer: false });
      this.agents.sendFrame(name, template, child.id, () => make(child.id));
      this.ctx.log.debug(`tx ${sample.name} ${child.id} to ${name}`);
    }
  }

  private finish(req: FanOutRequest): void {
    this.ctx.requests.finish(req.id);
    this.reply(req);
  }

  private reply(req: FanOutRequest): void {
    this.ctx.replyAll(RESPONSES[req.state.kind], req.id, req.results, req);
  }
}

/** Adds an "unknown cluster node" result per name not in DEPLOYED; returns the rest. */
function filterDeployedNodes(req: FanOutRequest, wanted: string[], deployed: Configuration | undefined): string[] {
  if (wanted.length === 0) return [];
  const names = new Set((deployed?.nodes ?? []).map((n) => n.name));
  const valid: string[] = [];
  for (const node of wanted) {
    if (names.has(node)) valid.push(node);
    else req.results.push(makeResult(req.id, { success: false, node, error: "unknown cluster node" }));
  }
  return valid;
}

/**
 * Checks an agent's node status list. Ports of 0 are removed: zeek-client cannot parse
 * them, and "no port" is what they mean.
 */
export function normalizeNodeStatusResult(result: Result, log: Logger): Result {
  if (result.data === undefined) return result;
  try {
    const decoded = NodeStatusVecCodec.decode(result.data, "data");
    // Decoding checked the data; only a list with a zero port needs re-encoding.
    if (!decoded.some((s) => s.port === 0 || s.metricsPort === 0)) return result;
    const statuses = decoded.map((s) => {
      const copy = { ...s };
      if (copy.port === 0) delete copy.port;
      if (copy.metricsPort === 0) delete copy.metricsPort;
      return copy;
    });
    return { ...result, data: NodeStatusVecCodec.encode(statuses) };
  } catch (err) {
    log.warning(`dropping malformed node status in result (${resultToString(result)}): ${errorMessage(err)}`);
    const copy = { ...result };
    delete copy.data;
    return copy;
  }
}
