// How the controller reaches agents: agents that dial in arrive over the hub, and the
// controller dials agents itself for instances that have a listen port (c2a).

import type { Origin } from "../broker/hub.js";
import { WEBSOCKET_PATH, type ZeekEvent } from "../broker/messages.js";
import { Peer, type PeerTlsOptions } from "../broker/peer.js";
import { connectRefusal } from "../broker/connection.js";
import { CONTROLLER_UNAUTHORIZED, controllerHeaders } from "../management/agent-auth.js";

/** Where the controller dials an instance that has a listen port. */
export interface DialTarget {
  instance: string;
  host: string;
  port: number;
  /** The agent topic to subscribe to on the agent's endpoint. */
  topic: string;
}

export interface DialHandlers {
  ready(): void;
  down(reason: string): void;
  event(topic: string, event: ZeekEvent): void;
  /** The agent refused this controller's proof; the dialer keeps trying (the agent may be fixed). */
  refused?(message: string): void;
}

/** A controller-initiated link to one agent; it reconnects on its own until closed. */
export interface DialedAgent {
  publishEvent(topic: string, event: ZeekEvent): boolean;
  close(): Promise<void>;
}

export type AgentDialer = (target: DialTarget, handlers: DialHandlers) => DialedAgent;

/**
 * Dials agents over the WebSocket JSON API, retrying about once a second like upstream.
 * With `tls` every agent is dialed over wss:// and must present a certificate that is valid
 * for the instance's configured host. With `masterSecret` each agent is shown the proof for
 * its instance (see agent-auth.ts), which an agent holding its instance secret requires.
 */
export function createWebSocketAgentDialer(options: { tls?: PeerTlsOptions; masterSecret?: string } = {}): AgentDialer {
  return (target, handlers) => {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    const peer = new Peer({
      url: `${options.tls ? "wss" : "ws"}://${host}:${target.port}${WEBSOCKET_PATH}`,
      topics: [target.topic],
      initialDelayMs: 250,
      maxDelayMs: 1000,
      ...(options.masterSecret !== undefined ? { headers: controllerHeaders(options.masterSecret, target.instance) } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
    });
    peer.on("connect-error", (err) => {
      const refusal = connectRefusal(err);
      if (refusal?.code === CONTROLLER_UNAUTHORIZED) handlers.refused?.(refusal.context);
    });
    peer.on("server-error", (code, context) => {
      if (code === CONTROLLER_UNAUTHORIZED) handlers.refused?.(context);
    });
    peer.on("ready", () => handlers.ready());
    peer.on("down", (reason) => handlers.down(reason));
    peer.on("event", (topic, event) => handlers.event(topic, event));
    peer.start();
    return { publishEvent: (topic, event) => peer.publishEvent(topic, event), close: () => peer.close() };
  };
}

export const webSocketAgentDialer: AgentDialer = createWebSocketAgentDialer();

/** One dialed link; its identity tells a current link from one replaced since. */
export interface Dial {
  readonly instance: string;
  readonly host: string;
  readonly port: number;
  readonly handle: DialedAgent;
  /** Why the agent last refused this controller, until a link stands again. */
  refusal?: string;
}

/** How an agent reached us, and so how we reach it and notice losing it. */
export type AgentLink = { kind: "hub"; origin: Origin } | { kind: "dialed"; dial: Dial };

export function sameLink(a: AgentLink, b: AgentLink): boolean {
  if (a.kind === "hub" && b.kind === "hub") return a.origin.id === b.origin.id;
  if (a.kind === "dialed" && b.kind === "dialed") return a.dial === b.dial;
  return false;
}

export function describeOrigin(origin: Origin): string {
  if (origin.remoteAddress === undefined) return origin.kind === "local" ? "in-process endpoint" : "unknown address";
  const host = origin.remoteAddress.includes(":") ? `[${origin.remoteAddress}]` : origin.remoteAddress;
  return origin.remotePort !== undefined ? `${host}:${origin.remotePort}` : host;
}
