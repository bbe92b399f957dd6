// A client of the controller's API over the WebSocket JSON protocol: what zeek-client does,
// as a library (used by the CLI, `zmgmt up`, tests and benchmarks).

import type { PeerTlsOptions } from "../broker/connection.js";
import { Peer } from "../broker/peer.js";
import { type Link, type Response, type ResponseWait, newReqId, request } from "../broker/request.js";
import type { Codec, EventSpec } from "../broker/schema.js";
import type { ZeekEvent } from "../broker/messages.js";
import { webSocketUrl } from "../broker/url.js";
import { CONTROLLER_TOPIC, ControllerApi, ZmgmtControllerApi } from "../controller/api.js";
import { ConfigurationCodec, InstanceVecCodec, NodeOutputsCodec, NodeStatusVecCodec } from "../management/records.js";
import type { Configuration, Instance, NodeOutputs, NodeStatus, Result } from "../management/types.js";
import {
  NodeLogsCodec,
  NodeProcessStatusVecCodec,
  type NodeLogs,
  type NodeLogsQuery,
  type NodeProcessStatus,
} from "../management/zmgmt-records.js";

export interface ControllerClientOptions {
  /** ws://host:port[/path] or host:port. */
  url: string;
  requestTimeoutMs?: number;
  /** Bound on connecting and the handshake. */
  connectTimeoutMs?: number;
  tls?: PeerTlsOptions;
}

export interface ControllerClientSettings {
  requestTimeoutMs?: number;
  /** How responses are awaited (the timeout itself is requestTimeoutMs or the call's). */
  wait?: Omit<ResponseWait, "timeoutMs">;
  /** Sees every request just before it is sent (for tracing). */
  onPublish?: (event: ZeekEvent) => void;
}

/** The controller's API as typed calls, over a reconnecting Peer or a single Connection. */
export class ControllerClient {
  private readonly requestTimeoutMs: number;

  constructor(
    private readonly link: Link,
    private readonly settings: ControllerClientSettings = {},
  ) {
    this.requestTimeoutMs = settings.requestTimeoutMs ?? 20_000;
  }

  /** A client that reconnects by itself whenever the link drops. */
  static async connect(options: ControllerClientOptions): Promise<ControllerClient> {
    const peer = new Peer({
      url: webSocketUrl(options.url, options.tls !== undefined),
      topics: [CONTROLLER_TOPIC],
      initialDelayMs: 200,
      maxDelayMs: 1000,
      ...(options.tls ? { tls: options.tls } : {}),
    }).start();
    try {
      await peer.waitReady(options.connectTimeoutMs ?? 10_000);
    } catch (err) {
      await peer.close();
      throw err;
    }
    return new ControllerClient(peer, options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {});
  }

  get events(): Link {
    return this.link;
  }

  async close(): Promise<void> {
    await this.link.close();
  }

