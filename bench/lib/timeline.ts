// Where a deploy's time goes, reconstructed from the management logs the controller, the
// agents and their supervisors write anyway (one JSON line per entry, `ts` in seconds).

import { existsSync, readFileSync } from "node:fs";
import { round } from "./proc.js";

interface Entry {
  ts: number;
  message: string;
  who: string;
}

function readLog(file: string, who: string): Entry[] {
  if (!existsSync(file)) return [];
  const out: Entry[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    try {
      const j = JSON.parse(line) as { ts?: number; message?: string };
      if (typeof j.ts === "number" && typeof j.message === "string") out.push({ ts: j.ts * 1000, message: j.message, who });
    } catch {
      // a torn last line while the process is still writing
    }
  }
  return out;
}

export interface DeploySegment {
  name: string;
  ms: number;
}

export interface DeployTimeline {
  totalMs: number;
  segments: DeploySegment[];
  /** Node check-ins, in ms after the client sent the request. */
  checkIns: { count: number; firstMs: number; p50Ms: number; lastMs: number };
  /** Node creations at the supervisors, in ms after the client sent the request. */
  creates: { count: number; firstMs: number; lastMs: number };
}

const CTRL_RX = "rx Management::Controller::API::deploy_request";
const CTRL_TX_AGENT = "tx Management::Agent::API::deploy_request";
const AGENT_RX = "rx Management::Agent::API::deploy_request";
const CREATE = "rx SupervisorControl::create_request";
const HELLO = "rx Management::Node::API::notify_node_hello";
const AGENT_TX = "tx Management::Agent::API::deploy_response";
const CTRL_RX_AGENT = "rx Management::Agent::API::deploy_response";
const CTRL_TX = "tx Management::Controller::API::deploy_response";

/**
 * Phases of the deploy the client sent at `startedAt` and got answered at `finishedAt`
 * (epoch ms). Log timestamps have millisecond resolution.
 */
export function deployTimeline(input: {
  controllerLog: string;
  agentLogs: string[];
  supervisorLogs: string[];
  startedAt: number;
  finishedAt: number;
}): DeployTimeline {
  const { startedAt, finishedAt } = input;
  const inWindow = (e: Entry): boolean => e.ts >= startedAt - 2 && e.ts <= finishedAt + 2;
  const ctrl = readLog(input.controllerLog, "controller").filter(inWindow);
  const agents = input.agentLogs.flatMap((f) => readLog(f, "agent")).filter(inWindow);
  const sups = input.supervisorLogs.flatMap((f) => readLog(f, "supervisor")).filter(inWindow);
  const first = (list: Entry[], prefix: string): number | undefined => list.find((e) => e.message.startsWith(prefix))?.ts;
  const times = (list: Entry[], prefix: string): number[] =>
    list
      .filter((e) => e.message.startsWith(prefix))
      .map((e) => e.ts)
      .sort((a, b) => a - b);

  const ctrlRx = first(ctrl, CTRL_RX);
  const ctrlTxAgents = times(ctrl, CTRL_TX_AGENT);
  const agentRx = times(agents, AGENT_RX);
  const creates = times(sups, CREATE);
  const hellos = times(agents, HELLO);
  const agentTx = times(agents, AGENT_TX);
  const ctrlRxAgents = times(ctrl, CTRL_RX_AGENT);
  const ctrlTx = first(ctrl, CTRL_TX);
  if (ctrlRx === undefined || ctrlTx === undefined || !creates.length || !hellos.length || !agentTx.length) {
    throw new Error("management logs lack the deploy's entries");
  }
  const rel = (t: number): number => round(t - startedAt, 1);
  const marks: Array<[string, number]> = [
    ["client request to controller", ctrlRx],
    ["controller: validation, welcome, send to agents", ctrlTxAgents.at(-1) ?? ctrlRx],
    ["controller to agents (last agent receives)", agentRx.at(-1) ?? ctrlRx],
    ["agent: tear-down check, first node create at supervisor", creates[0]!],
    ["supervisor: first to last create request received (spawns follow each, unlogged)", creates.at(-1)!],
    ["nodes: last create to last node check-in", hellos.at(-1)!],
    ["agent: last check-in to deploy response", agentTx.at(-1)!],
    ["agents' responses reach controller", ctrlRxAgents.at(-1) ?? agentTx.at(-1)!],
    ["controller answers", ctrlTx],
    ["response reaches client", finishedAt],
  ];
  const segments: DeploySegment[] = [];
  let prev = startedAt;
  for (const [name, t] of marks) {
    segments.push({ name, ms: round(Math.max(0, t - prev), 1) });
    prev = Math.max(prev, t);
  }
  return {
    totalMs: round(finishedAt - startedAt, 1),
    segments,
    checkIns: {
      count: hellos.length,
      firstMs: rel(hellos[0]!),
      p50Ms: rel(hellos[Math.floor((hellos.length - 1) / 2)]!),
      lastMs: rel(hellos.at(-1)!),
    },
    creates: { count: creates.length, firstMs: rel(creates[0]!), lastMs: rel(creates.at(-1)!) },
  };
}

/** Restart phases for one kill, from the supervisor's log: exit noticed, respawned. */
export function restartPhases(
  supervisorLog: string,
  node: string,
  killedAt: number,
  servingAt: number,
): { exitNoticedMs?: number; respawnedMs?: number } {
  const entries = readLog(supervisorLog, "supervisor").filter((e) => e.ts >= killedAt - 2 && e.ts <= servingAt + 2);
  const exit = entries.find((e) => e.message.includes(`'${node}'`) && e.message.includes("prematurely"))?.ts;
  const spawn = entries.find((e) => e.message.includes(`'${node}'`) && e.message.includes("revived"))?.ts;
  return {
    ...(exit !== undefined ? { exitNoticedMs: round(exit - killedAt, 1) } : {}),
    ...(spawn !== undefined ? { respawnedMs: round(spawn - killedAt, 1) } : {}),
  };
}
