// Request tracking for the controller: every client request and every sub-request sent to
// an agent is one entry with its own timer. Upstream keeps requests in a table that is
// swept every 2 s, so its timeouts fire anywhere between T and T+2 s; a timer per request
// fires at T and needs no sweep.

import { randomUUID } from "node:crypto";
import { resultToString } from "../management/records.js";
import type { Result } from "../management/types.js";

/** The clock the tracker schedules on; injectable so tests can drive time by hand. */
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
  /** True once the request was finished or timed out; it is no longer tracked then. */
  finished: boolean;
}

export interface CreateRequestOptions<S> {
  /** Defaults to a fresh random id. Client requests keep the id the client chose. */
  id?: string;
  parentId?: string;
  state: S;
  /** Overrides the tracker's default timeout for this request. */
  timeoutMs?: number;
  /** Runs when the request is finished (not when it times out). */
  onFinish?: (request: TrackedRequest<S>) => void;
  /** Runs when the timer fires before the request was finished. */
  onTimeout?: (request: TrackedRequest<S>) => void;
}

export interface RequestTrackerOptions {
  timeoutMs: number;
  timers?: Timers;
  newId?: () => string;
}

export class DuplicateRequestError extends Error {
  constructor(readonly id: string) {
    super(`request ${id} is already pending`);
    this.name = "DuplicateRequestError";
  }
}

export class UnknownParentError extends Error {
  constructor(readonly parentId: string) {
    super(`parent request ${parentId} is not pending`);
    this.name = "UnknownParentError";
  }
}

interface Entry<S> {
  request: TrackedRequest<S>;
  timer: unknown;
  children: Set<string>;
  onFinish: ((request: TrackedRequest<S>) => void) | undefined;
  onTimeout: ((request: TrackedRequest<S>) => void) | undefined;
}

/**
 * Pending requests by id. Ending a request (finish or timeout) also forgets its pending
 * sub-requests without running their callbacks: once a parent has answered, whatever its
 * children still bring in has nowhere to go, so late responses find no entry and are
 * dropped by the caller.
 */
export class RequestTracker<S> {
  private readonly entries = new Map<string, Entry<S>>();
  private readonly timers: Timers;
  private readonly newId: () => string;
  readonly timeoutMs: number;

  constructor(options: RequestTrackerOptions) {
    this.timeoutMs = options.timeoutMs;
    this.timers = options.timers ?? realTimers;
    this.newId = options.newId ?? randomUUID;
  }

  get size(): number {
    return this.entries.size;
  }

  create(options: CreateRequestOptions<S>): TrackedRequest<S> {
    const id = options.id ?? this.newId();
    if (this.entries.has(id)) throw new DuplicateRequestError(id);
    const parent = options.parentId !== undefined ? this.entries.get(options.parentId) : undefined;
    if (options.parentId !== undefined && !parent) throw new UnknownParentError(options.parentId);
    const request: TrackedRequest<S> = {
      id,
      ...(options.parentId !== undefined ? { parentId: options.parentId } : {}),
      state: options.state,
      results: [],
      finished: false,
    };
    const entry: Entry<S> = {
      request,
      timer: this.timers.set(() => this.expire(id), options.timeoutMs ?? this.timeoutMs),
      children: new Set(),
      onFinish: options.onFinish,
      onTimeout: options.onTimeout,
    };
    this.entries.set(id, entry);
    parent?.children.add(id);
    return request;
  }

  get(id: string): TrackedRequest<S> | undefined {
    return this.entries.get(id)?.request;
  }

  /** The pending parent of a pending sub-request, if both are still tracked. */
  parentOf(id: string): TrackedRequest<S> | undefined {
    const parentId = this.entries.get(id)?.request.parentId;
    return parentId === undefined ? undefined : this.entries.get(parentId)?.request;
  }

  /** Pending sub-requests of `id`, oldest first. */
  /** Pending children of a request, counted without building a list (fan-outs ask often). */
  childCount(id: string): number {
    const entry = this.entries.get(id);
    if (!entry) return 0;
    let n = 0;
    for (const c of entry.children) if (this.entries.has(c)) n++;
    return n;
  }

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
    entry.onFinish?.(entry.request);
    return true;
  }

  /** Stops tracking a request without running any callback. */
  cancel(id: string): boolean {
    return this.remove(id) !== undefined;
  }

  /** Forgets everything without running callbacks; for shutdown. */
  clear(): void {
    for (const entry of this.entries.values()) {
      this.timers.clear(entry.timer);
      entry.request.finished = true;
    }
    this.entries.clear();
  }

  private expire(id: string): void {
    const entry = this.remove(id);
    if (!entry) return;
    entry.onTimeout?.(entry.request);
  }

  private remove(id: string): Entry<S> | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    this.timers.clear(entry.timer);
    entry.request.finished = true;
    if (entry.request.parentId !== undefined) {
      this.entries.get(entry.request.parentId)?.children.delete(id);
    }
    for (const child of entry.children) this.remove(child);
    return entry;
  }
}

/** Upstream's `Request::to_string`, used in tx log lines. */
export function requestToString(request: {
  id: string;
  parentId?: string;
  finished: boolean;
  results: readonly Result[];
}): string {
  const via = request.parentId !== undefined ? ` (via ${request.parentId})` : "";
  const status = request.finished ? "finished" : "pending";
  return `[request ${request.id}${via} ${status}, results: ${request.results.map(resultToString).join(", ")}]`;
}
