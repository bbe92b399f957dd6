// Environment variables upstream's Management framework reads for its daemons' defaults; we
// honour the same names.

import { hostname } from "node:os";

export const ManagementEnv = {
  agentName: "ZEEK_AGENT_NAME",
  controllerName: "ZEEK_CONTROLLER_NAME",
  stateDir: "ZEEK_MANAGEMENT_STATE_DIR",
} as const;

export function defaultAgentName(env: NodeJS.ProcessEnv = process.env): string {
  return env[ManagementEnv.agentName] || `agent-${hostname()}`;
}

export function defaultControllerName(env: NodeJS.ProcessEnv = process.env): string {
  return env[ManagementEnv.controllerName] || `controller-${hostname()}`;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[ManagementEnv.stateDir] || ".zmgmt";
}
