// `zmgmt up`'s live view. It follows the notifications the controller pushes to its clients
// (notify_change, notify_log, notify_error) and prints one timestamped line for each: a
// crash, a revival, a restart, as it happens. get-nodes is asked only for what events do
// not carry (the new pid after a change) and, as a slow fallback, to reconcile whatever a
// lost connection made us miss.

import pc from "picocolors";
import type { ZeekEvent } from "../broker/messages.js";
import { type ControllerClient, resultNodeStatuses } from "../client/controller-client.js";
import { type Notification, humanLine, notificationOf } from "../client/monitor.js";
import type { NodeStatus, State } from "../management/types.js";

/** How often the view checks get-nodes against what the events told it. */
export const RECONCILE_INTERVAL_MS = 30_000;
/** Changes come in bursts (CRASHED, PENDING, RUNNING): one pid look-up after the burst. */
const PID_LOOKUP_DELAY_MS = 300;

const STATE_COLOR: Record<string, (s: string) => string> = {
  RUNNING: pc.green,
  PENDING: pc.yellow,
  CRASHED: pc.red,
  FAILED: pc.red,
};

export function renderNodes(nodes: NodeStatus[], tty: boolean): string {
  return nodes
    .filter((n) => n.mgmtRole === "NONE")
    .sort((a, b) => (a.node < b.node ? -1 : 1))
    .map((n) => {
      const state = tty ? (STATE_COLOR[n.state] ?? pc.dim)(n.state.padEnd(8)) : n.state.padEnd(8);
      return `  ${n.node.padEnd(12)} ${n.clusterRole.padEnd(8)} ${state} pid ${String(n.pid ?? "-").padEnd(8)} port ${n.port ?? "-"}`;
    })
    .join("\n");
}

/** What a state change means to someone watching, given whether the node was down before. */
export function changeMeaning(from: State, to: State, wasDown: boolean): string | undefined {
  if (to === "CRASHED") return "crashed";
  if (to === "FAILED") return "failed";
  if (to === "STOPPED") return "stopped";
  if (from === "CRASHED" && to === "PENDING") return "reviving";
  if (from === "RUNNING" && to === "PENDING") return "restarting";
  if (to === "RUNNING") return wasDown ? "revived" : from === "PENDING" ? "running" : undefined;
  return undefined;
}

interface Known {
  instance: string;
  state: State;
  pid?: number;
}

export interface LiveViewOptions {
  tty: boolean;
  /** Number of cluster nodes the deployed configuration has. */
  expected: number;
  write: (text: string) => void;
  /** Called once, the first time every expected node is RUNNING. */
  onUp: (nodes: number) => void;
  /**
   * A connection that only listens. The controller holds pushes back from a connection
   * while one of its requests is open (a waiting client hears only its answer), so events
   * that come during a get-nodes would be lost on the connection that asks.
   */
  pushes?: ControllerClient;
  reconcileIntervalMs?: number;
}

export class LiveView {
  private readonly known = new Map<string, Known>();
  /** Nodes that crashed or failed and have not been RUNNING since. */
  private readonly down = new Set<string>();
  /** The pid each RUNNING node was last shown with (table or line). */
  private readonly shownPid = new Map<string, number>();
  private pidTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private announced = false;
  private tableShowsUp = false;
  private stopped = false;
  private readonly onEvent = (_topic: string, event: ZeekEvent): void => this.onNotification(event);
  private readonly onReady = (): void => void this.reconcile("reconnected");

  constructor(
    private readonly client: ControllerClient,
    private readonly options: LiveViewOptions,
  ) {}

  /** Shows the table once, then follows events. */
  async start(): Promise<void> {
    // Listen first, so nothing that happens during the first get-nodes is missed.
    this.pushSource().events.on("event", this.onEvent);
    this.pushSource().events.on("ready", this.onReady);
    const statuses = await this.getNodes();
    if (statuses) {
      this.printTable(statuses);
      this.learn(statuses, false);
    }
    this.checkUp();
    this.reconcileTimer = setInterval(
      () => void this.reconcile("periodic check"),
      this.options.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS,
    );
  }

  /** A method, so a check after an await is not narrowed away by the one before it. */
  private active(): boolean {
    return !this.stopped;
  }

  stop(): void {
    this.stopped = true;
    this.pushSource().events.off("event", this.onEvent);
    this.pushSource().events.off("ready", this.onReady);
    clearTimeout(this.pidTimer);
    clearInterval(this.reconcileTimer);
  }

