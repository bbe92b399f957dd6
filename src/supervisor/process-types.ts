// What the process manager takes and reports: node specs, statuses and the events callers
// turn into SupervisorControl responses and notifications.

import type { NodeOutputs } from "../management/types.js";

export interface NodeSpec {
  name: string;
  /** argv; argv[0] is looked up in PATH (the child's PATH) unless it contains a slash. */
  command: string[];
  /** Working directory, created with its parents; "" means the supervisor's own. */
  directory: string;
  /** Added to the supervisor's environment. */
  env?: Record<string, string>;
  cpuAffinity?: number;
  /** Opaque to the manager; handed back in status(). */
  meta?: unknown;
}

export type NodeState = "starting" | "running" | "backoff" | "stopping" | "failed" | "stopped";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
  /** Epoch milliseconds. */
  at: number;
}

export interface NodeStatus {
  name: string;
  spec: NodeSpec;
  meta?: unknown;
  state: NodeState;
  /** Only while the process is alive. */
  pid?: number;
  /** Spawns after the first one since create(): revivals and restarts. */
  restarts: number;
  /** Revival back-off counter; reset by enough uptime or by restart(). */
  revivalAttempts: number;
  revivalDelayMs: number;
  /** Epoch milliseconds of the current run's spawn, while alive. */
  startedAt?: number;
  /** Epoch milliseconds of the next revival, while in backoff. */
  nextRevivalAt?: number;
  lastExit?: ExitInfo;
}

export type SpawnReason = "create" | "restart" | "revival";

export interface SpawnEvent {
  name: string;
  /** 0 when the process could not be started (an "exit" event with `error` follows). */
  pid: number;
  revived: boolean;
  reason: SpawnReason;
  /** Tails of the previous run, present only when that run printed at least one line. */
  previous?: NodeOutputs;
  /** Upstream's log line for a revival. */
  message?: string;
}

/** A run ended without the manager asking it to. */
export interface ExitEvent extends ExitInfo {
  name: string;
  /** 0 when the process could not be started. */
  pid: number;
  uptimeMs: number;
  outputs: NodeOutputs;
  willRevive: boolean;
  /** Wait before the revival, when willRevive. */
  delayMs?: number;
  /** Upstream's log line for a premature exit. */
  message: string;
}

export interface FailedEvent {
  name: string;
  /** Revival attempts made before giving up. */
  attempts: number;
  lastExit: ExitInfo;
  outputs: NodeOutputs;
}

export type StopReason = "destroy" | "restart" | "shutdown" | "stop";

/** A run the manager stopped is gone. */
export interface StoppedEvent extends ExitInfo {
  name: string;
  pid: number;
  reason: StopReason;
  /** Signals sent, SIGTERM and SIGKILL together. */
  signalsSent: number;
  killed: boolean;
  outputs: NodeOutputs;
}

export interface WarningEvent {
  name: string;
  message: string;
}

export interface ProcessManagerEvents {
  spawn: [SpawnEvent];
  exit: [ExitEvent];
  failed: [FailedEvent];
  stopped: [StoppedEvent];
  warning: [WarningEvent];
}

export interface ProcessManagerOptions {
  /** Pause between signals while stopping a node. */
  termIntervalMs?: number;
  /** SIGTERMs sent before switching to SIGKILL. */
  maxTermAttempts?: number;
  /** false keeps sending SIGTERM forever (upstream's ZEEK_SUPERVISOR_NO_SIGKILL). */
  sigkill?: boolean;
  /** Lines kept per stream and run. */
  outputMaxLines?: number;
  /** Size at which a node's stdout or stderr file is rotated (default 10 MiB). */
  outputMaxBytes?: number;
  /** Rotated generations kept per stream (default 2: `stdout.1`, `stdout.2`). */
  outputKeepFiles?: number;
  /** How long to wait for a dead child's pipes to drain (a grandchild may hold them open). */
  outputGraceMs?: number;
  initialDelayMs?: number;
  /** The revival delay doubles whenever the attempt counter reaches a multiple of this. */
  doubleEvery?: number;
  /** Uptime after which a run resets the revival counters. */
  resetAfterMs?: number;
  maxDelayMs?: number;
  /** Revival attempts before giving up; unlimited when unset, as upstream. */
  maxAttempts?: number;
  /** Base environment of the children; also where the PATH for the pinning helper comes from. */
  env?: NodeJS.ProcessEnv;
}
