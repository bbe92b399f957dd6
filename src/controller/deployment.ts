// Deployment: a configuration goes to every agent of its instances once all of them are
// ready, and the deployment is answered when each has answered (or at the timeout). At
// most one deployment is pending; agents that come back get the deployed configuration
// again through internal deployments that answer nobody.
//
// A deployment changes nothing that runs until every instance of its configuration is
// ready: instances it drops get standby only then, so one naming an instance that never
// connects leaves the cluster as it was. A deployment whose nodes do not come up rolls
// back to DEPLOYED (see ./deploy-check.ts for what "come up" means). The configuration
// is recorded as DEPLOYING before it goes out, so a controller restarted mid-deployment
// finishes that deployment instead of redeploying the old one first and the new one
// after (which restarted every node twice).

import { B } from "../broker/data.js";
import { errorMessage } from "../broker/errors.js";
import { EventFrameTemplate } from "../broker/frame-template.js";
import { AgentApi } from "../agent/api.js";
import type { Logger } from "../management/log.js";
import { NodeOutputsCodec, makeResult, resultToString } from "../management/records.js";
import type { Configuration, Result } from "../management/types.js";
import type { Agents } from "./agents.js";
import { ControllerApi } from "./api.js";
import {
  TIMED_OUT,
  byName,
  unlessDuplicate,
  type ControllerContext,
  type ControllerRequest,
  type DeployState,
  type RollbackOf,
} from "./context.js";
import { DeployCheck, type DeployCheckSettings } from "./deploy-check.js";
import type { DeployHistory } from "./deploy-history.js";

type DeployRequest = ControllerRequest<"deploy">;

export interface DeploymentSettings extends DeployCheckSettings {
  /** Roll back a failed deployment unless the client says otherwise. */
  rollback: boolean;
}

type DeployKind = Pick<DeployState, "internal" | "redeploy" | "rollback"> & { rollbackOf?: RollbackOf };

/** Re-sends of DEPLOYED: at start-up and when agents come back. */
const REDEPLOY: DeployKind = { internal: true, redeploy: true, rollback: false };

