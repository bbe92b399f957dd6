// zmgmt's own client requests (ZmgmtControllerApi): node logs, node process status, stopping
// and starting nodes. Each goes to the agents that run the nodes named (all agents with
// nodes when none are named) and is answered once they have, or at the request timeout.

import { B } from "../broker/data.js";
import type { ZeekEvent } from "../broker/messages.js";
import { ZmgmtAgentApi } from "../agent/api.js";
import { ResultVecCodec, makeResult } from "../management/records.js";
import { hasKind } from "../management/request.js";
import type { Configuration, Node, Result } from "../management/types.js";
import { UNKNOWN_NODE, type NodeLogsQuery } from "../management/zmgmt-records.js";
import { compareText } from "../management/validation.js";
import type { Agents } from "./agents.js";
import { ZmgmtControllerApi } from "./api.js";
import { TIMED_OUT, unlessDuplicate, type ControllerContext, type ControllerRequest, type ZmgmtOp } from "./context.js";

type ZmgmtRequest = ControllerRequest<"zmgmt">;

const AGENT_REQUESTS = {
  get_node_status: ZmgmtAgentApi.get_node_status_request,
  stop_nodes: ZmgmtAgentApi.stop_nodes_request,
  start_nodes: ZmgmtAgentApi.start_nodes_request,
} as const;

const RESPONSES = {
  get_node_status: ZmgmtControllerApi.get_node_status_response,
  stop_nodes: ZmgmtControllerApi.stop_nodes_response,
  start_nodes: ZmgmtControllerApi.start_nodes_response,
} as const;

export class ZmgmtRequests {
  constructor(
    private readonly ctx: ControllerContext,
    private readonly agents: Agents,
  ) {}

  onLogs(reqid: string, query: NodeLogsQuery): void {
    const { ctx } = this;
    ctx.log.info(`rx ${ZmgmtControllerApi.node_logs_request.name} ${reqid} ${query.node}`);
    const reply = (result: Result): void => ctx.reply(ZmgmtControllerApi.node_logs_response, reqid, result);
    const deployed = ctx.configs.get("DEPLOYED");
    if (!deployed) {
      reply(makeResult(reqid, { success: false, node: query.node, error: "no cluster deployed" }));
      return;
    }
    const node = deployed.nodes.find((n) => n.name === query.node);
    if (!node) {
      reply(unknownNode(reqid, query.node, deployed));
      return;
    }
    if (!ctx.instances.readyNames().includes(node.instance)) {
      reply(notConnected(reqid, node));
      return;
    }
    const req = this.create(reqid, "node_logs");
    if (!req) return;
    this.send(req, node.instance, (child) => ZmgmtAgentApi.node_logs_request.make(child, query));
  }

  onNodes(op: Exclude<ZmgmtOp, "node_logs">, reqid: string, names: string[]): void {
    const { ctx } = this;
    ctx.log.info(`rx ${ZmgmtControllerApi[`${op}_request`].name} ${reqid}${names.length ? ` ${names.join(" ")}` : ""}`);
    const deployed = ctx.configs.get("DEPLOYED");
    if (!deployed) {
      ctx.replyAll(RESPONSES[op], reqid, [makeResult(reqid, { success: false, error: "no cluster deployed" })]);
      return;
    }
    const wanted = [...new Set(names)];
    const results: Result[] = [];
    const known = new Map(deployed.nodes.map((n) => [n.name, n]));
    const targets = wanted.length === 0 ? deployed.nodes : wanted.flatMap((n) => known.get(n) ?? []);
    for (const n of wanted) if (!known.has(n)) results.push(unknownNode(reqid, n, deployed));
    const ready = new Set(this.ctx.instances.readyNames());
    const instances = new Set<string>();
    for (const node of targets) {
      if (ready.has(node.instance)) instances.add(node.instance);
      else results.push(notConnected(reqid, node));
    }
    if (instances.size === 0) {
      ctx.replyAll(RESPONSES[op], reqid, results);
      return;
    }
    const req = this.create(reqid, op);
    if (!req) return;
    req.results.push(...results);
    const only = wanted.filter((n) => known.has(n));
    for (const instance of [...instances].sort(compareText)) {
      // Per instance, only its own nodes: an agent that got "all" would act on every node it runs.
      const mine = wanted.length === 0 ? [] : only.filter((n) => known.get(n)?.instance === instance);
      this.send(req, instance, (child) => AGENT_REQUESTS[op].make(child, mine));
    }
  }

