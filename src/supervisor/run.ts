// One run of a node's process and the manager's record of a node, with the few operations
// on them that need no manager state.

import type { ChildProcess } from "node:child_process";
import type { NodeOutputs } from "../management/types.js";
import type { LineCapture } from "./output-capture.js";
import type { ExitInfo, NodeSpec, NodeState, StopReason } from "./process-types.js";

export interface Run {
  child?: ChildProcess;
  pid: number;
  alive: boolean;
  startMono: number;
  startedAt: number;
  stdout: LineCapture;
  stderr: LineCapture;
  exit?: ExitInfo;
  exitMono?: number;
  pipesClosed: boolean;
  graceTimer?: NodeJS.Timeout;
  finalized: boolean;
  done: Promise<void>;
  resolveDone: () => void;
  stopReason?: StopReason;
  stop?: { timer?: NodeJS.Timeout; sent: number; killed: boolean };
}

export interface NodeRecord {
  spec: NodeSpec;
  directory: string;
  state: NodeState;
  removed: boolean;
  run?: Run;
  pendingSpawn: NodeJS.Immediate | undefined;
  revivalTimer: NodeJS.Timeout | undefined;
  nextRevivalAt: number | undefined;
  restarts: number;
  revivalAttempts: number;
  revivalDelayMs: number;
  lastExit?: ExitInfo;
  /** Stopped by an operator: no revival, no spawn until start() or restart(). */
  held?: boolean;
}

export function signalRun(run: Run, signal: NodeJS.Signals): void {
  if (run.pid === 0) return;
  try {
    process.kill(-run.pid, signal);
  } catch {
    try {
      process.kill(run.pid, signal);
    } catch {
      // already gone; the exit event will follow
    }
  }
}

export function runOutputs(run: Run): NodeOutputs {
  return { stdout: run.stdout.text(), stderr: run.stderr.text() };
}

export function copySpec(spec: NodeSpec): NodeSpec {
  const copy: NodeSpec = { ...spec, command: [...spec.command] };
  if (spec.env) copy.env = { ...spec.env };
  return copy;
}

export function isDefined<T>(v: T | undefined): v is T {
  return v !== undefined;
}
