// zmgmt's own requests on one instance (see ZmgmtAgentApi): a node's output files, process
// facts of its nodes, and stopping and starting nodes without a redeploy.

import { join } from "node:path";
import { B } from "../broker/data.js";
import { errorMessage } from "../broker/errors.js";
import { makeResult } from "../management/records.js";
import type { Result } from "../management/types.js";
import { NodeLogsCodec, NodeProcessStatusVecCodec, type NodeLogsQuery, type NodeProcessStatus } from "../management/zmgmt-records.js";
import type { ProcessUsage, SupervisedNodeStatus } from "../supervisor/api.js";
import { ZmgmtAgentApi } from "./api.js";
import type { AgentContext } from "./context.js";
import { linesAfter, tailLines } from "./node-logs.js";

/** Stopping escalates to SIGKILL on the supervisor's own schedule; allow for it. */
const STOP_TIMEOUT_MS = 60_000;

export class ZmgmtOperations {
  constructor(private readonly ctx: AgentContext) {}

  async logs(reqid: string, query: NodeLogsQuery): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    const reply = (result: Result): void => ctx.reply(ZmgmtAgentApi.node_logs_response.make(reqid, result), `${reqid} ${query.node}`);
    if (!ctx.nodes.has(query.node)) {
      reply(
        makeResult(reqid, { instance, node: query.node, success: false, error: `node ${query.node} does not run on instance ${instance}` }),
      );
      return;
    }
    try {
      const directory = await this.directoryOf(query.node);
      const chunk =
        query.cursor !== undefined
          ? await linesAfter(directory, query.stream, query.cursor)
          : await tailLines(directory, query.stream, query.lines);
      const data = NodeLogsCodec.encode({ node: query.node, instance, stream: query.stream, ...chunk });
      reply(makeResult(reqid, { instance, node: query.node, data }));
    } catch (err) {
      reply(makeResult(reqid, { instance, node: query.node, success: false, error: `cannot read ${query.stream}: ${errorMessage(err)}` }));
    }
  }

  async status(reqid: string, names: string[]): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    const reply = (result: Result): void => ctx.reply(ZmgmtAgentApi.get_node_status_response.make(reqid, result), reqid);
    let supervised: SupervisedNodeStatus[];
    let usage: ProcessUsage[];
    try {
      [supervised, usage] = await Promise.all([ctx.supervisor.status(""), ctx.supervisor.usage("")]);
    } catch (err) {
      reply(makeResult(reqid, { instance, success: false, error: `supervisor did not answer: ${errorMessage(err)}` }));
      return;
    }
    const wanted = names.length > 0 ? new Set(names) : undefined;
    const bySupervisor = new Map(supervised.map((s) => [s.config.name, s]));
    const byUsage = new Map(usage.map((u) => [u.name, u]));
    const now = Date.now();
    const statuses: NodeProcessStatus[] = [];
    for (const name of ctx.nodes.names().sort()) {
      if (wanted && !wanted.has(name)) continue;
      const rec = ctx.nodes.get(name)!;
      const s = bySupervisor.get(name);
      const u = s?.pid !== undefined ? byUsage.get(name) : undefined;
      statuses.push({
        node: name,
        instance,
        state: rec.state,
        role: rec.node.role,
        restarts: s?.restarts ?? 0,
        ...(s?.pid !== undefined ? { pid: s.pid } : {}),
        ...(s?.pid !== undefined && s.startedAt !== undefined ? { startedAt: s.startedAt, uptimeMs: Math.max(0, now - s.startedAt) } : {}),
        ...(s?.lastExitCode !== undefined ? { lastExitCode: s.lastExitCode } : {}),
        ...(s?.lastExitSignal !== undefined ? { lastExitSignal: s.lastExitSignal } : {}),
        ...(s?.lastExitAt !== undefined ? { lastExitAt: s.lastExitAt } : {}),
        ...(u && u.pid === s?.pid ? { cpuPercent: u.cpuPercent, rssBytes: u.rssBytes } : {}),
      });
    }
    reply(makeResult(reqid, { instance, data: NodeProcessStatusVecCodec.encode(statuses) }));
  }

  async stop(reqid: string, names: string[]): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    const targets = this.select(names);
    const results = await Promise.all(
      targets.map(async (name): Promise<Result> => {
        try {
          if (!(await ctx.supervisor.stopNode(name, STOP_TIMEOUT_MS))) {
            return makeResult(reqid, { instance, node: name, success: false, error: `node ${name} is not supervised (never started?)` });
          }
        } catch (err) {
          return makeResult(reqid, { instance, node: name, success: false, error: `cannot stop node ${name}: ${errorMessage(err)}` });
        }
        const rec = ctx.nodes.get(name);
        if (rec) {
          delete rec.pid;
          ctx.nodes.setState(rec, "STOPPED");
        }
        ctx.log.info(`node ${name} stopped on request`);
        return makeResult(reqid, { instance, node: name });
      }),
    );
    ctx.reply(ZmgmtAgentApi.stop_nodes_response.make(reqid, results), `${reqid}, ${targets.length} node(s)`);
  }

  async start(reqid: string, names: string[]): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    const targets = this.select(names);
    const results = await Promise.all(
      targets.map(async (name): Promise<Result> => {
        const rec = ctx.nodes.get(name);
        // Starting is idempotent: a node that is not stopped stays as it is, and data says so.
        if (rec?.state !== "STOPPED")
          return makeResult(reqid, { instance, node: name, data: B.str(`not stopped (${rec?.state ?? "UNKNOWN"})`) });
        try {
          if (!(await ctx.supervisor.startNode(name))) {
            return makeResult(reqid, { instance, node: name, success: false, error: `node ${name} is not supervised` });
          }
        } catch (err) {
          return makeResult(reqid, { instance, node: name, success: false, error: `cannot start node ${name}: ${errorMessage(err)}` });
        }
        ctx.nodes.setState(rec, "PENDING");
        ctx.log.info(`node ${name} started on request`);
        return makeResult(reqid, { instance, node: name });
      }),
    );
    ctx.reply(ZmgmtAgentApi.start_nodes_response.make(reqid, results), `${reqid}, ${targets.length} node(s)`);
  }

  /** The named nodes this instance runs, or all of them. */
  private select(names: string[]): string[] {
    const all = this.ctx.nodes.names().sort();
    return names.length === 0 ? all : all.filter((n) => names.includes(n));
  }

  private async directoryOf(name: string): Promise<string> {
    const [s] = await this.ctx.supervisor.status(name);
    return s?.config.directory ?? join(this.ctx.options.stateDir, "nodes", name);
  }
}
