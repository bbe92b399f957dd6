// Agent check-in: hellos, welcomes, lost links, the links we dial, and moving the set of
// wanted instances (upstream's drop_instance / add_instance). Everything sent to an agent
// goes through `send`, which picks the agent's own link.

import type { EventFrameTemplate } from "../broker/frame-template.js";
import type { Hub } from "../broker/hub.js";
import { eventToData, type ZeekEvent } from "../broker/messages.js";
import { AgentApi, agentTopic } from "../agent/api.js";
import { AGENT_REFUSED, principalInstance } from "../management/agent-auth.js";
import { resultToString } from "../management/records.js";
import type { Instance, Result } from "../management/types.js";
import { compareText } from "../management/validation.js";
import { CONTROLLER_API_VERSION } from "./api.js";
import { byName, type ControllerContext, type ControllerRequest } from "./context.js";
import { describeOrigin, sameLink, type AgentDialer, type AgentLink, type Dial } from "./links.js";

/** Events only an agent may send; a client publishing one is ignored. */
const AGENT_ONLY = new Set(
  Object.values(AgentApi)
    .map((spec) => spec.name)
    .filter((name) => name.endsWith("_response") || name.includes("::notify_")),
);

const UNKNOWN_HOST = "0.0.0.0";

export interface AgentHooks {
  /** Every wanted instance is ready (upstream's internal notify_agents_ready). */
  allReady(names: string[]): void;
  /** One instance became ready. */
  ready(name: string): void;
  /** An agent's state was dropped; requests waiting on it must not wait any longer. */
  lost(name: string): void;
  /** An event that arrived over a dialed link. */
  event(event: ZeekEvent, link: AgentLink): void;
}

/** Upstream's `is_instance_connectivity_change`. */
function connectivityChanged(current: Instance, next: Instance): boolean {
  if (next.host !== UNKNOWN_HOST && next.host !== current.host) return true;
  if ((current.listenPort === undefined) !== (next.listenPort === undefined)) return true;
  return current.listenPort !== undefined && current.listenPort !== next.listenPort;
}

