// Requests on the running nodes of an instance: get_nodes (answered from the supervisor's
// view), node_dispatch (relayed to the nodes, answered once each has responded) and
// restart (answered once each restarted node has checked in again).

import { errorMessage } from "../broker/errors.js";
import { newReqId } from "../broker/request.js";
import { hasKind } from "../management/request.js";
import { NodeOutputsCodec, NodeStatusVecCodec, makeResult, resultToString } from "../management/records.js";
import type { NodeStatus, Result, State } from "../management/types.js";
import { NODE_TOPIC, NodeApi } from "../node/api.js";
import type { SupervisedNodeStatus } from "../supervisor/api.js";
import { AgentApi } from "./api.js";
import type { AgentContext, AgentRequest, AgentRequestOf } from "./context.js";
import { decodeNodeMeta } from "./node-meta.js";

// A STOPPED node restarts too: the operator asked for it to run.
const RESTARTABLE: ReadonlySet<State> = new Set<State>(["RUNNING", "CRASHED", "FAILED", "STOPPED"]);

export class NodeOperations {
  constructor(private readonly ctx: AgentContext) {}

  async getNodes(reqid: string): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    let running: SupervisedNodeStatus[];
    try {
      running = await ctx.supervisor.status("");
    } catch (err) {
      const result = makeResult(reqid, { instance, success: false, error: `supervisor did not answer: ${errorMessage(err)}` });
      ctx.reply(AgentApi.get_nodes_response.make(reqid, result), resultToString(result));
      return;
    }
    const statuses: NodeStatus[] = [];
    for (const s of running) {
      const c = s.config;
      const pid = s.pid !== undefined ? { pid: s.pid } : {};
      if (c.managementRole === "AGENT") {
        statuses.push({
          node: c.name,
          state: "RUNNING",
          mgmtRole: "AGENT",
          clusterRole: "NONE",
          ...pid,
          ...(!ctx.options.connectsToController && ctx.options.listenPort !== undefined ? { port: ctx.options.listenPort } : {}),
        });
      } else if (c.managementRole === "CONTROLLER") {
        // Upstream reports the agent's port here (a bug baked into its baselines); we report
        // the controller's own WebSocket port, which the supervisor config carries in meta.
        const port = controllerPortFromMeta(c.meta);
        statuses.push({
          node: c.name,
          state: s.pid !== undefined ? "RUNNING" : "PENDING",
          mgmtRole: "CONTROLLER",
          clusterRole: "NONE",
          ...pid,
          ...(port !== undefined ? { port } : {}),
        });
      } else {
        const rec = ctx.nodes.get(c.name);
        const node = rec?.node ?? decodeNodeMeta(c.meta)?.node;
        statuses.push({
          node: c.name,
          state: rec?.state ?? "PENDING",
          mgmtRole: "NONE",
          clusterRole: node?.role ?? "NONE",
          ...pid,
          ...(node?.port !== undefined ? { port: node.port } : {}),
          ...(node?.metricsPort !== undefined ? { metricsPort: node.metricsPort } : {}),
        });
      }
    }
    // Nodes of the deployment that the supervisor could not even start (say, an impossible
    // cpu_affinity) run nowhere, but they are part of the cluster and must show as FAILED.
    const supervised = new Set(running.map((s) => s.config.name));
    for (const name of ctx.nodes.names()) {
      const rec = ctx.nodes.get(name);
      if (!rec || supervised.has(name)) continue;
      statuses.push({
        node: name,
        state: rec.state,
        mgmtRole: "NONE",
        clusterRole: rec.node.role,
        ...(rec.node.port !== undefined ? { port: rec.node.port } : {}),
        ...(rec.node.metricsPort !== undefined ? { metricsPort: rec.node.metricsPort } : {}),
      });
    }
    const result = makeResult(reqid, { instance, data: NodeStatusVecCodec.encode(statuses) });
    ctx.reply(AgentApi.get_nodes_response.make(reqid, result), resultToString(result));
  }

  dispatch(reqid: string, action: string[], requested: string[]): void {
    const { ctx } = this;
    const instance = ctx.options.name;
    const { names, why } = this.selectNodes(requested);
    if (why) {
      ctx.reply(AgentApi.node_dispatch_response.make(reqid, []), `${reqid}, ${why}`);
      return;
    }
    const results: Result[] = [];
    const running: string[] = [];
    for (const n of names) {
      if (ctx.nodes.get(n)?.state === "RUNNING") running.push(n);
      else results.push(makeResult(reqid, { instance, node: n, success: false, error: `cluster node ${n} not in running state` }));
    }
    if (running.length === 0) {
      ctx.reply(AgentApi.node_dispatch_response.make(reqid, results), `${reqid}, no nodes running`);
      return;
    }
    // Upstream has no timeout here and leaves the controller to time out; we answer for
    // the silent nodes ourselves, so the reply names them.
    const pending = ctx.requests.create({
      id: newReqId(),
      state: { kind: "dispatch", controllerReqid: reqid, waiting: new Set(running) },
    });
    pending.results.push(...results);
    const nodeReqid = pending.id;
    ctx.log.info(`tx ${NodeApi.node_dispatch_request.name} ${nodeReqid}`);
    const viaHub: string[] = [];
    for (const n of running) {
      if (ctx.nodes.get(n)?.managementPort === undefined) viaHub.push(n);
      else if (!ctx.zeekLinks.send(n, NodeApi.node_dispatch_request.make(nodeReqid, action, [n]))) {
        pending.state.waiting.delete(n);
        pending.results.push(
          makeResult(reqid, { instance, node: n, success: false, error: `cluster node ${n} is not reachable by its agent` }),
        );
      }
    }
    if (viaHub.length > 0) ctx.endpoint.publishEvent(NODE_TOPIC, NodeApi.node_dispatch_request.make(nodeReqid, action, viaHub));
    if (pending.state.waiting.size === 0) this.finish(pending);
  }

  /** A node's answer to a dispatch; `link` names the Zeek node whose own link carried it. */
  dispatchResponse(nodeReqid: string, result: Result, link: string | undefined): void {
    const { ctx } = this;
    const pending = ctx.requests.getOfKind(nodeReqid, "dispatch");
    if (link !== undefined && result.node !== link) return;
    if (!pending || result.node === undefined || !pending.state.waiting.delete(result.node)) {
      ctx.log.debug(`response ${nodeReqid} not expected, ignoring`);
      return;
    }
    ctx.log.info(`rx ${NodeApi.node_dispatch_response.name} ${nodeReqid} from ${result.node}`);
    result.instance = ctx.options.name;
    pending.results.push(result);
    if (pending.state.waiting.size === 0) this.finish(pending);
  }

  /** The dispatch's answer; nodes still silent are reported as such. */
  answerDispatch(pending: AgentRequestOf<"dispatch">): void {
    const { ctx } = this;
    const reqid = pending.state.controllerReqid;
    const results = [...pending.results];
    for (const n of pending.state.waiting) {
      results.push(
        makeResult(reqid, {
          instance: ctx.options.name,
          node: n,
          success: false,
          error: `cluster node ${n} did not respond within ${ctx.options.requestTimeoutMs} ms`,
        }),
      );
    }
    ctx.reply(AgentApi.node_dispatch_response.make(reqid, results), reqid);
  }

  async restart(reqid: string, requested: string[]): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    const { names, why } = this.selectNodes(requested);
    if (why) {
      ctx.reply(AgentApi.restart_response.make(reqid, []), `${reqid}, ${why}`);
      return;
    }
    // A crashed node waiting out its revival delay and one the supervisor gave up on are
    // restarted too, at once: that is what an operator asks for. Only a node still coming
    // up is left alone, and the answer says so.
    const targets = names.filter((n) => RESTARTABLE.has(ctx.nodes.get(n)?.state ?? "UNKNOWN"));
    const skipped = names.filter((n) => !targets.includes(n));
    const pending = ctx.requests.create({
      id: newReqId(),
      state: {
        kind: "restart",
        controllerReqid: reqid,
        waiting: new Set(targets),
        oldPids: new Map(targets.map((n) => [n, ctx.nodes.get(n)?.helloPid])),
      },
    });
    for (const n of skipped) {
      const state = ctx.nodes.get(n)?.state ?? "UNKNOWN";
      pending.results.push(makeResult(reqid, { instance, node: n, success: false, error: `node ${n} is ${state}, not restarted` }));
    }
    await Promise.all(
      targets.map(async (n) => {
        const rec = ctx.nodes.get(n);
        if (rec) ctx.nodes.setState(rec, "PENDING");
        let ok = false;
        try {
          ok = await ctx.supervisor.restart(n);
        } catch (err) {
          ctx.log.error(`failed to restart node ${n}: ${errorMessage(err)}`);
        }
        if (!ok) {
          const msg = `failed to restart node ${n}`;
          ctx.log.error(msg);
          ctx.notifyError(msg, n);
          if (pending.state.waiting.delete(n))
            pending.results.push(makeResult(reqid, { instance, node: n, success: false, error: `could not restart node ${n}` }));
        }
      }),
    );
    if (pending.state.waiting.size === 0) this.finish(pending);
  }

  /** The restart's answer; on a timeout, one result per node that did not check in again. */
  answerRestart(pending: AgentRequestOf<"restart">, timedOut: boolean): void {
    const { ctx } = this;
    const instance = ctx.options.name;
    const reqid = pending.state.controllerReqid;
    const results = [...pending.results];
    if (timedOut) {
      results.unshift(makeResult(reqid, { instance, success: false, error: "request timed out" }));
      for (const n of pending.state.waiting) {
        const rec = ctx.nodes.get(n);
        const result = makeResult(reqid, {
          instance,
          node: n,
          success: false,
          error: `node ${n} did not check in again within ${ctx.options.requestTimeoutMs} ms`,
        });
        if (rec?.outputs) result.data = NodeOutputsCodec.encode(rec.outputs);
        results.push(result);
      }
    }
    ctx.reply(AgentApi.restart_response.make(reqid, results), reqid);
  }

  /** A node checked in: it counts for every restart that waits for it, unless it is the old process. */
  checkedIn(name: string, pid: number | undefined): void {
    const { ctx } = this;
    for (const restart of ctx.requests.pending()) {
      if (!hasKind(restart, "restart")) continue;
      if (pid !== undefined && restart.state.oldPids.get(name) === pid) continue;
      if (restart.state.waiting.delete(name)) {
        restart.results.push(makeResult(restart.state.controllerReqid, { instance: ctx.options.name, node: name }));
        if (restart.state.waiting.size === 0) this.finish(restart);
      }
    }
  }

  private finish(pending: AgentRequestOf<"dispatch"> | AgentRequestOf<"restart">): void {
    if (!this.ctx.requests.finish(pending.id)) return;
    if (hasKind<AgentRequest, "dispatch">(pending, "dispatch")) this.answerDispatch(pending);
    else this.answerRestart(pending, false);
  }

  private selectNodes(requested: string[]): { names: string[]; why?: string } {
    const nodes = this.ctx.nodes;
    if (requested.length > 0) {
      const names = requested.filter((n) => nodes.has(n));
      return names.length ? { names } : { names, why: "no node overlap" };
    }
    const names = nodes.names();
    return names.length ? { names } : { names, why: "no nodes registered" };
  }
}

function controllerPortFromMeta(meta: string): number | undefined {
  try {
    const v = (JSON.parse(meta) as { port?: unknown }).port;
    return typeof v === "number" && v > 0 && v < 65536 ? v : undefined;
  } catch {
    return undefined;
  }
}
