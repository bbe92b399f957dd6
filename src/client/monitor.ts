// What `monitor` shows a person (or a script with --json): the cluster's state changes, log
// lines and errors that agents send and the controller passes on to its clients. Responses
// to other clients' requests are traffic, not news, and are left out; zeek-client's own
// output (every event's signature) stays the default when stdout is not a terminal.

import type { ZeekEvent } from "../broker/messages.js";
import { AgentApi } from "../agent/api.js";
import type { State } from "../management/types.js";

export type Notification =
  | { kind: "change"; instance: string; node: string; old: State; new: State }
  | { kind: "log"; instance: string; node?: string; message: string }
  | { kind: "error"; instance: string; node?: string; message: string };

/**
 * The notification an event carries, or undefined for anything else. The agent's events
 * are accepted under either API's prefix, so a controller may pass them on as they are or
 * re-issued as its own.
 */
export function notificationOf(event: ZeekEvent): Notification | undefined {
  const sep = event.name.lastIndexOf("::");
  const short = event.name.slice(sep + 2);
  const prefix = event.name.slice(0, sep + 2);
  if (prefix !== "Management::Agent::API::" && prefix !== "Management::Controller::API::") return undefined;
  try {
    switch (short) {
      case "notify_change": {
        const [instance, node, old, now] = AgentApi.notify_change.parse({ ...event, name: AgentApi.notify_change.name });
        return { kind: "change", instance, node: node.name, old, new: now };
      }
      case "notify_log":
      case "notify_error": {
        const spec = short === "notify_log" ? AgentApi.notify_log : AgentApi.notify_error;
        const [instance, message, node] = spec.parse({ ...event, name: spec.name });
        return { kind: short === "notify_log" ? "log" : "error", instance, message, ...(node ? { node } : {}) };
      }
    }
  } catch {
    // Malformed: not something a person could read either.
  }
  return undefined;
}

export interface MonitorLineOptions {
  color?: { red(s: string): string; green(s: string): string; yellow(s: string): string; dim(s: string): string; bold(s: string): string };
}

const plain = (s: string): string => s;

/** One line for a terminal: time, where, what. */
export function humanLine(n: Notification, at: Date, options: MonitorLineOptions = {}): string {
  const c = options.color ?? { red: plain, green: plain, yellow: plain, dim: plain, bold: plain };
  const time = c.dim(at.toISOString().replace("T", " ").slice(0, 19));
  const where = n.node ? `${c.bold(n.node)} on ${n.instance}` : c.bold(n.instance);
  switch (n.kind) {
    case "change": {
      const paint = (s: State): string => (s === "RUNNING" ? c.green(s) : s === "CRASHED" || s === "FAILED" ? c.red(s) : c.yellow(s));
      return `${time}  ${where}: ${paint(n.old)} -> ${paint(n.new)}`;
    }
    case "log":
      return `${time}  ${where}: ${n.message}`;
    case "error":
      return `${time}  ${where}: ${c.red("error:")} ${n.message}`;
  }
}

/** One JSON object per line, for scripts. */
export function jsonLine(n: Notification, at: Date): string {
  const base = { time: at.toISOString(), event: n.kind, instance: n.instance, ...(n.node !== undefined ? { node: n.node } : {}) };
  if (n.kind === "change") return JSON.stringify({ ...base, old: n.old, new: n.new });
  return JSON.stringify({ ...base, message: n.message });
}