export class Agents {
  private closed = false;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly hub: Hub,
    private readonly dialAgent: AgentDialer,
    private readonly hooks: AgentHooks,
  ) {}

  /** Stops sending and closes the dialed links. */
  async close(): Promise<void> {
    this.closed = true;
    const dials = this.ctx.instances.takeDials();
    await Promise.all(dials.map((d) => d.handle.close().catch(() => undefined)));
  }

  /**
   * Whether an agent-only event may come over this link. A hello must come from a link that
   * proved the instance name (a dial-in's secret or certificate, or the link we dialed for
   * that instance); anything else an agent sends, only from a link an instance checked in
   * over, and an event naming its instance only from that instance's own link.
   */
  admits(event: ZeekEvent, link: AgentLink): boolean {
    if (event.name !== AgentApi.notify_agent_hello.name && !AGENT_ONLY.has(event.name)) return true;
    const claimed = event.args[0]?.type === "string" ? event.args[0].value : undefined;
    let ok: boolean;
    if (event.name === AgentApi.notify_agent_hello.name) {
      ok = claimed !== undefined && this.proves(link, claimed);
    } else if (event.name.includes("::notify_")) {
      const agent = claimed !== undefined ? this.ctx.instances.agent(claimed) : undefined;
      ok = agent !== undefined && sameLink(agent.link, link);
    } else {
      // A link carries at most one instance: the one its credentials or our dial name.
      const own = link.kind === "dialed" ? link.dial.instance : principalInstance(link.origin.principal);
      const agent = own !== undefined ? this.ctx.instances.agent(own) : undefined;
      ok = agent !== undefined && sameLink(agent.link, link);
    }
    if (!ok) {
      const from = link.kind === "hub" ? describeOrigin(link.origin) : `${link.dial.host}:${link.dial.port}`;
      this.ctx.log.warning(`ignoring ${event.name} from ${from}: not the agent of ${claimed ?? "any instance"}`);
    }
    return ok;
  }

  private proves(link: AgentLink, instance: string): boolean {
    if (link.kind === "dialed") return link.dial.instance === instance && this.ctx.instances.dial(instance) === link.dial;
    return principalInstance(link.origin.principal) === instance && this.hub.connection(link.origin.id) !== undefined;
  }

  /** Whether the link an agent checked in over still stands. */
  private alive(link: AgentLink): boolean {
    if (link.kind === "dialed") return this.ctx.instances.dial(link.dial.instance) === link.dial;
    return this.hub.connection(link.origin.id) !== undefined;
  }

  /** Tells an agent that dialed in why it is not taken, and hangs up; dialed links just go unheard. */
  private refuse(link: AgentLink, message: string): void {
    this.ctx.log.warning(message);
    if (link.kind !== "hub") return;
    const conn = this.hub.connection(link.origin.id);
    conn?.sendError(AGENT_REFUSED, message);
    conn?.close(1008, "agent refused");
  }

  onHello(instance: string, agentId: string, connecting: boolean, version: number, link: AgentLink): void {
    const { log, instances } = this.ctx;
    log.info(`rx ${AgentApi.notify_agent_hello.name} ${instance} ${agentId} ${connecting ? "T" : "F"}`);
    const current = instances.agent(instance);
    // A second agent for a live instance never takes its place: that would orphan the
    // running nodes. The same agent process coming back over a new link (its old one not yet
    // noticed as dead) keeps its id and is taken, and the stale link is closed.
    const replacing = current !== undefined && !sameLink(current.link, link) && this.alive(current.link);
    if (replacing && current.agentId !== agentId) {
      this.refuse(
        link,
        `instance ${instance} already has a live agent (Broker ID ${current.agentId}); ` +
          `refusing a second agent with that name (Broker ID ${agentId}). Give each agent a name of its own`,
      );
      return;
    }
    if (version !== CONTROLLER_API_VERSION) {
      const message = `instance ${instance}/${agentId} has checked in with incompatible API version ${version} (expected ${CONTROLLER_API_VERSION})`;
      if (replacing) {
        // The live agent is not the one at fault.
        this.refuse(link, message);
        return;
      }
      if (instances.isWanted(instance)) this.drop(instance, link);
      this.forget(instance);
      this.refuse(link, message);
      return;
    }
    if (replacing && current.link.kind === "hub")
      this.hub.connection(current.link.origin.id)?.close(1008, "replaced by a new link of the same agent");

    // The link decides the direction, not the agent's `connecting` flag: a dial-in's
    // source port is ephemeral and must never be mistaken for a listen port.
    let observed: Instance;
    if (link.kind === "dialed") {
      observed = { name: instance, host: link.dial.host, listenPort: link.dial.port };
    } else if (link.origin.remoteAddress !== undefined) {
      observed = { name: instance, host: link.origin.remoteAddress };
    } else {
      log.warning(`notify_agent_hello from ${instance} lacks network state, Broker ID ${agentId}`);
      return;
    }

    const previous = instances.checkIn({ observed, agentId, link });
    log.debug(`instance ${instance} ${previous ? "checked in again" : "newly checked in"}`);
    if (instances.isWanted(instance) && instances.phase(instance).kind === "checked-in") this.welcome(instance);
  }

  onWelcomeResponse(reqid: string, result: Result): void {
    const { log, requests, instances } = this.ctx;
    log.info(`rx ${AgentApi.agent_welcome_response.name} ${reqid} ${resultToString(result)}`);
    const req = requests.getOfKind(reqid, "welcome");
    if (!req) return;
    const instance = req.state.instance;
    requests.finish(reqid);
    instances.welcomeEnded(instance, reqid);
    if (!result.success || !instances.isWanted(instance)) {
      this.sendStandby(instance);
      return;
    }
    if (!instances.markReady(instance)) return;
    log.info(`instance ${instance} ready`);
    this.hooks.ready(instance);
    this.checkAllReady();
  }

  welcomeTimedOut(req: ControllerRequest<"welcome">): void {
    this.ctx.instances.welcomeEnded(req.state.instance, req.id);
  }

  /** Peer loss: the agent must check in again before it gets anything from us. */
  linkLost(link: AgentLink, reason: string): void {
    for (const agent of this.ctx.instances.known()) {
      if (!sameLink(agent.link, link)) continue;
      this.ctx.log.debug(`broker peer ${agent.agentId} lost: ${reason}`);
      this.forget(agent.observed.name);
      this.ctx.log.info(`dropped state for instance ${agent.observed.name}`);
    }
  }

  /** Upstream `check_instances_ready`, raising the internal `notify_agents_ready`. */
  checkAllReady(): void {
    if (this.ctx.instances.allReady()) this.hooks.allReady(this.ctx.instances.wantedNames());
  }

  /**
   * Wants every instance of `target` as well (welcoming those that checked in) and drops
   * none, so no agent changes what it runs yet. Only an instance whose address changed is
   * dropped at its old address, as it cannot be reached at the new one otherwise.
   */
  addInstances(target: readonly Instance[]): void {
    const current = new Map(this.ctx.instances.wanted().map((i) => [i.name, i]));
    for (const inst of [...target].sort(byName)) {
      const wanted = current.get(inst.name);
      if (wanted && !connectivityChanged(wanted, inst)) continue;
      if (wanted) this.drop(inst.name);
      this.ctx.log.debug(`adding instance ${inst.name}`);
      this.add(inst);
    }
  }

  /** Moves the wanted instances to the given set, with standby for dropped and welcome for added. */
  applyInstances(target: readonly Instance[]): void {
    const { log, instances } = this.ctx;
    const next = new Map(target.map((i) => [i.name, i]));
    const drop: string[] = [];
    const add: Instance[] = [];
    for (const current of instances.wanted()) {
      const wanted = next.get(current.name);
      if (!wanted) drop.push(current.name);
      else if (connectivityChanged(current, wanted)) {
        drop.push(current.name);
        add.push(wanted);
      }
    }
    for (const inst of next.values()) if (!instances.isWanted(inst.name)) add.push(inst);
    for (const name of drop.sort(compareText)) {
      log.debug(`dropping instance ${name}`);
      this.drop(name);
    }
    for (const inst of add.sort(byName)) {
      log.debug(`adding instance ${inst.name}`);
      this.add(inst);
    }
  }

  /**
   * Sends to exactly the agent's own link. Publishing on the agent topic instead would
   * also reach every agent whose name merely starts with this one (topics match by prefix).
   */
  send(instance: string, event: ZeekEvent, link: AgentLink | undefined = this.ctx.instances.agent(instance)?.link): boolean {
    if (!link || this.closed) return false;
    const topic = agentTopic(instance);
    if (link.kind === "dialed") return link.dial.handle.publishEvent(topic, event);
    return this.hub.sendTo(link.origin.id, topic, eventToData(event));
  }

  /**
   * Like send, for an event encoded once for many agents: only topic and request id are
   * spliced in per agent. Dialed links encode the event themselves.
   */
  sendFrame(instance: string, template: EventFrameTemplate, reqid: string, event: () => ZeekEvent): boolean {
    const link = this.ctx.instances.agent(instance)?.link;
    if (!link || this.closed) return false;
    const topic = agentTopic(instance);
    if (link.kind === "dialed") return link.dial.handle.publishEvent(topic, event());
    return this.hub.sendFrameTo(link.origin.id, template.splice(topic, reqid), () => template.tailBuffer());
  }

  private welcome(instance: string): void {
    const { log, requests, instances } = this.ctx;
    if (instances.phase(instance).kind !== "checked-in" || !instances.isWanted(instance)) return;
    const req = requests.create({ state: { kind: "welcome", instance } });
    instances.welcoming(instance, req.id);
    this.send(instance, AgentApi.agent_welcome_request.make(req.id));
    log.info(`tx ${AgentApi.agent_welcome_request.name} ${req.id} to ${instance}`);
  }

  private forget(name: string): void {
    this.ctx.instances.forget(name);
    this.hooks.lost(name);
  }

  private drop(name: string, link?: AgentLink): void {
    this.sendStandby(name, link);
    this.ctx.instances.unwant(name);
    this.ctx.log.info(`dropped instance ${name}`);
  }

  private add(inst: Instance): void {
    const { log, instances } = this.ctx;
    instances.want(inst);
    if (inst.listenPort !== undefined) this.ensureDial(inst.name, inst.host, inst.listenPort);
    const agent = instances.agent(inst.name);
    if (!agent) {
      log.debug(`instance ${inst.name} not known to us, skipping`);
      return;
    }
    if (inst.listenPort === undefined) instances.want({ ...inst, host: agent.observed.host });
    this.welcome(inst.name);
  }

  private sendStandby(instance: string, link?: AgentLink): void {
    // Standby carries no reqid: nobody waits for its answer.
    if (this.send(instance, AgentApi.agent_standby_request.make(""), link)) {
      this.ctx.log.info(`tx ${AgentApi.agent_standby_request.name} to ${instance}`);
    }
  }

  private ensureDial(instance: string, host: string, port: number): void {
    const { log, instances } = this.ctx;
    const existing = instances.dial(instance);
    if (existing && existing.host === host && existing.port === port) return;
    if (existing) {
      instances.setDial(instance, undefined);
      // Forget what came in over the old address right away, so the instance is
      // welcomed again once it checks in at the new one.
      this.linkLost({ kind: "dialed", dial: existing }, "address changed");
      void existing.handle.close().catch(() => undefined);
    }
    const ref: { dial?: Dial } = {};
    const handle = this.dialAgent(
      { instance, host, port, topic: agentTopic(instance) },
      {
        ready: () => {
          if (ref.dial?.refusal !== undefined)
            log.info(`the agent of instance ${instance} at ${host}:${port} accepts this controller again`);
          if (ref.dial) delete ref.dial.refusal;
          log.debug(`broker peer ${host}:${port} added: connected to instance ${instance}`);
        },
        refused: (message) => {
          // Retried every second: said once per reason, not once per attempt.
          if (!ref.dial || ref.dial.refusal === message) return;
          ref.dial.refusal = message;
          log.warning(`the agent of instance ${instance} at ${host}:${port} refused this controller: ${message}`);
        },
        down: (reason) => {
          if (ref.dial) this.linkLost({ kind: "dialed", dial: ref.dial }, reason);
        },
        event: (_topic, event) => {
          if (ref.dial && instances.dial(instance) === ref.dial) this.hooks.event(event, { kind: "dialed", dial: ref.dial });
        },
      },
    );
    ref.dial = { instance, host, port, handle };
    instances.setDial(instance, ref.dial);
  }
}
