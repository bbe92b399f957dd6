// Request/response over a link to a Broker endpoint: publish an event whose first argument
// is a reqid, wait for the response event carrying the same reqid. The one client-side
// matcher, used by the controller client, the CLI, the supervisor link and the tests.

import { randomUUID } from "node:crypto";
import type { EventEmitter } from "node:events";
import type { BrokerData } from "./data.js";
import type { LinkEvents } from "./connection.js";
import { ProtocolError } from "./errors.js";
import { type ZeekEvent, dataToEvent } from "./messages.js";
import type { Codec, EventSpec } from "./schema.js";

/** What a request needs of a link: a Connection or a reconnecting Peer. */
export interface Link extends EventEmitter<LinkEvents> {
  readonly url: string;
  readonly connected: boolean;
  publishEvent(topic: string, event: ZeekEvent): boolean;
  close(): Promise<void>;
}

export function newReqId(): string {
  return randomUUID();
}

export interface ResponseWait {
  timeoutMs: number;
  /**
   * Start the timeout again on every message received, as zeek-client's per-receive
   * timeout does; otherwise it bounds the whole wait.
   */
  perMessage?: boolean;
  /**
   * Reject with `disconnected` when the link goes down. Off by default, since a reconnecting
   * peer may still receive the response after it reconnects.
   */
  failOnDown?: boolean;
  /**
   * Sees every data message first and returns its event, or undefined to skip it; throwing
   * aborts the wait with that error. By default undecodable messages are skipped.
   */
  inspect?: (topic: string, data: BrokerData) => ZeekEvent | undefined;
}

function decodeOrSkip(_topic: string, data: BrokerData): ZeekEvent | undefined {
  try {
    return dataToEvent(data);
  } catch {
    return undefined;
  }
}

export type Response<A extends readonly Codec<unknown>[]> = ReturnType<EventSpec<A>["parse"]>;

/**
 * Waits for the first event matching `spec` whose first argument equals `reqid`. An event
 * of that name with bad arguments rejects (the peer broke the contract); a timeout rejects
 * with code request_timeout.
 */
export function awaitResponse<A extends readonly Codec<unknown>[]>(
  link: EventEmitter<LinkEvents>,
  spec: EventSpec<A>,
  reqid: string,
  wait: number | ResponseWait,
): Promise<Response<A>> {
  const {
    timeoutMs,
    perMessage = false,
    failOnDown = false,
    inspect = decodeOrSkip,
  } = typeof wait === "number" ? { timeoutMs: wait } : wait;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      link.off("data", onData);
      link.off("server-error", onServerError);
      link.off("down", onDown);
    };
    const fail = (err: unknown): void => {
      cleanup();
      reject(err);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => fail(new ProtocolError("request_timeout", `no ${spec.name} for request ${reqid} within ${timeoutMs} ms`)),
        timeoutMs,
      );
    };
    const onData = (topic: string, data: BrokerData): void => {
      if (perMessage) arm();
      let event: ZeekEvent | undefined;
      try {
        event = inspect(topic, data);
      } catch (err) {
        fail(err);
        return;
      }
      if (!event || event.name !== spec.name) return;
      const first = event.args[0];
      if (first?.type !== "string" || first.value !== reqid) return;
      cleanup();
      try {
        resolve(spec.parse(event));
      } catch (err) {
        reject(err);
      }
    };
    const onServerError = (): void => {
      if (perMessage) arm();
    };
    const onDown = (reason: string): void => {
      if (failOnDown) fail(new ProtocolError("disconnected", reason));
    };
    link.on("data", onData);
    link.on("server-error", onServerError);
    link.on("down", onDown);
    arm();
  });
}

/**
 * Publishes a request on a link and waits for its response by reqid. `peerName` names the
 * other side in the error when the link is down.
 */
export async function request<A extends readonly Codec<unknown>[]>(
  link: Link,
  topic: string,
  event: ZeekEvent,
  responseSpec: EventSpec<A>,
  wait: number | ResponseWait,
  peerName = link.url,
): Promise<Response<A>> {
  const first = event.args[0];
  if (first?.type !== "string") throw new ProtocolError("invalid_event", "a request's first argument is its reqid");
  // Checked before the wait starts, so a request that cannot be sent leaves no timer behind.
  if (!link.connected) throw new ProtocolError("disconnected", `not connected to ${peerName}`);
  const pending = awaitResponse(link, responseSpec, first.value, wait);
  link.publishEvent(topic, event);
  return pending;
}
