// Deployment on one instance: adopting a configuration, replacing the cluster nodes the
// supervisor runs with the configuration's nodes for this instance, and answering once
// each new node has checked in (or failed to start, or the request timed out). Also the
// recovery of a restarted agent, which re-adopts what the supervisor still runs.

import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { errorMessage } from "../broker/errors.js";
import { NodeOutputsCodec, makeResult } from "../management/records.js";
import type { Configuration, Result } from "../management/types.js";
import { AgentApi } from "./api.js";
import type { AgentContext, AgentRequestOf } from "./context.js";
import { clusterLayout, nodeLaunch } from "./launch.js";
import { MANAGEMENT_LISTENING_FILE } from "./zeek.js";
import { deploymentFingerprint, sameDeployment } from "./config-equality.js";
import { decodeNodeMeta } from "./node-meta.js";
import { AGENT_STATE_FILE, loadAgentState, saveAgentState } from "./state-file.js";

export class Deployments {
  private config: Configuration | undefined;
  /** A fresh random id until a deployment is adopted, so the first deploy always runs. */
  private configId: string = randomUUID();
  private chain: Promise<void> = Promise.resolve();
  /** The deployment waiting for its nodes, if any. */
  private current: AgentRequestOf<"deploy"> | undefined;
  /** After a recovery without state: the fingerprint every surviving node was launched with. */
  private recoveredFingerprint: string | undefined;

  constructor(private readonly ctx: AgentContext) {}

  /** The configuration the agent adopted, if any. */
  get configuration(): Configuration | undefined {
    return this.config;
  }

  /** Re-learns the nodes the supervisor still runs (after an agent restart). */
  async recover(): Promise<void> {
    const { ctx } = this;
    const loaded = loadAgentState(ctx.options.directory);
    if (loaded.kind === "corrupt") {
      ctx.log.error(
        `agent state in ${join(ctx.options.directory, AGENT_STATE_FILE)} could not be used (${loaded.reason}); ` +
          (loaded.aside !== undefined ? `moved it to ${loaded.aside}` : `moving it aside failed (${loaded.asideError})`) +
          "; nodes that match the next deployed configuration keep running",
      );
    }
    const persisted = loaded.kind === "ok" ? loaded.config : undefined;
    const fingerprints = new Set<string | undefined>();
    const running = await ctx.supervisor.status("");
    const clusterNodes = running.filter((s) => s.config.managementRole === "");
    for (const s of clusterNodes) {
      const meta = decodeNodeMeta(s.config.meta);
      if (!meta) {
        ctx.log.warning(`node ${s.config.name} has no valid agent metadata; it stays unmanaged until the next deploy`);
        continue;
      }
      const { node, managementPort } = meta;
      fingerprints.add(meta.deployment);
      ctx.nodes.adopt({
        node,
        // The node proves it is up by checking in again; until then it is pending.
        state: s.pid !== undefined ? "PENDING" : s.state === "failed" ? "FAILED" : s.state === "stopped" ? "STOPPED" : "CRASHED",
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        ...(managementPort !== undefined ? { managementPort } : {}),
      });
      if (managementPort !== undefined) {
        ctx.zeekLinks.open(node.name, managementPort, join(s.config.directory, MANAGEMENT_LISTENING_FILE));
      }
    }
    if (persisted) {
      this.config = persisted;
      const mine = persisted.nodes.filter((n) => n.instance === ctx.options.name).map((n) => n.name);
      // Claim the persisted config only if its nodes are really still there; otherwise the
      // next deploy of that id must recreate them.
      if (mine.every((n) => ctx.nodes.has(n)) && ctx.nodes.size === mine.length) this.configId = persisted.id;
    } else if (fingerprints.size === 1) {
      // Without a usable state file the nodes' own metadata still says which deployment
      // they belong to; a deploy of that deployment then adopts them instead of restarting.
      this.recoveredFingerprint = [...fingerprints][0];
    }
    ctx.log.info(
      `agent ${ctx.options.name} recovered ${ctx.nodes.size} node(s) from the supervisor` +
        (this.configId === persisted?.id ? `, running config ${persisted.id}` : ""),
    );
  }

