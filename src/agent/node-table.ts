// The agent's view of its cluster nodes: one record per node with the state the agent last
// learned from the node's own check-in or from the supervisor's reports. Every change of
// state goes to one callback, so the controller hears of each (notify_change) exactly once.

import type { Node, NodeOutputs, State } from "../management/types.js";
import type { NodeExit } from "../supervisor/api.js";

export interface NodeRecord {
  node: Node;
  state: State;
  pid?: number;
  /** The pid of the process that last checked in. */
  helloPid?: number;
  /** Zeek nodes: the loopback port of their management endpoint, which the agent dials. */
  managementPort?: number;
  /** Tails of the latest run that ended, for failure reports. */
  outputs?: NodeOutputs;
  lastExit?: string;
}

export type StateChange = (node: Node, old: State, state: State) => void;

export class NodeTable {
  private readonly records = new Map<string, NodeRecord>();

  constructor(private readonly onChange: StateChange) {}

  get size(): number {
    return this.records.size;
  }

  get(name: string): NodeRecord | undefined {
    return this.records.get(name);
  }

  has(name: string): boolean {
    return this.records.has(name);
  }

  names(): string[] {
    return [...this.records.keys()];
  }

  entries(): IterableIterator<[string, NodeRecord]> {
    return this.records.entries();
  }

  delete(name: string): void {
    this.records.delete(name);
  }

  /** Adds a record without reporting a change (a node re-learned, not one that changed). */
  adopt(rec: NodeRecord): void {
    this.records.set(rec.node.name, rec);
  }

  /**
   * Moves a node to `state`; `replace` installs `rec` as a fresh record (a new deployment
   * of the node), which is not a change of the old record's state.
   */
  setState(rec: NodeRecord, state: State, replace = false): void {
    const existing = this.records.get(rec.node.name);
    const old = replace || !existing ? undefined : existing.state;
    const target = replace || !existing ? rec : existing;
    target.state = state;
    this.records.set(rec.node.name, target);
    if (old !== undefined && old !== state) this.onChange(target.node, old, state);
  }

  /** A node's own check-in: it runs, under `pid` when it said so. */
  checkedIn(name: string, pid: number | undefined): NodeRecord | undefined {
    const rec = this.records.get(name);
    if (!rec) return undefined;
    if (pid !== undefined) {
      rec.helloPid = pid;
      rec.pid = pid;
    }
    this.setState(rec, "RUNNING");
    return rec;
  }

  /** The supervisor started a process for the node (pid 0 or less: none yet). */
  spawned(name: string, pid: number): void {
    const rec = this.records.get(name);
    if (!rec) return;
    // The spawn report and the node's own check-in travel on different connections; a
    // node that already checked in under this pid stays RUNNING.
    if (pid > 0 && rec.helloPid === pid) return;
    if (pid > 0) rec.pid = pid;
    else delete rec.pid;
    this.setState(rec, "PENDING");
  }

  /** A run ended that the supervisor did not end; returns how, or undefined if not ours. */
  exited(exit: NodeExit): string | undefined {
    const rec = this.records.get(exit.name);
    if (!rec) return undefined;
    if (rec.pid !== undefined && rec.pid !== exit.pid) return undefined;
    delete rec.pid;
    rec.outputs = exit.outputs;
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode ?? "?"}`;
    rec.lastExit = exit.restartInMs !== undefined ? `${how}, restarting in ${exit.restartInMs} ms` : how;
    return rec.lastExit;
  }

  /** Sets the state after `exited` reported the exit, once the exit was announced. */
  afterExit(exit: NodeExit): void {
    const rec = this.records.get(exit.name);
    if (rec) this.setState(rec, exit.restartInMs !== undefined ? "CRASHED" : "FAILED");
  }
}
