// Per-instance state: one entry per instance name, holding whether the configuration wants
// it (upstream g_instances), where its agent stands with us (upstream g_instances_known and
// g_instances_ready, plus the pending welcome) and the link we dial to it. Keeping all of
// it in one entry, changed only through the transitions below, means no path can forget
// one part of an instance while another part lingers.

import { compareText } from "../management/validation.js";
import type { Instance } from "../management/types.js";
import { sameLink, type AgentLink, type Dial } from "./links.js";

/** An agent that checked in. */
export interface CheckedIn {
  /** Name, observed host, and the dialed port for instances we connect to. */
  readonly observed: Instance;
  /** The id the agent sent in its hello (its Broker endpoint id upstream). */
  readonly agentId: string;
  readonly link: AgentLink;
}

/**
 * Where an instance's agent stands. Only a wanted instance is welcomed, and only a
 * welcomed one is ready: losing the agent or the want falls back to an earlier phase.
 */
export type AgentPhase =
  | { readonly kind: "offline" }
  | { readonly kind: "checked-in"; readonly agent: CheckedIn }
  | { readonly kind: "welcoming"; readonly agent: CheckedIn; readonly reqid: string }
  | { readonly kind: "ready"; readonly agent: CheckedIn };

interface InstanceEntry {
  readonly name: string;
  /** Set while the configuration being deployed (or deployed) has the instance. */
  wanted: Instance | undefined;
  phase: AgentPhase;
  /** Our link to an instance with a listen port; like upstream's peerings it outlives `wanted`. */
  dial: Dial | undefined;
}

const OFFLINE: AgentPhase = { kind: "offline" };

export class InstanceRegistry {
  private readonly entries = new Map<string, InstanceEntry>();
  /** Entries by name, kept until one is added or removed: every agent message asks. */
  private sortedEntries: InstanceEntry[] | undefined;

  /** `onWelcomeDropped` runs for a pending welcome that a transition made moot. */
  constructor(private readonly onWelcomeDropped: (reqid: string) => void) {}

  phase(name: string): AgentPhase {
    return this.entries.get(name)?.phase ?? OFFLINE;
  }

  agent(name: string): CheckedIn | undefined {
    const phase = this.phase(name);
    return phase.kind === "offline" ? undefined : phase.agent;
  }

  isKnown(name: string): boolean {
    return this.phase(name).kind !== "offline";
  }

  isReady(name: string): boolean {
    return this.phase(name).kind === "ready";
  }

  isWanted(name: string): boolean {
    return this.entries.get(name)?.wanted !== undefined;
  }

  /** Agents that checked in, by instance name. */
  known(): CheckedIn[] {
    return this.sorted().flatMap((e) => (e.phase.kind === "offline" ? [] : [e.phase.agent]));
  }

  knownNames(): string[] {
    return this.known().map((a) => a.observed.name);
  }

  wanted(): Instance[] {
    return this.sorted().flatMap((e) => (e.wanted ? [e.wanted] : []));
  }

  wantedNames(): string[] {
    return this.wanted().map((i) => i.name);
  }

  /** Wanted instances whose agents are ready, by name. */
  readyNames(): string[] {
    return this.sorted().flatMap((e) => (e.wanted && e.phase.kind === "ready" ? [e.name] : []));
  }

  allReady(): boolean {
    for (const e of this.entries.values()) if (e.wanted && e.phase.kind !== "ready") return false;
    return true;
  }

  // -------------------------------------------------------------------------------------
  // Transitions.

  /**
   * An agent said hello. Over the link it already used, its phase stands; over a new one it
   * may have restarted and lost its cluster, so it must be welcomed (resynchronised) again.
   */
  checkIn(agent: CheckedIn): CheckedIn | undefined {
    const entry = this.entry(agent.observed.name);
    const phase = entry.phase;
    if (phase.kind === "offline") {
      entry.phase = { kind: "checked-in", agent };
      return undefined;
    }
    if (!sameLink(phase.agent.link, agent.link)) this.leave(entry, { kind: "checked-in", agent });
    else entry.phase = { ...phase, agent };
    return phase.agent;
  }

  /** The agent is gone: it has to check in again before it gets anything from us. */
  forget(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.leave(entry, OFFLINE);
    this.prune(entry);
  }

  want(instance: Instance): void {
    this.entry(instance.name).wanted = instance;
  }

  unwant(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    entry.wanted = undefined;
    if (entry.phase.kind !== "offline") this.leave(entry, { kind: "checked-in", agent: entry.phase.agent });
    this.prune(entry);
  }

  /** False unless the agent is checked in and neither welcomed nor being welcomed. */
  welcoming(name: string, reqid: string): boolean {
    const entry = this.entries.get(name);
    if (!entry || entry.phase.kind !== "checked-in" || !entry.wanted) return false;
    entry.phase = { kind: "welcoming", agent: entry.phase.agent, reqid };
    return true;
  }

  /** The welcome `reqid` was answered or timed out. */
  welcomeEnded(name: string, reqid: string): void {
    const entry = this.entries.get(name);
    if (entry?.phase.kind === "welcoming" && entry.phase.reqid === reqid) {
      entry.phase = { kind: "checked-in", agent: entry.phase.agent };
    }
  }

  /** False when the instance is not wanted or its agent not checked in. */
  markReady(name: string): boolean {
    const entry = this.entries.get(name);
    if (!entry?.wanted || entry.phase.kind === "offline") return false;
    entry.phase = { kind: "ready", agent: entry.phase.agent };
    return true;
  }

  dial(name: string): Dial | undefined {
    return this.entries.get(name)?.dial;
  }

  /** The error for an instance with no agent, with the reason when its agent refused us. */
  notConnected(name: string): string {
    const refusal = this.dial(name)?.refusal;
    return `instance '${name}' is not connected` + (refusal !== undefined ? `: its agent refused this controller: ${refusal}` : "");
  }

  setDial(name: string, dial: Dial | undefined): void {
    const entry = this.entry(name);
    entry.dial = dial;
    this.prune(entry);
  }

  /** Detaches every dialed link, for shutdown. */
  takeDials(): Dial[] {
    const dials: Dial[] = [];
    for (const entry of [...this.entries.values()]) {
      if (!entry.dial) continue;
      dials.push(entry.dial);
      entry.dial = undefined;
      this.prune(entry);
    }
    return dials;
  }

  private entry(name: string): InstanceEntry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = { name, wanted: undefined, phase: OFFLINE, dial: undefined };
      this.entries.set(name, entry);
      this.sortedEntries = undefined;
    }
    return entry;
  }

  private leave(entry: InstanceEntry, next: AgentPhase): void {
    const phase = entry.phase;
    entry.phase = next;
    if (phase.kind === "welcoming") this.onWelcomeDropped(phase.reqid);
  }

  private prune(entry: InstanceEntry): void {
    if (!entry.wanted && entry.phase.kind === "offline" && !entry.dial && this.entries.delete(entry.name)) this.sortedEntries = undefined;
  }

  private sorted(): readonly InstanceEntry[] {
    this.sortedEntries ??= [...this.entries.values()].sort((a, b) => compareText(a.name, b.name));
    return this.sortedEntries;
  }
}