  deploy(reqid: string, config: Configuration, force: boolean): Promise<void> {
    // Deployments run one after the other: each one tears down what the previous created.
    const run = this.chain.then(() => this.run(reqid, config, force));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async standby(): Promise<void> {
    // Standby is a deploy of an empty configuration with a fresh id.
    const empty: Configuration = { id: randomUUID(), instances: [], nodes: [] };
    await (this.chain = this.chain.then(async () => {
      this.adopt(empty);
      await this.destroyClusterNodes();
    }));
  }

  /** A node of this instance checked in. */
  checkedIn(name: string): void {
    const pending = this.current;
    if (pending && !pending.finished && pending.state.waiting.delete(name) && pending.state.waiting.size === 0) this.finish(pending);
  }

  /** The deployment's answer: one result per node of this instance, and one for a timeout. */
  answer(pending: AgentRequestOf<"deploy">, timedOut: boolean): void {
    const { ctx } = this;
    if (this.current === pending) this.current = undefined;
    const instance = ctx.options.name;
    const { controllerReqid: reqid, waiting, failures } = pending.state;
    const results: Result[] = [];
    if (timedOut) {
      ctx.log.info(`request ${reqid} timed out`);
      results.push(makeResult(reqid, { instance, success: false, error: "request timed out" }));
    }
    for (const [name, rec] of ctx.nodes.entries()) {
      if (!this.config?.nodes.some((n) => n.name === name && n.instance === instance)) continue;
      const ok = !waiting.has(name) && !failures.has(name);
      const result = makeResult(reqid, { instance, node: name, success: ok });
      if (!ok) {
        result.error =
          failures.get(name) ??
          `node ${name} did not check in within ${ctx.options.requestTimeoutMs} ms` + (rec.lastExit ? ` (${rec.lastExit})` : "");
        if (rec.outputs) result.data = NodeOutputsCodec.encode(rec.outputs);
      }
      results.push(result);
    }
    ctx.reply(AgentApi.deploy_response.make(reqid, results), reqid);
  }

  /** Whether the supervisor runs exactly this instance's nodes of `config`. */
  private runsAllOf(config: Configuration): boolean {
    const mine = config.nodes.filter((n) => n.instance === this.ctx.options.name);
    return mine.every((n) => this.ctx.nodes.has(n.name)) && this.ctx.nodes.size === mine.length;
  }

  private finish(pending: AgentRequestOf<"deploy">): void {
    if (this.ctx.requests.finish(pending.id)) this.answer(pending, false);
  }

  private adopt(config: Configuration): void {
    this.config = config;
    this.recoveredFingerprint = undefined;
    this.configId = config.id;
    try {
      saveAgentState(this.ctx.options.directory, config);
    } catch (err) {
      this.ctx.log.error(`cannot persist agent state: ${errorMessage(err)}`);
    }
  }

  private async run(reqid: string, config: Configuration, force: boolean): Promise<void> {
    const { ctx } = this;
    const instance = ctx.options.name;
    if (config.id === this.configId && !force) {
      ctx.log.info(`already running config ${config.id}`);
      ctx.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }
    if (
      !force &&
      this.config !== undefined &&
      this.config.id === this.configId &&
      sameDeployment(this.config, config) &&
      this.runsAllOf(config)
    ) {
      // zeek-client stages every deploy-config under a new id; an unchanged cluster keeps running.
      ctx.log.info(`config ${config.id} launches exactly what config ${this.configId} does; adopting it without restarting nodes`);
      this.adopt(config);
      await this.startStopped();
      ctx.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }
    if (
      !force &&
      this.config === undefined &&
      this.recoveredFingerprint !== undefined &&
      this.recoveredFingerprint === deploymentFingerprint(config) &&
      this.runsAllOf(config)
    ) {
      ctx.log.info(`the surviving nodes were launched for config ${config.id}; adopting it without restarting nodes`);
      this.adopt(config);
      ctx.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }
    this.adopt(config);

    await this.destroyClusterNodes();

    const mine = config.nodes.filter((n) => n.instance === instance);
    if (mine.length === 0) {
      // Upstream waits for its timeout here and then sends a second, stray response; an
      // instance without nodes has simply nothing to do.
      ctx.reply(AgentApi.deploy_response.make(reqid, [makeResult(reqid, { instance })]), reqid);
      return;
    }

    const layout = clusterLayout(config);
    // A newer deployment supersedes one still waiting for its nodes, which are gone now.
    if (this.current) ctx.requests.cancel(this.current.id);
    const pending = ctx.requests.create({
      state: { kind: "deploy", controllerReqid: reqid, waiting: new Set(mine.map((n) => n.name)), failures: new Map<string, string>() },
    });
    this.current = pending;
    for (const node of mine) ctx.nodes.setState({ node, state: "PENDING" }, "PENDING", true);

    await Promise.all(
      mine.map(async (node) => {
        let error: string;
        try {
          const launch = await nodeLaunch(ctx.options, node, config, layout);
          const rec = ctx.nodes.get(node.name);
          if (rec && launch.managementPort !== undefined) rec.managementPort = launch.managementPort;
          error = await ctx.supervisor.create(launch.config);
          const port = ctx.nodes.get(node.name)?.managementPort;
          if (error === "" && port !== undefined) ctx.zeekLinks.open(node.name, port, launch.listeningFile);
        } catch (err) {
          error = errorMessage(err);
        }
        if (error !== "") {
          const msg = `failed to create node ${node.name}: ${error}`;
          ctx.log.error(msg);
          ctx.notifyError(msg, node.name);
          // The supervisor runs nothing under this name; get-nodes still lists it, FAILED.
          const rec = ctx.nodes.get(node.name);
          if (rec) ctx.nodes.setState(rec, "FAILED");
          if (!pending.finished) {
            pending.state.failures.set(node.name, msg);
            pending.state.waiting.delete(node.name);
          }
        }
      }),
    );
    if (!pending.finished && pending.state.waiting.size === 0) this.finish(pending);
  }

  /** A redeploy brings back the nodes an operator stopped, also when nothing else changes. */
  private async startStopped(): Promise<void> {
    const { ctx } = this;
    for (const name of ctx.nodes.names()) {
      const rec = ctx.nodes.get(name);
      if (rec?.state !== "STOPPED") continue;
      try {
        if (await ctx.supervisor.startNode(name)) ctx.nodes.setState(rec, "PENDING");
      } catch (err) {
        ctx.log.error(`failed to start node ${name}: ${errorMessage(err)}`);
      }
    }
  }

  /** Destroys every cluster node the supervisor runs (never management processes). */
  private async destroyClusterNodes(): Promise<void> {
    const { ctx } = this;
    const running = await ctx.supervisor.status("");
    const victims = running.filter((s) => s.config.managementRole === "");
    const known = new Set(victims.map((v) => v.config.name));
    for (const name of ctx.nodes.names()) if (!known.has(name)) ctx.nodes.delete(name);
    await Promise.all(
      victims.map(async (s) => {
        const name = s.config.name;
        await ctx.zeekLinks.close(name);
        try {
          // Stopping escalates to SIGKILL on the supervisor's own schedule; allow for it.
          const ok = await ctx.supervisor.destroy(name, 60_000);
          if (!ok) {
            const msg = `failed to destroy node ${name}`;
            ctx.log.error(msg);
            ctx.notifyError(msg, name);
          }
        } catch (err) {
          const msg = `failed to destroy node ${name}: ${errorMessage(err)}`;
          ctx.log.error(msg);
          ctx.notifyError(msg, name);
        }
        ctx.nodes.delete(name);
      }),
    );
  }
}
