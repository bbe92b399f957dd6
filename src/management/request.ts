// Request tracking shared by the management roles: every request a role waits on (a
// client's request, a sub-request to an agent or a node) is one entry with its own timer.
// A role keeps one tracker whose state type is a union discriminated by `kind`, one member
// per request kind, so a response handler narrows with `getOfKind` instead of casting.
//
// Upstream keeps requests in a table swept every 2 s, so its timeouts fire anywhere between
// T and T+2 s; a timer per request fires at T and needs no sweep.

import { randomUUID } from "node:crypto";
import { resultToString } from "./records.js";
import type { Result } from "./types.js";

/** The clock a tracker schedules on; injectable so tests can drive time by hand. */
export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set(callback, ms) {
    const handle = setTimeout(callback, ms);
    // Pending requests alone must not keep a process alive that is otherwise done.
    handle.unref();
    return handle;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export interface TrackedRequest<S> {
  readonly id: string;
  /** Set on sub-requests: the request whose answer this one contributes to. */
  readonly parentId?: string;
  readonly state: S;
  /** Results collected so far, in arrival order. */
  readonly results: Result[];
  /** True once the request was finished, cancelled or timed out; it is no longer tracked then. */
  finished: boolean;
}

/** The member of a state union with the given `kind`. */
export type OfKind<S, K> = Extract<S, { readonly kind: K }>;

/** Narrows a request by the kind of its state. */
export function hasKind<S extends { readonly kind: string }, K extends S["kind"]>(
  request: TrackedRequest<S>,
  kind: K,
): request is TrackedRequest<OfKind<S, K>> {
  return request.state.kind === kind;
}

export interface CreateRequestOptions<S> {
  /** Defaults to a fresh id. Client requests keep the id the client chose. */
  id?: string;
  parentId?: string;
  state: S;
  /** Overrides the tracker's default timeout for this request. */
  timeoutMs?: number;
  /**
   * false: a sub-request without a timer of its own, ended with its parent (whose timeout
   * covers it). A fan-out to 1,000 agents otherwise arms and clears 1,000 timers that can
   * only fire after the parent's.
   */
  ownTimer?: boolean;
  /** Runs when the request is finished (not when it times out or is cancelled). */
  onFinish?: (request: TrackedRequest<S>) => void;
  /** Overrides the tracker's `onTimeout` for this request. */
  onTimeout?: (request: TrackedRequest<S>) => void;
}

export interface RequestTrackerOptions<S> {
  timeoutMs: number;
  timers?: Timers;
  newId?: () => string;
  /**
   * The timeout path for every request that brings no `onTimeout` of its own: one handler
   * that switches on the state's kind keeps a role's timeout behaviour in one place.
   */
  onTimeout?: (request: TrackedRequest<S>) => void;
}

/**
 * Ids unique to this process and distinct from any earlier run's: a random prefix drawn
 * once and a counter. A fan-out to 1,000 agents needs 1,000 ids per request, and a fresh
 * UUID each was a measurable part of it.
 */
export function sequentialIds(): () => string {
  const prefix = randomUUID();
  let n = 0;
  return () => `${prefix}-${(n++).toString(36)}`;
}

/** Stable codes, so callers and logs can tell the failures apart without parsing text. */
export type RequestErrorCode = "duplicate_request" | "unknown_parent";

export class RequestError extends Error {
  constructor(
    readonly code: RequestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

export class DuplicateRequestError extends RequestError {
  constructor(readonly id: string) {
    super("duplicate_request", `request ${id} is already pending`);
    this.name = "DuplicateRequestError";
  }
}

export class UnknownParentError extends RequestError {
  constructor(readonly parentId: string) {
    super("unknown_parent", `parent request ${parentId} is not pending`);
    this.name = "UnknownParentError";
  }
}

interface Entry<S> {
  request: TrackedRequest<S>;
  timer: unknown;
  children: Set<string>;
  onFinish: (() => void) | undefined;
  onTimeout: (() => void) | undefined;
}

/**
 * Pending requests by id. Ending a request (finish, cancel or timeout) also forgets its
 * pending sub-requests without running their callbacks: once a parent has answered,
 * whatever its children still bring in has nowhere to go, so late responses find no entry
 * and are dropped by the caller.
 */
export class RequestTracker<S> {
  private readonly entries = new Map<string, Entry<S>>();
  private readonly timers: Timers;
  private readonly newId: () => string;
  private readonly defaultOnTimeout: ((request: TrackedRequest<S>) => void) | undefined;
  readonly timeoutMs: number;

  constructor(options: RequestTrackerOptions<S>) {
    this.timeoutMs = options.timeoutMs;
    this.timers = options.timers ?? realTimers;
    this.newId = options.newId ?? randomUUID;
    this.defaultOnTimeout = options.onTimeout;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Starts tracking a request; the returned request keeps the narrow state type given. */
  create<T extends S>(options: CreateRequestOptions<T>): TrackedRequest<T> {
    const id = options.id ?? this.newId();
    if (this.entries.has(id)) throw new DuplicateRequestError(id);
    const parent = options.parentId !== undefined ? this.entries.get(options.parentId) : undefined;
    if (options.parentId !== undefined && !parent) throw new UnknownParentError(options.parentId);
    const request: TrackedRequest<T> = {
      id,
      ...(options.parentId !== undefined ? { parentId: options.parentId } : {}),
      state: options.state,
      results: [],
      finished: false,
    };
    const { onFinish, onTimeout } = options;
    const fallback = this.defaultOnTimeout;
    const entry: Entry<S> = {
      request,
      timer: options.ownTimer === false && parent ? undefined : this.timers.set(() => this.expire(id), options.timeoutMs ?? this.timeoutMs),
      children: new Set(),
      onFinish: onFinish && (() => onFinish(request)),
      onTimeout: onTimeout ? () => onTimeout(request) : fallback && (() => fallback(request)),
    };
    this.entries.set(id, entry);
    parent?.children.add(id);
    return request;
  }

  get(id: string): TrackedRequest<S> | undefined {
    return this.entries.get(id)?.request;
  }

  /** The pending request with this id if its state has this kind; a response's lookup. */
  getOfKind<K extends (S extends { readonly kind: infer A } ? A : never)>(id: string, kind: K): TrackedRequest<OfKind<S, K>> | undefined {
    const request = this.entries.get(id)?.request;
    return request && isOfKind<S, K>(request, kind) ? request : undefined;
  }

  /** The pending parent of a pending sub-request, if both are still tracked. */
  parentOf(id: string): TrackedRequest<S> | undefined {
    const parentId = this.entries.get(id)?.request.parentId;
    return parentId === undefined ? undefined : this.entries.get(parentId)?.request;
  }

  /** Pending children of a request, counted without building a list (fan-outs ask often). */
  childCount(id: string): number {
    return this.entries.get(id)?.children.size ?? 0;
  }

  /** Pending sub-requests of `id`, oldest first. */
  childrenOf(id: string): TrackedRequest<S>[] {
    const entry = this.entries.get(id);
    if (!entry) return [];
    return [...entry.children].flatMap((c) => {
      const child = this.entries.get(c);
      return child ? [child.request] : [];
    });
  }

  pending(): TrackedRequest<S>[] {
    return [...this.entries.values()].map((e) => e.request);
  }

  /**
   * Completes a request: stops tracking it (and its pending children), then runs its
   * finish callback. False when the id is not pending, e.g. because it timed out.
   */
  finish(id: string): boolean {
    const entry = this.remove(id);
    if (!entry) return false;
    entry.onFinish?.();
    return true;
  }

  /** Stops tracking a request (and its pending children) without running any callback. */
  cancel(id: string): boolean {
    return this.remove(id) !== undefined;
  }

  /** Forgets everything without running callbacks; for shutdown. */
  clear(): void {
    for (const entry of this.entries.values()) {
      if (entry.timer !== undefined) this.timers.clear(entry.timer);
      entry.request.finished = true;
    }
    this.entries.clear();
  }

  // The one timeout path: the timer of a request that is still tracked.
  private expire(id: string): void {
    const entry = this.remove(id);
    if (!entry) return;
    entry.onTimeout?.();
  }

  private remove(id: string): Entry<S> | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (entry.timer !== undefined) this.timers.clear(entry.timer);
    entry.request.finished = true;
    if (entry.request.parentId !== undefined) {
      this.entries.get(entry.request.parentId)?.children.delete(id);
    }
    for (const child of entry.children) this.remove(child);
    return entry;
  }
}

function isOfKind<S, K>(request: TrackedRequest<S>, kind: K): request is TrackedRequest<OfKind<S, K>> {
  const state: unknown = request.state;
  return typeof state === "object" && state !== null && "kind" in state && state.kind === kind;
}

/** Upstream's `Request::to_string`, used in tx log lines. */
export function requestToString(request: { id: string; parentId?: string; finished: boolean; results: readonly Result[] }): string {
  const via = request.parentId !== undefined ? ` (via ${request.parentId})` : "";
  const status = request.finished ? "finished" : "pending";
  return `[request ${request.id}${via} ${status}, results: ${request.results.map(resultToString).join(", ")}]`;
}
