// The agent's side of the supervisor control API: request/response over the Peer that
// connects the agent to its parent supervisor, plus the supervisor's notifications.

import { EventEmitter } from "node:events";
import { Peer, newReqId, request } from "../broker/peer.js";
import type { Codec, EventSpec } from "../broker/schema.js";
import type { ZeekEvent } from "../broker/messages.js";
import {
  SUPERVISOR_NOTIFY_TOPIC,
  SUPERVISOR_RESPONSE_TOPIC,
  SUPERVISOR_TOKEN_HEADER,
  SUPERVISOR_TOPIC,
  SupervisorApi,
  type NodeExit,
  type ProcessUsage,
  type SupervisedNodeConfig,
  type SupervisedNodeStatus,
} from "../supervisor/api.js";

export interface SupervisorLinkEvents {
  ready: [];
  down: [string];
  spawn: [string, number];
  exit: [NodeExit];
  "gave-up": [string, number];
}

export class SupervisorLink extends EventEmitter<SupervisorLinkEvents> {
  private readonly peer: Peer;

  constructor(
    url: string,
    token: string,
    private readonly timeoutMs: number,
  ) {
    super();
    this.peer = new Peer({
      url,
      topics: [SUPERVISOR_RESPONSE_TOPIC, SUPERVISOR_NOTIFY_TOPIC, `${SUPERVISOR_TOPIC}/node_status`],
      headers: { [SUPERVISOR_TOKEN_HEADER]: token },
      initialDelayMs: 100,
      maxDelayMs: 1000,
    });
    this.peer.on("ready", () => this.emit("ready"));
    this.peer.on("down", (why) => this.emit("down", why));
    this.peer.on("event", (_topic, event) => this.onEvent(event));
  }

  start(): this {
    this.peer.start();
    return this;
  }

  waitReady(timeoutMs: number): Promise<unknown> {
    return this.peer.waitReady(timeoutMs);
  }

  get connected(): boolean {
    return this.peer.connected;
  }

  async close(): Promise<void> {
    await this.peer.close();
  }

  async create(config: SupervisedNodeConfig): Promise<string> {
    const reqid = newReqId();
    const [, error] = await this.call(SupervisorApi.create_request.make(reqid, config), SupervisorApi.create_response);
    return error;
  }

  /** Resolves once the process is gone; false for an unknown node. */
  async destroy(name: string, timeoutMs?: number): Promise<boolean> {
    const reqid = newReqId();
    const [, ok] = await this.call(SupervisorApi.destroy_request.make(reqid, name), SupervisorApi.destroy_response, timeoutMs);
    return ok;
  }

  async restart(name: string): Promise<boolean> {
    const reqid = newReqId();
    const [, ok] = await this.call(SupervisorApi.restart_request.make(reqid, name), SupervisorApi.restart_response);
    return ok;
  }

  /** Resolves once the process is gone; false for an unknown node or a management process. */
  async stopNode(name: string, timeoutMs?: number): Promise<boolean> {
    const [, ok] = await this.call(SupervisorApi.stop_request.make(newReqId(), name), SupervisorApi.stop_response, timeoutMs);
    return ok;
  }

  /** Starts a stopped node; false for an unknown node. */
  async startNode(name: string): Promise<boolean> {
    const [, ok] = await this.call(SupervisorApi.start_request.make(newReqId(), name), SupervisorApi.start_response);
    return ok;
  }

  /** CPU and RSS of live node processes ("" for all). */
  async usage(name = ""): Promise<ProcessUsage[]> {
    const [, usage] = await this.call(SupervisorApi.usage_request.make(newReqId(), name), SupervisorApi.usage_response);
    return usage;
  }

  async status(name = ""): Promise<SupervisedNodeStatus[]> {
    const reqid = newReqId();
    const [, nodes] = await this.call(SupervisorApi.status_request.make(reqid, name), SupervisorApi.status_response);
    return nodes;
  }

  private call<A extends readonly Codec<unknown>[]>(
    event: ZeekEvent,
    response: EventSpec<A>,
    timeoutMs = this.timeoutMs,
  ): Promise<ReturnType<EventSpec<A>["parse"]>> {
    return request(this.peer, SUPERVISOR_TOPIC, event, response, timeoutMs, "the supervisor");
  }

  private onEvent(event: ZeekEvent): void {
    try {
      switch (event.name) {
        case SupervisorApi.node_status.name: {
          const [name, pid] = SupervisorApi.node_status.parse(event);
          this.emit("spawn", name, pid);
          break;
        }
        case SupervisorApi.notify_node_exit.name: {
          const [exit] = SupervisorApi.notify_node_exit.parse(event);
          this.emit("exit", exit);
          break;
        }
        case SupervisorApi.notify_node_gave_up.name: {
          const [name, attempts] = SupervisorApi.notify_node_gave_up.parse(event);
          this.emit("gave-up", name, attempts);
          break;
        }
      }
    } catch {
      // A malformed notification from our own supervisor is dropped; requests time out.
    }
  }
}
