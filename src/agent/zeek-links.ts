// The agent's links to its Zeek nodes. A Zeek node serves a WebSocket on a loopback port
// of its own (zeek/zmgmt/node.zeek) and the agent dials it, retrying until the node is up
// and again whenever the node is replaced. Over the link the node checks in and answers
// dispatches; everything it sends is handed to the agent like a check-in from any node.
//
// While a link is down the agent also watches the node's directory for the file the node
// writes once it listens, and dials at once when it appears: the retries stay as the
// fallback, but a check-in no longer waits for the next one.

import { existsSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { ZeekEvent } from "../broker/messages.js";
import { Peer } from "../broker/peer.js";
import { WEBSOCKET_PATH } from "../broker/messages.js";
import { nodeRequestTopic, nodeResponseTopic } from "../node/api.js";

export interface RetrySchedule {
  initialDelayMs: number;
  maxDelayMs: number;
}

interface NodeLink {
  port: number;
  peer: Peer | undefined;
  listeningFile: string | undefined;
  watcher: FSWatcher | undefined;
}

export class ZeekNodeLinks {
  private readonly links = new Map<string, NodeLink>();

  constructor(
    private readonly onEvent: (node: string, event: ZeekEvent) => void,
    /** Retries while the node's directory is watched: only a fallback, so they can be rare. */
    private readonly watchedRetry: RetrySchedule = { initialDelayMs: 1000, maxDelayMs: 4000 },
  ) {}

  /**
   * Dials `node` on 127.0.0.1:`port` until closed; a link to another port is replaced.
   * `listeningFile` is where the node says that it listens (see MANAGEMENT_LISTENING_FILE).
   */
  open(node: string, port: number, listeningFile?: string): void {
    const existing = this.links.get(node);
    if (existing?.port === port) return;
    if (existing) void this.drop(existing);
    const link: NodeLink = { port, peer: undefined, listeningFile, watcher: undefined };
    this.watch(link);
    const peer = new Peer({
      url: `ws://127.0.0.1:${port}${WEBSOCKET_PATH}`,
      topics: [nodeResponseTopic(node)],
      // A node takes seconds to start. When it says that it listens, retries are only the
      // fallback and can be rare (each costs the agent CPU the starting nodes need); with
      // nothing to watch they are short, so that the check-in is prompt.
      ...(link.watcher ? this.watchedRetry : { initialDelayMs: 50, maxDelayMs: 500 }),
    });
    link.peer = peer;
    peer.on("event", (topic, event) => {
      if (topic === nodeResponseTopic(node)) this.onEvent(node, event);
    });
    peer.on("ready", () => this.unwatch(link));
    peer.on("down", () => this.watch(link));
    this.links.set(node, link);
    // A node that has not said yet that it listens is still starting: the first dial waits
    // for its word, or for the first retry.
    peer.start(link.watcher && listeningFile !== undefined && !existsSync(listeningFile) ? this.watchedRetry.initialDelayMs : 0);
  }

  /** Sends a request to `node`; false when its link is not up. */
  send(node: string, event: ZeekEvent): boolean {
    return this.links.get(node)?.peer?.publishEvent(nodeRequestTopic(node), event) ?? false;
  }

  has(node: string): boolean {
    return this.links.has(node);
  }

  async close(node: string): Promise<void> {
    const link = this.links.get(node);
    if (!link) return;
    this.links.delete(node);
    await this.drop(link);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.links.keys()].map((n) => this.close(n)));
  }

  private drop(link: NodeLink): Promise<void> {
    this.unwatch(link);
    return link.peer?.close() ?? Promise.resolve();
  }

  private watch(link: NodeLink): void {
    if (link.watcher || link.listeningFile === undefined) return;
    const name = basename(link.listeningFile);
    try {
      link.watcher = watch(dirname(link.listeningFile), { persistent: false }, (_kind, file) => {
        if (file === name) link.peer?.retryNow();
      });
      // A directory that goes away (the node's state removed) ends the watch; the retries go on.
      link.watcher.on("error", () => this.unwatch(link));
    } catch {
      // No directory to watch (yet): the retries alone find the node.
    }
  }

  private unwatch(link: NodeLink): void {
    link.watcher?.close();
    link.watcher = undefined;
  }
}