  /** An agent's answer to one sub-request. */
  onResponse(childId: string, op: ZmgmtOp, results: Result[]): void {
    const { requests, log } = this.ctx;
    const child = requests.getOfKind(childId, "agent");
    if (!child || child.state.op !== op) {
      log.debug(`response ${childId} not expected, ignoring`);
      return;
    }
    const parent = requests.parentOf(childId);
    requests.finish(childId);
    if (!parent || !hasKind(parent, "zmgmt")) return;
    parent.results.push(...results.map((r) => ({ ...r, reqid: parent.id })));
    if (requests.childCount(parent.id) === 0) {
      requests.finish(parent.id);
      this.reply(parent);
    }
  }

  timedOut(req: ZmgmtRequest): void {
    req.results.push(makeResult(req.id, { success: false, error: TIMED_OUT }));
    this.reply(req);
  }

  agentLost(name: string): void {
    for (const child of this.ctx.requests.pending()) {
      if (!hasKind(child, "agent") || child.state.instance !== name) continue;
      const parent = this.ctx.requests.parentOf(child.id);
      if (!parent || !hasKind(parent, "zmgmt")) continue;
      const error = `lost the connection to instance '${name}' before it answered`;
      this.onResponse(child.id, parent.state.op, [makeResult(parent.id, { success: false, instance: name, error })]);
    }
  }

  private create(reqid: string, op: ZmgmtOp): ZmgmtRequest | undefined {
    return unlessDuplicate(this.ctx.log, () => this.ctx.requests.create({ id: reqid, state: { kind: "zmgmt", op } }));
  }

  private send(req: ZmgmtRequest, instance: string, make: (childId: string) => ZeekEvent): void {
    const child = this.ctx.requests.create({ parentId: req.id, state: { kind: "agent", instance, op: req.state.op } });
    const event = make(child.id);
    this.agents.send(instance, event);
    this.ctx.log.info(`tx ${event.name} ${child.id} to ${instance}`);
  }

  private reply(req: ZmgmtRequest): void {
    const op = req.state.op;
    if (op === "node_logs") {
      // One agent answers; a timeout adds its own result after it, so prefer a success.
      const result = req.results.find((r) => r.success) ?? req.results[0] ?? makeResult(req.id, { success: false, error: TIMED_OUT });
      this.ctx.reply(ZmgmtControllerApi.node_logs_response, req.id, result);
    } else {
      this.ctx.replyAll(RESPONSES[op], req.id, req.results, req);
    }
  }
}

function unknownNode(reqid: string, name: string, deployed: Configuration): Result {
  const names = deployed.nodes.map((n) => n.name).sort(compareText);
  return makeResult(reqid, { success: false, node: name, error: UNKNOWN_NODE, data: B.vec(names.map((n) => B.str(n))) });
}

function notConnected(reqid: string, node: Node): Result {
  return makeResult(reqid, {
    success: false,
    node: node.name,
    instance: node.instance,
    error: `instance ${node.instance} is not connected`,
  });
}

const zmgmtResponses = new Map<string, (typeof ZmgmtControllerApi)[keyof typeof ZmgmtControllerApi]>(
  Object.values(ZmgmtControllerApi).map((spec) => [spec.name, spec]),
);

/**
 * The answer to a zmgmt request that failed validation, so its client hears why instead of
 * waiting for its timeout; undefined for anything else (zeek-client's requests included,
 * which upstream ignores when malformed) or without a usable request id.
 */
export function malformedAnswer(event: ZeekEvent, error: string): ZeekEvent | undefined {
  if (!event.name.endsWith("_request")) return undefined;
  const spec = zmgmtResponses.get(event.name.replace(/_request$/, "_response"));
  const first = event.args[0];
  if (!spec || first?.type !== "string" || first.value === "") return undefined;
  const result = makeResult(first.value, { success: false, error: `invalid request: ${error}` });
  return spec === ZmgmtControllerApi.node_logs_response
    ? ZmgmtControllerApi.node_logs_response.make(first.value, result)
    : { name: spec.name, args: [B.str(first.value), ResultVecCodec.encode([result])] };
}
