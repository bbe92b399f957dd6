// Simulated agents: real WebSocket peers of a real controller that speak the agent side of
// the Management API (hello, welcome, deploy, get_nodes, node dispatch, standby) with
// made-up but well-formed node data. Many of them share this one process; the parent
// drives it over the IPC channel:
//   { cmd: "start", url, names, masterSecret }  ->  { ok: "started", connected }
//                                     (each agent proves its name with its instance secret)
//   { cmd: "floor", url, count }  ->  { ok: "floor-ready" }: plain peers of a floor server
//                                     that answer every message with "ack"
//   { cmd: "stop" }               ->  closes every peer and exits
//
// Deploy frames are large (the whole configuration) and, to every agent, the same bytes
// after the request id. Fully decoding 1,000 of them would make this process, not the
// controller, the bottleneck: each agent compares its frame's bytes after the request id
// with those of the frame decoded last and decodes only when they differ. So every frame
// is still checked to be exactly the configuration that one full decode yielded.

import WebSocket from "ws";
import { B } from "../../src/broker/data.js";
import { dataToEvent, decodeDataMessage, encodeEventMessage, encodeHandshake, type ZeekEvent } from "../../src/broker/messages.js";
import { AGENT_API_VERSION, AgentApi, agentTopic } from "../../src/agent/api.js";
import { agentHeaders, instanceSecret } from "../../src/management/agent-auth.js";
import { NodeStatusVecCodec, makeResult } from "../../src/management/records.js";
import type { Configuration, Node, NodeStatus, Result } from "../../src/management/types.js";
import { toZeekJson } from "../../src/node/managed-node.js";

/** The last deploy configuration decoded in full, by its frame's bytes after the request id. */
let lastDeploy: { tail: Buffer; config: Configuration } | undefined;
const DEPLOY_NAME = JSON.stringify(AgentApi.deploy_request.name);
const ID_PLACEHOLDER = "\u0000reqid-placeholder";
const ID_MARKER = '{"@data-type":"string","data":"';

/**
 * The request id and the bytes after it, for a deploy_request frame; undefined otherwise.
 * Only the frame's first kilobytes are read as text: the rest is compared as bytes.
 */
function splitDeployFrame(raw: Buffer): { topicText: string; reqid: string; tail: Buffer } | undefined {
  const head = raw.subarray(0, 2048).toString("utf8");
  const at = head.indexOf(DEPLOY_NAME);
  if (at < 0) return undefined;
  const start = head.indexOf(ID_MARKER, at + DEPLOY_NAME.length);
  if (start < 0) return undefined;
  const idStart = start + ID_MARKER.length;
  const idEnd = head.indexOf('"', idStart);
  if (idEnd < 0) return undefined;
  const reqid = head.slice(idStart, idEnd);
  if (reqid.includes("\\")) return undefined;
  return { topicText: head.slice(0, at), reqid, tail: raw.subarray(Buffer.byteLength(head.slice(0, idEnd))) };
}

class SimAgent {
  private ws: WebSocket | undefined;
  private nodes: Node[] = [];
  private readonly answers = new Map<string, string[]>();
  private readonly topic: string;
  readonly id = `sim-${Math.random().toString(16).slice(2)}`;
  connected = false;