  private pushSource(): ControllerClient {
    return this.options.pushes ?? this.client;
  }

  private line(text: string): void {
    this.options.write(`${text}\n`);
  }

  private color(): Parameters<typeof humanLine>[2] {
    return this.options.tty ? { color: pc } : {};
  }

  private onNotification(event: ZeekEvent): void {
    if (this.stopped) return;
    const n = notificationOf(event);
    if (!n) return;
    const now = new Date();
    if (n.kind !== "change") {
      this.line(humanLine(n, now, this.color()));
      return;
    }
    const wasDown = this.down.has(n.node);
    const meaning = changeMeaning(n.old, n.new, wasDown);
    this.line(`${humanLine(n, now, this.color())}${meaning ? ` (${meaning})` : ""}`);
    this.apply(n);
    // Events carry no pid; look the new one up once the burst of changes is over.
    clearTimeout(this.pidTimer);
    this.pidTimer = setTimeout(() => void this.reconcile(), PID_LOOKUP_DELAY_MS);
    this.checkUp();
  }

  private apply(n: Extract<Notification, { kind: "change" }>): void {
    const k = this.known.get(n.node) ?? { instance: n.instance, state: n.new };
    k.state = n.new;
    if (n.new !== "RUNNING") delete k.pid;
    this.known.set(n.node, k);
    if (n.new === "CRASHED" || n.new === "FAILED") this.down.add(n.node);
    if (n.new === "RUNNING") this.down.delete(n.node);
  }

  private async getNodes(): Promise<Array<NodeStatus & { instance: string }> | undefined> {
    try {
      const results = await this.client.getNodes();
      return results.flatMap((r) => (resultNodeStatuses(r) ?? []).map((s) => ({ ...s, instance: r.instance ?? "" })));
    } catch {
      // The controller may be restarting; the next event or check will tell.
      return undefined;
    }
  }

  /**
   * Compares get-nodes with what the events said. New pids are shown as such; a state the
   * events did not announce (missed while disconnected) is shown with `why`.
   */
  private async reconcile(why?: string): Promise<void> {
    if (this.stopped) return;
    const statuses = await this.getNodes();
    if (!statuses || !this.active()) return;
    this.learn(statuses, true, why);
    this.checkUp();
  }

  private learn(statuses: Array<NodeStatus & { instance: string }>, report: boolean, why?: string): void {
    const time = new Date().toISOString().replace("T", " ").slice(0, 19);
    const stamp = this.options.tty ? pc.dim(time) : time;
    for (const s of statuses) {
      if (s.mgmtRole !== "NONE") continue;
      const k = this.known.get(s.node);
      const where = `${this.options.tty ? pc.bold(s.node) : s.node} on ${s.instance}`;
      if (report && k && k.state !== s.state && why) this.line(`${stamp}  ${where}: ${k.state} -> ${s.state} (seen on ${why})`);
      if (s.state === "RUNNING" && s.pid !== undefined && this.shownPid.get(s.node) !== s.pid) {
        if (report) this.line(`${stamp}  ${where}: running as pid ${s.pid}`);
        this.shownPid.set(s.node, s.pid);
      }
      this.known.set(s.node, { instance: s.instance, state: s.state, ...(s.pid !== undefined ? { pid: s.pid } : {}) });
      if (s.state === "RUNNING") this.down.delete(s.node);
    }
  }

  private printTable(statuses: NodeStatus[]): void {
    this.options.write(`${renderNodes(statuses, this.options.tty)}\n`);
    const cluster = statuses.filter((s) => s.mgmtRole === "NONE");
    this.tableShowsUp = cluster.length >= this.options.expected && cluster.every((s) => s.state === "RUNNING");
  }

  private checkUp(): void {
    if (this.announced) return;
    const nodes = [...this.known.values()];
    if (nodes.length < this.options.expected || !nodes.every((k) => k.state === "RUNNING")) return;
    this.announced = true;
    if (this.tableShowsUp) {
      this.options.onUp(nodes.length);
      return;
    }
    // The table shown last had nodes still starting: show them all running (with pids) once.
    void this.getNodes().then((statuses) => {
      if (statuses && !this.stopped) this.printTable(statuses);
      this.options.onUp(nodes.length);
    });
  }
}
