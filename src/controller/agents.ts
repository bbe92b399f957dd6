// Agent check-in: hellos, welcomes, lost links, the links we dial, and moving the set of
// wanted instances (upstream's drop_instance / add_instance). Everything sent to an agent
// goes through `send`, which picks the agent's own link.

import type { EventFrameTemplate } from "../broker/frame-template.js";
import type { Hub } from "../broker/hub.js";
import { eventToData, type ZeekEvent } from "../broker/messages.js";
import { AgentApi, agentTopic } from "../agent/api.js";
import { resultToString } from "../management/records.js";
import type { Instance, Result } from "../management/types.js";
import { compareText } from "../management/validation.js";
import { CONTROLLER_API_VERSION } from "./api.js";
import { byName, type ControllerContext, type ControllerRequest } from "./context.js";
import { sameLink, type AgentDialer, type AgentLink, type Dial } from "./links.js";

const UNKNOWN_HOST = "0.0.0.0";

export interface AgentHooks {
  /** Every wanted instance is ready (upstream's internal notify_agents_ready). */
  allReady(names: string[]): void;
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

  onHello(instance: string, agentId: string, connecting: boolean, version: number, link: AgentLink): void {
    const { log, instances } = this.ctx;
    log.info(`rx ${AgentApi.notify_agent_hello.name} ${instance} ${agentId} ${connecting ? "T" : "F"}`);
    if (version !== CONTROLLER_API_VERSION) {
      log.warning(`instance ${instance}/${agentId} has checked in with incompatible API version ${version}`);
      if (instances.isWanted(instance)) this.drop(instance, link);
      this.forget(instance);
      return;
    }

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
        ready: () => log.debug(`broker peer ${host}:${port} added: connected to instance ${instance}`),
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