  constructor(
    private readonly url: string,
    readonly name: string,
    private readonly basePid: number,
    private readonly secret: string,
  ) {
    this.topic = agentTopic(name);
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, headers: agentHeaders(this.name, this.secret) });
      this.ws = ws;
      let acked = false;
      ws.on("open", () => ws.send(encodeHandshake([this.topic])));
      ws.on("error", (err) => {
        if (!acked) reject(err);
      });
      ws.on("close", () => {
        this.connected = false;
        // Like a real agent: come back and say hello again, so a controller that dropped
        // this peer (say, under load) can welcome it and resend a pending deploy.
        if (acked && !stopping) setTimeout(() => void this.start().catch(() => undefined), 200);
      });
      ws.on("message", (data) => {
        const raw = data as Buffer;
        if (!acked) {
          acked = true;
          this.connected = true;
          this.send(AgentApi.notify_agent_hello.make(this.name, this.id, true, AGENT_API_VERSION));
          resolve();
          return;
        }
        this.onFrame(raw);
      });
    });
  }

  close(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once("close", () => resolve());
      ws.close();
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000).unref();
    });
  }

  private send(event: ZeekEvent): void {
    this.ws?.send(encodeEventMessage(this.topic, event));
  }

  private onFrame(raw: Buffer): void {
    const deploy = splitDeployFrame(raw);
    if (deploy && deploy.topicText.includes(`"topic":${JSON.stringify(this.topic)}`) && lastDeploy?.tail.equals(deploy.tail)) {
      this.onDeploy(deploy.reqid, lastDeploy.config);
      return;
    }
    let event: ZeekEvent;
    try {
      const message = decodeDataMessage(raw.toString("utf8"));
      if (message.topic !== this.topic) return;
      event = dataToEvent(message.data);
    } catch {
      return;
    }
    if (deploy && event.name === AgentApi.deploy_request.name) {
      const [reqid, config] = AgentApi.deploy_request.parse(event);
      lastDeploy = { tail: Buffer.from(deploy.tail), config };
      this.onDeploy(reqid, config);
      return;
    }
    this.onEvent(event);
  }

  private onDeploy(reqid: string, config: Configuration): void {
    const instance = this.name;
    this.adopt(config);
    const results = this.nodes.length
      ? this.nodes.map((n) => makeResult(reqid, { instance, node: n.name }))
      : [makeResult(reqid, { instance })];
    this.send(AgentApi.deploy_response.make(reqid, results));
  }

  private onEvent(event: ZeekEvent): void {
    const instance = this.name;
    switch (event.name) {
      case AgentApi.agent_welcome_request.name: {
        const [reqid] = AgentApi.agent_welcome_request.parse(event);
        this.send(AgentApi.agent_welcome_response.make(reqid, makeResult(reqid, { instance })));
        return;
      }
      case AgentApi.agent_standby_request.name: {
        const [reqid] = AgentApi.agent_standby_request.parse(event);
        this.nodes = [];
        this.answers.clear();
        this.send(AgentApi.agent_standby_response.make(reqid, makeResult(reqid, { instance })));
        return;
      }
      case AgentApi.get_nodes_request.name: {
        const [reqid] = AgentApi.get_nodes_request.parse(event);
        this.sendCached("get_nodes", reqid, (id) =>
          AgentApi.get_nodes_response.make(id, makeResult(id, { instance, data: NodeStatusVecCodec.encode(this.statuses()) })),
        );
        return;
      }
      case AgentApi.node_dispatch_request.name: {
        const [reqid, action, wanted] = AgentApi.node_dispatch_request.parse(event);
        this.sendCached(`dispatch ${JSON.stringify([action, wanted ?? []])}`, reqid, (id) =>
          AgentApi.node_dispatch_response.make(id, this.dispatch(id, action, wanted ?? [])),
        );
        return;
      }
      default:
        return;
    }
  }

  /**
   * Answers that differ between requests only in the request id are encoded once per
   * deployed state, so that the simulator spends little of the shared CPU on them.
   */
  private sendCached(key: string, reqid: string, make: (reqid: string) => ZeekEvent): void {
    let parts = this.answers.get(key);
    if (!parts) {
      parts = encodeEventMessage(this.topic, make(ID_PLACEHOLDER)).split(JSON.stringify(ID_PLACEHOLDER));
      this.answers.set(key, parts);
    }
    this.ws?.send(parts.join(JSON.stringify(reqid)));
  }

  private adopt(config: Configuration): void {
    this.answers.clear();
    this.nodes = config.nodes.filter((n) => n.instance === this.name);
  }

  private statuses(): NodeStatus[] {
    const out: NodeStatus[] = [{ node: this.name, state: "RUNNING", mgmtRole: "AGENT", clusterRole: "NONE", pid: this.basePid }];
    this.nodes.forEach((n, i) => {
      out.push({
        node: n.name,
        state: "RUNNING",
        mgmtRole: "NONE",
        clusterRole: n.role,
        pid: this.basePid + 1 + i,
        ...(n.port !== undefined ? { port: n.port } : {}),
        ...(n.metricsPort !== undefined ? { metricsPort: n.metricsPort } : {}),
      });
    });
    return out;
  }

  private dispatch(reqid: string, action: string[], wanted: string[]): Result[] {
    const instance = this.name;
    const targets = wanted.length ? this.nodes.filter((n) => wanted.includes(n.name)) : this.nodes;
    return targets.map((n) => {
      if (action[0] !== "get_id_value")
        return makeResult(reqid, { instance, node: n.name, success: false, error: `dispatch ${action[0]} unknown` });
      const value = action[1] === "Cluster::node" ? n.name : action[1] === "zmgmt::role" ? n.role : undefined;
      return value === undefined
        ? makeResult(reqid, { instance, node: n.name, success: false, error: "unknown id" })
        : makeResult(reqid, { instance, node: n.name, data: B.str(toZeekJson(value)) });
    });
  }
}

let stopping = false;
const agents: SimAgent[] = [];
const floorPeers: WebSocket[] = [];

async function start(url: string, names: string[], masterSecret: string): Promise<number> {
  // Batches keep the controller's accept queue and our own handshakes from piling up.
  const BATCH = 50;
  for (let i = 0; i < names.length; i += BATCH) {
    const batch = names.slice(i, i + BATCH).map((n, j) => new SimAgent(url, n, 100_000 + (i + j) * 100, instanceSecret(masterSecret, n)));
    agents.push(...batch);
    await Promise.all(batch.map((a) => a.start()));
  }
  return agents.filter((a) => a.connected).length;
}

/** Plain peers for the deploy floor: each receives a whole message and answers "ack". */
async function startFloorPeers(url: string, count: number): Promise<void> {
  const BATCH = 50;
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, () => new WebSocket(url, { perMessageDeflate: false }));
    floorPeers.push(...batch);
    await Promise.all(
      batch.map(
        (ws) =>
          new Promise<void>((resolve, reject) => {
            ws.once("open", () => resolve());
            ws.once("error", reject);
            // Transport only: ws has reassembled and UTF-8-checked the message by now.
            ws.on("message", (raw) => ws.send((raw as Buffer).length > 0 ? "ack" : "empty"));
          }),
      ),
    );
  }
}

process.on("message", (msg: { cmd: string; url?: string; names?: string[]; masterSecret?: string; count?: number }) => {
  if (msg.cmd === "start") {
    start(msg.url!, msg.names!, msg.masterSecret!).then(
      (connected) => process.send?.({ ok: "started", connected }),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  } else if (msg.cmd === "floor") {
    startFloorPeers(msg.url!, msg.count!).then(
      () => process.send?.({ ok: "floor-ready" }),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  } else if (msg.cmd === "stop") {
    stopping = true;
    for (const ws of floorPeers) ws.terminate();
    void Promise.all(agents.map((a) => a.close())).finally(() => process.exit(0));
  }
});
// The parent going away must not leave this process behind.
process.on("disconnect", () => process.exit(0));
