// A library that turns any Node.js program into a managed cluster node: it connects to its
// agent, checks in with notify_node_hello (again after every reconnect, which is how the
// agent learns a node is up), and answers node dispatches such as get_id_value.

import { EventEmitter } from "node:events";
import { B } from "../broker/data.js";
import { errorMessage } from "../broker/errors.js";
import type { ZeekEvent } from "../broker/messages.js";
import { Peer } from "../broker/peer.js";
import { makeResult } from "../management/records.js";
import type { Result } from "../management/types.js";
import { SUPERVISOR_TOKEN_HEADER } from "../supervisor/api.js";
import { NODE_TOPIC, NodeApi, NodeEnv } from "./api.js";

/** What a dispatch handler returns: JSON text on success, or an error message. */
export type DispatchOutcome = { data: string } | { error: string };
export type DispatchHandler = (args: string[]) => DispatchOutcome | Promise<DispatchOutcome>;

export interface ManagedNodeOptions {
  name: string;
  agentUrl: string;
  /** Shared secret the agent's endpoint expects from its own nodes. */
  token?: string;
  reconnectMaxDelayMs?: number;
}

export interface ManagedNodeEvents {
  hello: [];
  down: [string];
  dispatch: [string[], Result];
}

/**
 * Named values answer get_id_value. Functions are called at lookup time so values like
 * uptime stay current. A value is rendered the way Zeek's to_json renders its types.
 */
export type NamedValue = unknown;

export class ManagedNode extends EventEmitter<ManagedNodeEvents> {
  private readonly peer: Peer;
  private readonly values = new Map<string, NamedValue>();
  private readonly handlers = new Map<string, DispatchHandler>();

  constructor(private readonly options: ManagedNodeOptions) {
    super();
    this.peer = new Peer({
      url: options.agentUrl,
      topics: [NODE_TOPIC],
      initialDelayMs: 100,
      maxDelayMs: options.reconnectMaxDelayMs ?? 1000,
      ...(options.token ? { headers: { [SUPERVISOR_TOKEN_HEADER]: options.token } } : {}),
    });
    this.handlers.set("get_id_value", (args) => this.getIdValue(args));
    this.peer.on("ready", () => {
      this.peer.publishEvent(NODE_TOPIC, NodeApi.notify_node_hello.make(this.options.name, process.pid));
      this.emit("hello");
    });
    this.peer.on("down", (why) => this.emit("down", why));
    this.peer.on("event", (_topic, event) => void this.onEvent(event));
  }

  get name(): string {
    return this.options.name;
  }

  get connected(): boolean {
    return this.peer.connected;
  }

  /** Makes `id` answerable through get_id_value. */
  setValue(id: string, value: NamedValue): this {
    this.values.set(id, value);
    return this;
  }

  /** Adds a dispatch action besides the built-in get_id_value. */
  handle(action: string, handler: DispatchHandler): this {
    this.handlers.set(action, handler);
    return this;
  }

  /** Connects and checks in; call once the node is ready to serve. */
  start(): this {
    this.peer.start();
    return this;
  }

  async close(): Promise<void> {
    await this.peer.close();
  }

  private getIdValue(args: string[]): DispatchOutcome {
    const id = args[0];
    if (id === undefined || id === "") return { error: "get_id_value expects name of global identifier" };
    if (!this.values.has(id)) return { error: "unknown id" };
    let value = this.values.get(id);
    if (typeof value === "function") value = (value as () => unknown)();
    if (value === undefined) return { error: "no ID value" };
    return { data: toZeekJson(value) };
  }

  private async onEvent(event: ZeekEvent): Promise<void> {
    if (event.name !== NodeApi.node_dispatch_request.name) return;
    let reqid: string;
    let action: string[];
    let nodes: string[] | undefined;
    try {
      [reqid, action, nodes] = NodeApi.node_dispatch_request.parse(event);
    } catch {
      return;
    }
    if (nodes && nodes.length > 0 && !nodes.includes(this.options.name)) return;
    const result = makeResult(reqid, { node: this.options.name });
    if (action.length === 0) {
      result.success = false;
      result.error = "no dispatch arguments provided";
    } else {
      const handler = this.handlers.get(action[0]!);
      if (!handler) {
        result.success = false;
        result.error = `dispatch ${action[0]} unknown`;
      } else {
        try {
          const outcome = await handler(action.slice(1));
          if ("error" in outcome) {
            result.success = false;
            result.error = outcome.error;
          } else {
            result.data = B.str(outcome.data);
          }
        } catch (err) {
          result.success = false;
          result.error = `dispatch ${action[0]} failed: ${errorMessage(err)}`;
        }
      }
    }
    this.emit("dispatch", action, result);
    this.peer.publishEvent(NODE_TOPIC, NodeApi.node_dispatch_response.make(reqid, result));
  }
}

/**
 * JSON text following Zeek's to_json conventions for the value kinds a node exposes:
 * ports as {"port": N, "proto": "tcp"} (use zeekPort), non-finite numbers as null,
 * undefined record fields left out, Maps as objects and Sets as arrays.
 */
export function toZeekJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "number" && !Number.isFinite(v)) return null;
    if (typeof v === "bigint") return Number(v);
    if (v instanceof Map) return Object.fromEntries(v as Map<PropertyKey, unknown>);
    if (v instanceof Set) return [...(v as Set<unknown>)];
    if (typeof v === "function") return undefined;
    return v;
  });
}

export function zeekPort(port: number, proto: "tcp" | "udp" = "tcp"): { port: number; proto: string } {
  return { port, proto };
}

/** Options for a node started by the supervisor, read from its environment. */
export function managedNodeOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ManagedNodeOptions {
  const name = env[NodeEnv.name];
  const agentUrl = env[NodeEnv.agentUrl];
  if (!name) throw new Error(`${NodeEnv.name} is not set: this program must be started by a zmgmt agent`);
  if (!agentUrl) throw new Error(`${NodeEnv.agentUrl} is not set: this program must be started by a zmgmt agent`);
  const token = env[NodeEnv.agentToken];
  return { name, agentUrl, ...(token ? { token } : {}) };
}
