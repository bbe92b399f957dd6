// Deployment: a configuration goes to every agent of its instances once all of them are
// ready, and the deployment is answered when each has answered (or at the timeout). At
// most one deployment is pending; agents that come back get the deployed configuration
// again through internal deployments that answer nobody.

import { B } from "../broker/data.js";
import { errorMessage } from "../broker/errors.js";
import { EventFrameTemplate } from "../broker/frame-template.js";
import { AgentApi } from "../agent/api.js";
import type { Logger } from "../management/log.js";
import { NodeOutputsCodec, makeResult, resultToString } from "../management/records.js";
import type { Configuration, Result } from "../management/types.js";
import type { Agents } from "./agents.js";
import { ControllerApi } from "./api.js";
import { TIMED_OUT, byName, unlessDuplicate, type ControllerContext, type ControllerRequest } from "./context.js";

type DeployRequest = ControllerRequest<"deploy">;

export class Deployment {
  private pendingId: string | undefined;
  /** The deploy_request of the deployment sent last, encoded once for all its agents. */
  private frames: { reqid: string; template: EventFrameTemplate } | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly agents: Agents,
  ) {}

  /** Redeploys a persisted DEPLOYED configuration at start-up. */
  resume(): void {
    const deployed = this.ctx.configs.get("DEPLOYED");
    if (!deployed) return;
    const req = this.createRequest(undefined, deployed, true);
    this.ctx.log.info(`deploying persisted configuration ${deployed.id}, request ${req.id}`);
    this.launch(req, false);
  }

  /** A client's deploy_request. */
  onRequest(reqid: string): void {
    const { log, configs } = this.ctx;
    log.info(`rx ${ControllerApi.deploy_request.name} ${reqid}`);
    const ready = configs.get("READY");
    const error = !ready
      ? "no configuration available to deploy"
      : this.pendingId !== undefined
        ? `earlier deployment ${this.pendingId} still pending`
        : undefined;
    if (error !== undefined || !ready) {
      this.ctx.replyAll(ControllerApi.deploy_response, reqid, [
        makeResult(reqid, { success: false, ...(error !== undefined ? { error } : {}) }),
      ]);
      return;
    }
    const req = unlessDuplicate(log, () => this.createRequest(reqid, ready, false));
    if (req) this.launch(req, false);
  }

  /** Every wanted instance is ready: deploy what is pending, or bring agents in line. */
  onAgentsReady(names: string[]): void {
    const { log, configs } = this.ctx;
    // The single colon is upstream's spelling of this line.
    log.info(`rx Management::Controller::API:notify_agents_ready ${names.join(", ")}`);
    const pending = this.pending();
    if (pending) {
      this.deployToAgents(pending);
      return;
    }
    // Agents (re)appeared while nothing is being deployed: bring them in line with the
    // deployed configuration. Agents already running it answer without touching nodes.
    const deployed = configs.get("DEPLOYED");
    if (!deployed) return;
    const req = this.createRequest(undefined, deployed, true);
    log.info(`no deployment in progress, triggering via ${req.id}`);
    this.launch(req, true);
  }

  onAgentResponse(reqid: string, results: Result[]): void {
    const { log, requests } = this.ctx;
    log.info(`rx ${AgentApi.deploy_response.name} ${reqid} ${results.map(resultToString).join(", ")}`);
    const child = requests.getOfKind(reqid, "agent");
    if (!child || child.state.op !== "deploy") {
      log.debug(`response ${reqid} not expected, ignoring`);
      return;
    }
    const instance = child.state.instance;
    const parent = child.parentId !== undefined ? requests.getOfKind(child.parentId, "deploy") : undefined;
    requests.finish(reqid);
    if (!parent) return;
    for (const r of results) parent.results.push(normalizeNodeOutputsResult(r, log));
    parent.state.answered.add(instance);
    if (parent.state.config.instances.every((i) => parent.state.answered.has(i.name))) this.complete(parent);
  }

  timedOut(req: DeployRequest): void {
    const { configs, instances } = this.ctx;
    if (this.pendingId === req.id) this.pendingId = undefined;
    if (this.frames?.reqid === req.id) this.frames = undefined;
    const { config, sentTo, answered } = req.state;
    req.results.push(makeResult(req.id, { success: false, error: TIMED_OUT }));
    // Upstream fix: a bare "request timed out" does not tell the operator that the
    // configuration never left the controller because some agents were missing. Name them.
    for (const inst of [...config.instances].sort(byName)) {
      if (answered.has(inst.name) || instances.isReady(inst.name)) continue;
      const error = instances.isKnown(inst.name)
        ? `instance '${inst.name}' did not become ready`
        : `instance '${inst.name}' is not connected`;
      req.results.push(makeResult(req.id, { success: false, instance: inst.name, error }));
    }
    if (sentTo.size === 0) {
      // Upstream fix: upstream keeps the new instance set although the configuration
      // never reached any agent, and silently swaps it back to the deployed one when one
      // of the missing agents turns up later. We restore it now, in the open, so that
      // instance bookkeeping always matches the configuration that is actually deployed.
      const deployed = configs.get("DEPLOYED");
      this.ctx.log.info(
        `deployment ${req.id} never reached the agents; ` +
          (deployed ? `keeping the instances of deployed configuration ${deployed.id}` : "no configuration is deployed"),
      );
      this.agents.applyInstances(deployed ? deployed.instances : []);
    }
    if (!req.state.internal) this.ctx.replyAll(ControllerApi.deploy_response, req.id, req.results, req);
  }

  /**
   * A deployment still waiting on a lost agent resends to it once it is back, instead of
   * waiting for an answer that a restarted agent will never give.
   */
  agentLost(name: string): void {
    const pending = this.pending();
    if (!pending || !pending.state.sentTo.has(name) || pending.state.answered.has(name)) return;
    pending.state.sentTo.delete(name);
    for (const child of this.ctx.requests.childrenOf(pending.id)) {
      if (child.state.kind === "agent" && child.state.instance === name) this.ctx.requests.cancel(child.id);
    }
  }

  private createRequest(reqid: string | undefined, config: Configuration, internal: boolean): DeployRequest {
    return this.ctx.requests.create({
      ...(reqid !== undefined ? { id: reqid } : {}),
      state: { kind: "deploy", config: structuredClone(config), internal, sentTo: new Set<string>(), answered: new Set<string>() },
    });
  }

  private pending(): DeployRequest | undefined {
    return this.pendingId === undefined ? undefined : this.ctx.requests.getOfKind(this.pendingId, "deploy");
  }

  /**
   * Upstream `deploy()`: adopt the configuration's instance set, then wait until every
   * instance is ready. `agentsAlreadyReady` skips re-announcing readiness when the caller
   * is the readiness handler itself.
   */
  private launch(req: DeployRequest, agentsAlreadyReady: boolean): void {
    this.pendingId = req.id;
    this.agents.applyInstances(req.state.config.instances);
    if (req.state.config.instances.length === 0) {
      this.complete(req);
      return;
    }
    if (agentsAlreadyReady && this.ctx.instances.allReady()) this.deployToAgents(req);
    else this.agents.checkAllReady();
  }

  /** Upstream `config_deploy_to_agents`, sending only to agents that lack it so far. */
  private deployToAgents(req: DeployRequest): void {
    const config = req.state.config;
    for (const name of this.ctx.instances.readyNames()) {
      if (req.state.sentTo.has(name)) continue;
      const child = this.ctx.requests.create({ parentId: req.id, state: { kind: "agent", instance: name, op: "deploy" }, ownTimer: false });
      req.state.sentTo.add(name);
      // Every agent gets the same configuration: encoded once per deployment, not per agent.
      this.agents.sendFrame(name, this.template(req), child.id, () => AgentApi.deploy_request.make(child.id, config, false));
      this.ctx.log.info(`tx ${AgentApi.deploy_request.name} ${child.id} to ${name}`);
    }
  }

  private template(req: DeployRequest): EventFrameTemplate {
    if (this.frames?.reqid !== req.id) {
      const sample = AgentApi.deploy_request.make("", req.state.config, false);
      this.frames = { reqid: req.id, template: new EventFrameTemplate(sample.name, sample.args.slice(1)) };
    }
    return this.frames.template;
  }

  private complete(req: DeployRequest): void {
    const { config, internal } = req.state;
    if (this.pendingId === req.id) this.pendingId = undefined;
    if (this.frames?.reqid === req.id) this.frames = undefined;
    this.ctx.configs.set("DEPLOYED", config);
    req.results.push(makeResult(req.id, { data: B.str(config.id) }));
    this.ctx.requests.finish(req.id);
    // An internal deploy re-sends what is already stored.
    const stored = internal ? Promise.resolve() : this.ctx.configs.persist({ DEPLOYED: config });
    void stored.then(() => {
      if (!internal) this.ctx.replyAll(ControllerApi.deploy_response, req.id, req.results, req);
    });
  }
}

/** Agents send NodeOutputs for failed nodes; anything else in `data` is not passed on. */
function normalizeNodeOutputsResult(result: Result, log: Logger): Result {
  if (result.data === undefined) return result;
  try {
    return { ...result, data: NodeOutputsCodec.encode(NodeOutputsCodec.decode(result.data, "data")) };
  } catch (err) {
    log.warning(`dropping unexpected data in deploy result (${resultToString(result)}): ${errorMessage(err)}`);
    const copy = { ...result };
    delete copy.data;
    return copy;
  }
}
