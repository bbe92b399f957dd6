// The agent's links to its Zeek nodes. A Zeek node serves a WebSocket on a loopback port
// of its own (zeek/zmgmt/node.zeek) and the agent dials it, retrying until the node is up
// and again whenever the node is replaced. Over the link the node checks in and answers
// dispatches; everything it sends is handed to the agent like a check-in from any node.

import type { ZeekEvent } from "../broker/messages.js";
import { Peer } from "../broker/peer.js";
import { WEBSOCKET_PATH } from "../broker/messages.js";
import { nodeRequestTopic, nodeResponseTopic } from "../node/api.js";

export class ZeekNodeLinks {
  private readonly links = new Map<string, { port: number; peer: Peer }>();

  constructor(private readonly onEvent: (node: string, event: ZeekEvent) => void) {}

  /** Dials `node` on 127.0.0.1:`port` until closed; a link to another port is replaced. */
  open(node: string, port: number): void {
    const existing = this.links.get(node);
    if (existing?.port === port) return;
    if (existing) void existing.peer.close();
    const peer = new Peer({
      url: `ws://127.0.0.1:${port}${WEBSOCKET_PATH}`,
      topics: [nodeResponseTopic(node)],
      // A node takes a second or so to start; short retries make its check-in prompt.
      initialDelayMs: 50,
      maxDelayMs: 500,
    });
    peer.on("event", (topic, event) => {
      if (topic === nodeResponseTopic(node)) this.onEvent(node, event);
    });
    this.links.set(node, { port, peer });
    peer.start();
  }

  /** Sends a request to `node`; false when its link is not up. */
  send(node: string, event: ZeekEvent): boolean {
    return this.links.get(node)?.peer.publishEvent(nodeRequestTopic(node), event) ?? false;
  }

  has(node: string): boolean {
    return this.links.has(node);
  }

  async close(node: string): Promise<void> {
    const link = this.links.get(node);
    if (!link) return;
    this.links.delete(node);
    await link.peer.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.links.keys()].map((n) => this.close(n)));
  }
}
