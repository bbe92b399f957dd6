// The controller's recent deployments, newest first, for the dashboard and any client that
// asks (Zmgmt::Controller::API::get_deploy_history_request). Kept in memory and bounded:
// it says what happened since the controller started, the management log keeps the rest.

import * as S from "../broker/schema.js";
import type { Codec } from "../broker/schema.js";

/** Most deployments remembered. */
export const DEPLOY_HISTORY_LIMIT = 50;

export const DEPLOY_OUTCOMES = ["PENDING", "SUCCEEDED", "FAILED", "TIMED_OUT"] as const;
export type DeployOutcome = (typeof DEPLOY_OUTCOMES)[number];

export interface DeployRecord {
  /** The deploy request's id (a client's, or the controller's own for internal ones). */
  reqid: string;
  configId: string;
  /** Epoch milliseconds. */
  startedAt: number;
  finishedAt?: number;
  outcome: DeployOutcome;
  /** Started by the controller itself (at start-up, or to bring returning agents in line). */
  internal: boolean;
  /** Nodes whose result was a failure. */
  failedNodes: number;
  /** The first error of the answer, if any. */
  error?: string;
}

const outcomeCodec: Codec<DeployOutcome> = S.enumOf("Zmgmt", DEPLOY_OUTCOMES);

export const DeployRecordCodec: Codec<DeployRecord> = S.record<DeployRecord>("Zmgmt::DeployRecord", {
  reqid: S.string,
  configId: S.string,
  startedAt: S.count,
  finishedAt: S.optional(S.count),
  outcome: outcomeCodec,
  internal: S.bool,
  failedNodes: S.count,
  error: S.optional(S.string),
});

export const DeployRecordVecCodec = S.vector(DeployRecordCodec);

export class DeployHistory {
  private readonly records: DeployRecord[] = [];

  constructor(
    private readonly limit = DEPLOY_HISTORY_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  started(reqid: string, configId: string, internal: boolean): void {
    this.records.unshift({ reqid, configId, startedAt: this.now(), outcome: "PENDING", internal, failedNodes: 0 });
    if (this.records.length > this.limit) this.records.length = this.limit;
  }

  finished(reqid: string, outcome: Exclude<DeployOutcome, "PENDING">, failedNodes: number, error?: string): void {
    const record = this.records.find((r) => r.reqid === reqid && r.outcome === "PENDING");
    if (!record) return;
    record.outcome = outcome;
    record.finishedAt = this.now();
    record.failedNodes = failedNodes;
    if (error !== undefined) record.error = error;
  }

  list(): DeployRecord[] {
    return this.records.map((r) => ({ ...r }));
  }
}
