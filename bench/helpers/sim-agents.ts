// Simulated agents: real WebSocket peers of a real controller that speak the agent side of
// the Management API (hello, welcome, deploy, get_nodes, node dispatch, standby) with
// made-up but well-formed node data. Many of them share this one process; the parent
// drives it over the IPC channel:
//   { cmd: "start", url, names }  ->  { ok: "started", connected }
//   { cmd: "stop" }               ->  closes every peer and exits

import { B } from "../../src/broker/data.js";
import type { ZeekEvent } from "../../src/broker/messages.js";
import { Peer } from "../../src/broker/peer.js";
import { AGENT_API_VERSION, AgentApi, agentTopic } from "../../src/agent/api.js";
import { NodeStatusVecCodec, makeResult } from "../../src/management/records.js";
import type { Configuration, Node, NodeStatus, Result } from "../../src/management/types.js";
import { toZeekJson } from "../../src/node/managed-node.js";

class SimAgent {
  readonly peer: Peer;
  private nodes: Node[] = [];
  private readonly topic: string;

  constructor(
    url: string,
    readonly name: string,
    private readonly basePid: number,
  ) {
    this.topic = agentTopic(name);
    this.peer = new Peer({ url, topics: [this.topic], initialDelayMs: 200, maxDelayMs: 2000, connectTimeoutMs: 30_000 });
    this.peer.on("ready", () => this.send(AgentApi.notify_agent_hello.make(name, this.peer.id, true, AGENT_API_VERSION)));
    this.peer.on("event", (topic, event) => {
      if (topic === this.topic) this.onEvent(event);
    });
  }

  private send(event: ZeekEvent): void {
    this.peer.publishEvent(this.topic, event);
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
        this.send(AgentApi.agent_standby_response.make(reqid, makeResult(reqid, { instance })));
        return;
      }
      case AgentApi.deploy_request.name: {
        const [reqid, config] = AgentApi.deploy_request.parse(event);
        this.adopt(config);
        const results = this.nodes.length
          ? this.nodes.map((n) => makeResult(reqid, { instance, node: n.name }))
          : [makeResult(reqid, { instance })];
        this.send(AgentApi.deploy_response.make(reqid, results));
        return;
      }
      case AgentApi.get_nodes_request.name: {
        const [reqid] = AgentApi.get_nodes_request.parse(event);
        this.send(
          AgentApi.get_nodes_response.make(reqid, makeResult(reqid, { instance, data: NodeStatusVecCodec.encode(this.statuses()) })),
        );
        return;
      }
      case AgentApi.node_dispatch_request.name: {
        const [reqid, action, wanted] = AgentApi.node_dispatch_request.parse(event);
        this.send(AgentApi.node_dispatch_response.make(reqid, this.dispatch(reqid, action, wanted ?? [])));
        return;
      }
      default:
        return;
    }
  }

  private adopt(config: Configuration): void {
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

const agents: SimAgent[] = [];

async function start(url: string, names: string[]): Promise<number> {
  // Batches keep the controller's accept queue and our own handshakes from piling up.
  const BATCH = 50;
  for (let i = 0; i < names.length; i += BATCH) {
    const batch = names.slice(i, i + BATCH).map((n, j) => new SimAgent(url, n, 100_000 + (i + j) * 100));
    agents.push(...batch);
    for (const a of batch) a.peer.start();
    await Promise.all(batch.map((a) => a.peer.waitReady(60_000)));
  }
  return agents.filter((a) => a.peer.connected).length;
}

process.on("message", (msg: { cmd: string; url?: string; names?: string[] }) => {
  if (msg.cmd === "start") {
    start(msg.url!, msg.names!).then(
      (connected) => process.send?.({ ok: "started", connected }),
      (err: unknown) => process.send?.({ error: String(err) }),
    );
  } else if (msg.cmd === "stop") {
    void Promise.all(agents.map((a) => a.peer.close())).finally(() => process.exit(0));
  }
});
// The parent going away must not leave this process behind.
process.on("disconnect", () => process.exit(0));