export class Deployment {
  private pendingId: string | undefined;
  private readonly check: DeployCheck;
  /** The deploy_request of the deployment sent last, encoded once for all its agents. */
  private frames: { reqid: string; template: EventFrameTemplate } | undefined;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly agents: Agents,
    private readonly settings: DeploymentSettings,
    private readonly history?: DeployHistory,
  ) {
    this.check = new DeployCheck(ctx, agents, settings, {
      passed: (req) => this.complete(req),
      failed: (req, reason) => this.failed(req, reason),
    });
  }

  /** At start-up: finishes a deployment a previous run left under way, or redeploys DEPLOYED. */
  resume(): void {
    const { log, configs } = this.ctx;
    const deployed = configs.get("DEPLOYED");
    const inFlight = configs.get("DEPLOYING");
    if (inFlight && deployed && inFlight.id !== deployed.id) {
      // Agents that already run it answer without touching their nodes. (Without DEPLOYED
      // there is nothing to redeploy instead, and nothing to roll back to: as before, the
      // interrupted first deployment stays undeployed until a client deploys again.)
      const req = this.createRequest(undefined, inFlight, { internal: true, redeploy: false, rollback: this.settings.rollback });
      log.info(`finishing the deployment of configuration ${inFlight.id} that was under way, request ${req.id}`);
      this.launch(req);
      return;
    }
    if (!deployed) return;
    const req = this.createRequest(undefined, deployed, REDEPLOY);
    log.info(`deploying persisted configuration ${deployed.id}, request ${req.id}`);
    this.launch(req);
  }

  /** A client's deploy_request; `rollback` undefined takes the controller's default. */
  onRequest(reqid: string, rollback: boolean | undefined): void {
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
    const kind = { internal: false, redeploy: false, rollback: rollback ?? this.settings.rollback };
    const req = unlessDuplicate(log, () => this.createRequest(reqid, ready, kind));
    if (req) this.launch(req);
  }

  /** Every wanted instance is ready: deploy what is pending, or bring agents in line. */
  onAgentsReady(names: string[]): void {
    const { log, configs } = this.ctx;
    // The single colon is upstream's spelling of this line.
    log.info(`rx Management::Controller::API:notify_agents_ready ${names.join(", ")}`);
    const pending = this.pending();
    if (pending) {
      this.advance(pending);
      return;
    }
    // Agents (re)appeared while nothing is being deployed: bring them in line with the
    // deployed configuration. Agents already running it answer without touching nodes.
    const deployed = configs.get("DEPLOYED");
    if (!deployed) return;
    const req = this.createRequest(undefined, deployed, REDEPLOY);
    log.info(`no deployment in progress, triggering via ${req.id}`);
    this.launch(req);
  }

  /** One instance became ready; the pending deployment may go ahead or resend to it. */
  onInstanceReady(): void {
    const pending = this.pending();
    if (pending) this.advance(pending);
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
    if (parent.state.config.instances.every((i) => parent.state.answered.has(i.name))) this.answered(parent);
  }

  /** An agent's get_nodes answer; false when it belongs to no deployment's check. */
  onNodesResponse(reqid: string, result: Result): boolean {
    return this.check.onResponse(reqid, result);
  }

  timedOut(req: DeployRequest): void {
    const { configs, instances } = this.ctx;
    if (this.pendingId === req.id) this.pendingId = undefined;
    const { config, phase } = req.state;
    if (this.frames?.reqid === req.id) this.frames = undefined;
    req.results.push(makeResult(req.id, { success: false, error: TIMED_OUT }));
    // Upstream fix: a bare "request timed out" does not tell the operator that the
    // configuration never left the controller because some agents were missing. Name them.
    for (const inst of [...config.instances].sort(byName)) {
      if (req.state.answered.has(inst.name) || instances.isReady(inst.name)) continue;
      const error = instances.isKnown(inst.name) ? `instance '${inst.name}' did not become ready` : instances.notConnected(inst.name);
      req.results.push(makeResult(req.id, { success: false, instance: inst.name, error }));
    }
    const deployed = configs.get("DEPLOYED");
    if ((phase === "waiting" || phase === "recording") && !req.state.rollbackOf) {
      // Nothing went out and no instance of DEPLOYED was dropped: undo the instances this
      // deployment added, so instance bookkeeping matches what is deployed again. Only
      // those get standby, and they run nothing of DEPLOYED. (Upstream kept the new
      // instance set and swapped it back silently later.)
      this.ctx.log.info(
        `deployment ${req.id} never reached the agents; ` +
          (deployed ? `keeping the instances of deployed configuration ${deployed.id}` : "no configuration is deployed"),
      );
      this.agents.applyInstances(deployed ? deployed.instances : []);
      if (phase === "recording" && deployed) void configs.persist({ DEPLOYING: deployed });
      this.recordEnd(req, TIMED_OUT);
      this.answer(req, req.results);
      return;
    }
    this.failed(req, TIMED_OUT);
  }

  /**
   * A deployment still waiting on a lost agent resends to it once it is back, instead of
   * waiting for an answer that a restarted agent will never give.
   */
  agentLost(name: string): void {
    const pending = this.pending();
    if (!pending) return;
    if (pending.state.phase === "checking") {
      this.check.agentLost(pending, name);
      return;
    }
    if (!pending.state.sentTo.has(name) || pending.state.answered.has(name)) return;
    pending.state.sentTo.delete(name);
    for (const child of this.ctx.requests.childrenOf(pending.id)) {
      if (child.state.kind === "agent" && child.state.instance === name) this.ctx.requests.cancel(child.id);
    }
  }

  private createRequest(reqid: string | undefined, config: Configuration, kind: DeployKind): DeployRequest {
    return this.ctx.requests.create({
      ...(reqid !== undefined ? { id: reqid } : {}),
      state: {
        kind: "deploy",
        config: structuredClone(config),
        ...kind,
        phase: "waiting",
        sentTo: new Set<string>(),
        answered: new Set<string>(),
        observed: new Map(),
        baseline: undefined,
      },
    });
  }

  private pending(): DeployRequest | undefined {
    return this.pendingId === undefined ? undefined : this.ctx.requests.getOfKind(this.pendingId, "deploy");
  }

  /** Upstream `deploy()`, except that no instance is dropped before the configuration goes out. */
  private launch(req: DeployRequest): void {
    this.pendingId = req.id;
    this.history?.started(req.id, req.state.config.id, req.state.internal);
    this.ctx.metrics.deployStarted(req.id, req.state.internal ? "internal" : "client");
    this.agents.addInstances(req.state.config.instances);
    this.advance(req);
    if (req.state.phase === "waiting") this.agents.checkAllReady();
  }

  /** Moves a pending deployment on as far as its instances' readiness allows. */
  private advance(req: DeployRequest): void {
    const { instances } = this.ctx;
    if (req.state.phase === "sent") {
      this.deployToAgents(req);
      return;
    }
    if (req.state.phase !== "waiting") return;
    if (!req.state.config.instances.every((i) => instances.isReady(i.name))) return;
    req.state.phase = "recording";
    const { config } = req.state;
    // Recorded before anything goes out: a restart must know what the agents may run.
    const recorded = req.state.redeploy ? Promise.resolve() : this.ctx.configs.persist({ DEPLOYING: config });
    void recorded.then(() => {
      if (req.finished || this.pending() !== req) return;
      req.state.phase = "sent";
      this.agents.applyInstances(config.instances);
      if (config.instances.length === 0) this.answered(req);
      else this.deployToAgents(req);
    });
  }

  /** Upstream `config_deploy_to_agents`, sending only to agents that lack it so far. */
  private deployToAgents(req: DeployRequest): void {
    const { instances } = this.ctx;
    const config = req.state.config;
    for (const inst of [...config.instances].sort(byName)) {
      const name = inst.name;
      if (req.state.sentTo.has(name) || !instances.isReady(name)) continue;
      const child = this.ctx.requests.create({ parentId: req.id, state: { kind: "agent", instance: name, op: "deploy" }, ownTimer: false });
      req.state.sentTo.add(name);
      // Every agent gets the same configuration: encoded once per deployment, not per agent.
      this.agents.sendFrame(name, this.template(req), child.id, () => AgentApi.deploy_request.make(child.id, config, false));
      this.ctx.log.info(`tx ${AgentApi.deploy_request.name} ${child.id} to ${name}`);
    }
  }

  /** Every agent answered: done, rolled back, or on to checking the nodes. */
  private answered(req: DeployRequest): void {
    const failure = req.state.rollbackOf || this.mayRollBack(req) ? firstFailure(req.results) : undefined;
    if (failure !== undefined) this.failed(req, failure);
    else if (!this.mayRollBack(req)) this.complete(req);
    else {
      req.state.phase = "checking";
      this.check.start(req);
    }
  }

  private mayRollBack(req: DeployRequest): boolean {
    const deployed = this.ctx.configs.get("DEPLOYED");
    return req.state.rollback && deployed !== undefined && deployed.id !== req.state.config.id;
  }

  /** The deployment did not bring its nodes up (or timed out after going out). */
  private failed(req: DeployRequest, reason: string): void {
    const { log, configs, requests } = this.ctx;
    if (this.pendingId === req.id) this.pendingId = undefined;
    if (this.frames?.reqid === req.id) this.frames = undefined;
    requests.finish(req.id);
    const { config, internal, rollbackOf } = req.state;
    const deployed = configs.get("DEPLOYED");
    this.recordEnd(req, reason);
    if (rollbackOf) {
      const error = `deployment failed; rolling back to configuration ${config.id} failed too (${reason})`;
      log.error(error);
      void configs.persist({ DEPLOYED: config, DEPLOYING: config });
      this.answerRollback(rollbackOf, [...req.results, makeResult(rollbackOf.reqid ?? req.id, { success: false, error })]);
      return;
    }
    if (!this.mayRollBack(req) || !deployed) {
      // Today's answer: the failures as they came, DEPLOYED left as it was. The agents may run
      // parts of this configuration now; what a restart redeploys must say the same.
      if (deployed) void configs.persist({ DEPLOYING: deployed });
      this.answer(req, req.results);
      return;
    }
    log.warning(`deployment ${req.id} of configuration ${config.id} failed (${reason}); rolling back to configuration ${deployed.id}`);
    this.ctx.metrics.deployRolledBack();
    const rollback = this.createRequest(undefined, deployed, {
      internal: true,
      redeploy: false,
      rollback: false,
      rollbackOf: {
        reqid: internal ? undefined : req.id,
        failedId: config.id,
        results: [
          ...req.results,
          makeResult(req.id, { success: false, error: `deployment of configuration ${config.id} failed: ${reason}` }),
        ],
      },
    });
    this.launch(rollback);
  }

  private template(req: DeployRequest): EventFrameTemplate {
    if (this.frames?.reqid !== req.id) {
      const sample = AgentApi.deploy_request.make("", req.state.config, false);
      this.frames = { reqid: req.id, template: new EventFrameTemplate(sample.name, sample.args.slice(1)) };
    }
    return this.frames.template;
  }

  private complete(req: DeployRequest): void {
    const { config, redeploy, rollbackOf } = req.state;
    if (this.pendingId === req.id) this.pendingId = undefined;
    if (this.frames?.reqid === req.id) this.frames = undefined;
    this.ctx.configs.set("DEPLOYED", config);
    this.ctx.requests.finish(req.id);
    this.recordEnd(req, firstFailure(req.results));
    // A redeploy re-sends what is already stored.
    const stored = redeploy ? Promise.resolve(undefined) : this.ctx.configs.persist({ DEPLOYED: config, DEPLOYING: config });
    void stored.then((error) => {
      // The nodes run it, but a restarted controller would not know: the client must hear that.
      if (error !== undefined) req.results.push(makeResult(req.id, { success: false, error }));
      if (rollbackOf) {
        const error = `deployment failed; rolled back to configuration ${config.id}`;
        this.ctx.log.warning(error);
        this.answerRollback(rollbackOf, [...rollbackOf.results, makeResult(rollbackOf.reqid ?? req.id, { success: false, error })]);
        return;
      }
      req.results.push(makeResult(req.id, { data: B.str(config.id) }));
      this.answer(req, req.results);
    });
  }

  /** Deploy history and metrics: how a deployment ended (`failure` undefined: it succeeded). */
  private recordEnd(req: DeployRequest, failure: string | undefined): void {
    const failedNodes = req.results.filter((r) => !r.success && r.node !== undefined).length;
    if (failure === undefined) {
      this.history?.finished(req.id, "SUCCEEDED", failedNodes);
      this.ctx.metrics.deployFinished(req.id, "success");
      return;
    }
    const timedOut = failure === TIMED_OUT;
    this.history?.finished(req.id, timedOut ? "TIMED_OUT" : "FAILED", failedNodes, failure);
    this.ctx.metrics.deployFinished(req.id, timedOut ? "timeout" : "failure");
  }

  private answer(req: DeployRequest, results: Result[]): void {
    if (!req.state.internal) this.ctx.replyAll(ControllerApi.deploy_response, req.id, results, req);
  }

  private answerRollback(of: RollbackOf, results: Result[]): void {
    if (of.reqid !== undefined) this.ctx.replyAll(ControllerApi.deploy_response, of.reqid, results);
  }
}

/** Why a deployment failed, from its agents' results; undefined when none failed. */
function firstFailure(results: readonly Result[]): string | undefined {
  const failures = results.filter((r) => !r.success);
  const named = failures.find((r) => r.node !== undefined) ?? failures[0];
  if (!named) return undefined;
  return named.error ?? (named.node !== undefined ? `node ${named.node} failed` : "an agent failed");
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
