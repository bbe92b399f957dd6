// What the controller's parts share: the request states (one member per request kind),
// and the context each part is handed instead of reaching into the others.

import type { ZeekEvent } from "../broker/messages.js";
import type { Logger } from "../management/log.js";
import { DuplicateRequestError, type OfKind, type RequestTracker, type TrackedRequest } from "../management/request.js";
import type { Configuration, Result } from "../management/types.js";
import { compareText } from "../management/validation.js";
import type { InstanceRegistry } from "./instances.js";
import type { ControllerMetrics } from "./metrics.js";
import type { StoredConfigs } from "./persistence.js";

export const TIMED_OUT = "request timed out";

/**
 * Where a deployment stands: waiting for every instance of its configuration to be ready
 * (nothing sent, nothing dropped yet), recording the configuration before it goes out,
 * waiting for the agents' answers, then checking that the nodes run.
 */
export type DeployPhase = "waiting" | "recording" | "sent" | "checking";

/** A rollback answers for the deployment that failed. */
export interface RollbackOf {
  /** The client request to answer; undefined for a deployment no client asked for. */
  readonly reqid: string | undefined;
  readonly failedId: string;
  /** What the failed deployment's agents said, and why it failed. */
  readonly results: Result[];
}

export interface DeployState {
  readonly kind: "deploy";
  readonly config: Configuration;
  /** Internal deployments (start-up, agents coming back, rollbacks) answer no client directly. */
  readonly internal: boolean;
  /** Re-sends the DEPLOYED configuration: nothing to record and nothing to roll back to. */
  readonly redeploy: boolean;
  /** Roll back to DEPLOYED when the nodes do not come up. */
  readonly rollback: boolean;
  readonly rollbackOf?: RollbackOf;
  phase: DeployPhase;
  /** Instances the config was sent to (in this deployment) and that are still expected to answer or did. */
  readonly sentTo: Set<string>;
  readonly answered: Set<string>;
  /** Node states and pids from the current check round, by node name. */
  readonly observed: Map<string, { readonly state: string; readonly pid: number | undefined }>;
  /** Pids from the first check round that found every node RUNNING. */
  baseline: Map<string, number | undefined> | undefined;
}

/** The sub-requests one client request fans out to agents. */
export type FanOutOp = "get_nodes" | "node_dispatch" | "restart";

/** Client requests that are answered once every agent asked has answered. */
export type FanOutKind = "get_nodes" | "get_id_value" | "restart";

/** zmgmt's own requests (ZmgmtControllerApi), answered once every agent asked has answered. */
export type ZmgmtOp = "node_logs" | "get_node_status" | "stop_nodes" | "start_nodes";

export type RequestState =
  | DeployState
  | { readonly kind: FanOutKind }
  | { readonly kind: "zmgmt"; readonly op: ZmgmtOp }
  | { readonly kind: "test_timeout" }
  | { readonly kind: "welcome"; readonly instance: string }
  | { readonly kind: "agent"; readonly instance: string; readonly op: "deploy" | FanOutOp | ZmgmtOp };

export type RequestKind = RequestState["kind"];

/** A tracked controller request; narrowed to one kind when `K` is given. */
export type ControllerRequest<K extends RequestKind = RequestKind> = TrackedRequest<OfKind<RequestState, K>>;

/** The shape shared by every controller response event. */
export interface ResponseSpec<P> {
  readonly name: string;
  make(reqid: string, payload: P): ZeekEvent;
}

export interface ControllerContext {
  readonly log: Logger;
  /** Deploy accounting (deployStarted/Finished) and deployRolledBack() for rollbacks. */
  readonly metrics: ControllerMetrics;
  readonly requests: RequestTracker<RequestState>;
  readonly instances: InstanceRegistry;
  readonly configs: StoredConfigs;
  /** Answers a client on the controller topic. */
  reply(spec: ResponseSpec<Result>, reqid: string, result: Result): void;
  replyAll(spec: ResponseSpec<Result[]>, reqid: string, results: Result[], req?: ControllerRequest): void;
}

/**
 * Runs `create` and returns its request, or undefined when a client reused the id of a
 * request still pending: the answer to that one carries this reqid too, so it answers both.
 */
export function unlessDuplicate<T>(log: Logger, create: () => T): T | undefined {
  try {
    return create();
  } catch (err) {
    if (!(err instanceof DuplicateRequestError)) throw err;
    log.warning(`request ${err.id} is already pending, ignoring the duplicate`);
    return undefined;
  }
}

export function byName<T extends { name: string }>(a: T, b: T): number {
  return compareText(a.name, b.name);
}