  /** Publishes a request event and waits for the response with the same reqid. */
  async transact<A extends readonly Codec<unknown>[]>(
    event: ZeekEvent,
    response: EventSpec<A>,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<Response<A>> {
    this.settings.onPublish?.(event);
    return request(
      this.link,
      CONTROLLER_TOPIC,
      event,
      response,
      { ...this.settings.wait, timeoutMs },
      `the controller at ${this.link.url}`,
    );
  }

  async getInstances(): Promise<Result> {
    const [, result] = await this.transact(ControllerApi.get_instances_request.make(newReqId()), ControllerApi.get_instances_response);
    return result;
  }

  async stageConfiguration(config: Configuration): Promise<Result[]> {
    const [, results] = await this.transact(
      ControllerApi.stage_configuration_request.make(newReqId(), config),
      ControllerApi.stage_configuration_response,
    );
    return results;
  }

  async getConfiguration(deployed: boolean): Promise<Result> {
    const [, result] = await this.transact(
      ControllerApi.get_configuration_request.make(newReqId(), deployed),
      ControllerApi.get_configuration_response,
    );
    return result;
  }

  async deploy(timeoutMs?: number): Promise<Result[]> {
    const [, results] = await this.transact(ControllerApi.deploy_request.make(newReqId()), ControllerApi.deploy_response, timeoutMs);
    return results;
  }

  async getNodes(): Promise<Result[]> {
    const [, results] = await this.transact(ControllerApi.get_nodes_request.make(newReqId()), ControllerApi.get_nodes_response);
    return results;
  }

  async getIdValue(id: string, nodes: string[] = []): Promise<Result[]> {
    const [, results] = await this.transact(
      ControllerApi.get_id_value_request.make(newReqId(), id, nodes),
      ControllerApi.get_id_value_response,
    );
    return results;
  }

  async restart(nodes: string[] = [], timeoutMs?: number): Promise<Result[]> {
    const [, results] = await this.transact(
      ControllerApi.restart_request.make(newReqId(), nodes),
      ControllerApi.restart_response,
      timeoutMs,
    );
    return results;
  }

  /** zmgmt only: a node's output (data: NodeLogs). */
  async nodeLogs(query: NodeLogsQuery): Promise<Result> {
    const [, result] = await this.transact(
      ZmgmtControllerApi.node_logs_request.make(newReqId(), query),
      ZmgmtControllerApi.node_logs_response,
    );
    return result;
  }

  /** zmgmt only: process facts per instance (data: vector of NodeProcessStatus). */
  async nodeStatus(nodes: string[] = []): Promise<Result[]> {
    const [, results] = await this.transact(
      ZmgmtControllerApi.get_node_status_request.make(newReqId(), nodes),
      ZmgmtControllerApi.get_node_status_response,
    );
    return results;
  }

  /** zmgmt only: stops nodes until started or redeployed; one Result per node. */
  async stopNodes(nodes: string[] = [], timeoutMs?: number): Promise<Result[]> {
    const [, results] = await this.transact(
      ZmgmtControllerApi.stop_nodes_request.make(newReqId(), nodes),
      ZmgmtControllerApi.stop_nodes_response,
      timeoutMs,
    );
    return results;
  }

  /** zmgmt only: starts stopped nodes; one Result per node. */
  async startNodes(nodes: string[] = [], timeoutMs?: number): Promise<Result[]> {
    const [, results] = await this.transact(
      ZmgmtControllerApi.start_nodes_request.make(newReqId(), nodes),
      ZmgmtControllerApi.start_nodes_response,
      timeoutMs,
    );
    return results;
  }

  async testTimeout(withState: boolean, timeoutMs?: number): Promise<Result> {
    const [, result] = await this.transact(
      ControllerApi.test_timeout_request.make(newReqId(), withState),
      ControllerApi.test_timeout_response,
      timeoutMs,
    );
    return result;
  }
}

// ---------------------------------------------------------------------------------------
// Typed views of Result.data.

/** Decodes `data` with the codec, or undefined when it is absent or of another shape. */
export function resultData<T>(result: Result, codec: Codec<T>): T | undefined {
  if (!result.data) return undefined;
  try {
    return codec.decode(result.data, "data");
  } catch {
    return undefined;
  }
}

export const resultNodeStatuses = (r: Result): NodeStatus[] | undefined => resultData(r, NodeStatusVecCodec);
export const resultInstances = (r: Result): Instance[] | undefined => resultData(r, InstanceVecCodec);
export const resultConfiguration = (r: Result): Configuration | undefined => resultData(r, ConfigurationCodec);
export const resultNodeOutputs = (r: Result): NodeOutputs | undefined => resultData(r, NodeOutputsCodec);

export const resultNodeLogs = (r: Result): NodeLogs | undefined => resultData(r, NodeLogsCodec);
export const resultProcessStatuses = (r: Result): NodeProcessStatus[] | undefined => resultData(r, NodeProcessStatusVecCodec);

export function resultString(result: Result): string | undefined {
  return result.data?.type === "string" ? result.data.value : undefined;
}
