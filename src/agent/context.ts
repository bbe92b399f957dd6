// What the agent's parts share: its options, node table, supervisor link, the one tracker
// of requests it waits on, and the way back to the controller.

import type { LocalEndpoint } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import type { Logger } from "../management/log.js";
import type { OfKind, RequestTracker, TrackedRequest } from "../management/request.js";
import type { NodeTable } from "./node-table.js";
import type { AgentOptions } from "./options.js";
import type { SupervisorLink } from "./supervisor-link.js";
import type { ZeekNodeLinks } from "./zeek-links.js";

/**
 * Every request the agent waits on, by kind. `controllerReqid` is the controller's request
 * this one answers; `waiting` holds the nodes that have yet to check in or respond.
 */
export type AgentRequest =
  | { readonly kind: "deploy"; readonly controllerReqid: string; readonly waiting: Set<string>; readonly failures: Map<string, string> }
  | {
      readonly kind: "restart";
      readonly controllerReqid: string;
      readonly waiting: Set<string>;
      /** Pids being replaced: a check-in from one of them does not count. */
      readonly oldPids: Map<string, number | undefined>;
    }
  | { readonly kind: "dispatch"; readonly controllerReqid: string; readonly waiting: Set<string> };

export type AgentRequestOf<K extends AgentRequest["kind"]> = TrackedRequest<OfKind<AgentRequest, K>>;

export interface AgentContext {
  readonly options: AgentOptions;
  readonly nodes: NodeTable;
  readonly supervisor: SupervisorLink;
  readonly requests: RequestTracker<AgentRequest>;
  readonly zeekLinks: ZeekNodeLinks;
  /** The agent's endpoint on its hub, where nodes without a link of their own listen. */
  readonly endpoint: LocalEndpoint;
  readonly log: Logger;
  /** Sends a response or notification to the controller, logging it with `summary`. */
  reply(event: ZeekEvent, summary: string): void;
  notifyError(msg: string, node?: string): void;
}
