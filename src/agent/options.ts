// What the agent's logic takes (AgentOptions); the daemon that runs it builds these.

import type { ZeekInstall } from "./zeek.js";

export interface AgentOptions {
  name: string;
  /** Where per-node directories and the agent's own state live. */
  stateDir: string;
  /** The agent's own directory (state file, log). */
  directory: string;
  requestTimeoutMs: number;
  /** argv of the default node program; a node's env ZMGMT_NODE_COMMAND overrides it. */
  nodeCommand: string[];
  /** URL nodes use to reach this agent's hub. */
  nodeUrl: string;
  /** Secret nodes present to this agent's hub. */
  nodeToken: string;
  /** This agent's listen port, reported in get_nodes when the controller dials in (c2a). */
  listenPort?: number;
  /** True when this agent dials the controller (a2c). */
  connectsToController: boolean;
  /** Extra environment for every node (e.g. the supervisor pid for orphan checks). */
  nodeBaseEnv?: Record<string, string>;
  /** Run nodes as this Zeek instead of `nodeCommand` (a node's ZMGMT_NODE_COMMAND still wins). */
  zeek?: ZeekInstall;
  /** Where Zeek loggers' rotated logs are archived, and how often the agent looks for them. */
  logArchive?: { directory: string; intervalMs: number };
}
