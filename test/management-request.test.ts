import { describe, expect, it } from "vitest";
import {
  DuplicateRequestError,
  RequestError,
  RequestTracker,
  UnknownParentError,
  hasKind,
  requestToString,
  type Timers,
  type TrackedRequest,
} from "../src/management/request.js";
import { makeResult } from "../src/management/records.js";

/** A clock that only moves when the test says so. */
class ManualTimers implements Timers {
  private now = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; callback: () => void }>();

  set(callback: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.now + ms, callback });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get scheduled(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > this.now || !this.pending.has(id)) continue;
      this.pending.delete(id);
      t.callback();
    }
  }
}

function tracker(timeoutMs = 1000) {
  const timers = new ManualTimers();
  let n = 0;
  return { timers, requests: new RequestTracker<string>({ timeoutMs, timers, newId: () => `id-${++n}` }) };
}

describe("request tracker", () => {
  it("keeps client-chosen ids, generates others, and rejects a pending duplicate", () => {
    const { requests } = tracker();
    expect(requests.create({ id: "client-1", state: "x" }).id).toBe("client-1");
    expect(requests.create({ state: "y" }).id).toBe("id-1");
    expect(() => requests.create({ id: "client-1", state: "z" })).toThrow(DuplicateRequestError);
    expect(() => requests.create({ parentId: "nope", state: "z" })).toThrow(UnknownParentError);
    expect(requests.size).toBe(2);
  });

  it("finishing runs the finish callback once and cancels the timer", () => {
    const { timers, requests } = tracker();
    const finished: string[] = [];
    const timedOut: string[] = [];
    requests.create({ id: "r", state: "s", onFinish: (r) => finished.push(r.id), onTimeout: (r) => timedOut.push(r.id) });
    expect(requests.finish("r")).toBe(true);
    expect(requests.finish("r")).toBe(false);
    expect(timers.scheduled).toBe(0);
    timers.advance(5000);
    expect(finished).toEqual(["r"]);
    expect(timedOut).toEqual([]);
    expect(requests.get("r")).toBeUndefined();
  });

  it("times each request out on its own timer, after exactly its timeout", () => {
    const { timers, requests } = tracker(1000);
    const timedOut: string[] = [];
    requests.create({ id: "a", state: "s", onTimeout: (r) => timedOut.push(r.id) });
    timers.advance(500);
    requests.create({ id: "b", state: "s", onTimeout: (r) => timedOut.push(r.id), timeoutMs: 200 });
    requests.create({ id: "c", state: "s", onTimeout: (r) => timedOut.push(r.id) });
    timers.advance(200);
    expect(timedOut).toEqual(["b"]);
    timers.advance(299);
    expect(timedOut).toEqual(["b"]);
    timers.advance(1);
    expect(timedOut).toEqual(["b", "a"]);
    expect(requests.get("a")).toBeUndefined();
    timers.advance(500);
    expect(timedOut).toEqual(["b", "a", "c"]);
    expect(requests.size).toBe(0);
  });

  it("drops pending children with their parent, so late child answers find nothing", () => {
    const { timers, requests } = tracker();
    const parent = requests.create({ id: "p", state: "parent", onTimeout: () => undefined });
    const childTimeouts: string[] = [];
    const c1 = requests.create({ parentId: "p", state: "child", onTimeout: (r) => childTimeouts.push(r.id) });
    const c2 = requests.create({ parentId: "p", state: "child", onTimeout: (r) => childTimeouts.push(r.id) });
    expect(requests.childrenOf("p").map((r) => r.id)).toEqual([c1.id, c2.id]);
    expect(requests.parentOf(c1.id)).toBe(parent);

    expect(requests.finish(c1.id)).toBe(true);
    expect(requests.childrenOf("p").map((r) => r.id)).toEqual([c2.id]);

    timers.advance(1000);
    expect(requests.get("p")).toBeUndefined();
    expect(requests.get(c2.id)).toBeUndefined();
    expect(c2.finished).toBe(true);
    // The child went with its parent: it neither times out on its own nor can be finished.
    expect(childTimeouts).toEqual([]);
    expect(requests.finish(c2.id)).toBe(false);
    expect(requests.size).toBe(0);
  });

  it("cancel and clear forget requests without running callbacks", () => {
    const { timers, requests } = tracker();
    const calls: string[] = [];
    const cb = { onFinish: () => calls.push("finish"), onTimeout: () => calls.push("timeout") };
    requests.create({ id: "a", state: "s", ...cb });
    requests.create({ id: "b", state: "s", ...cb });
    expect(requests.cancel("a")).toBe(true);
    requests.clear();
    timers.advance(10_000);
    expect(calls).toEqual([]);
    expect(timers.scheduled).toBe(0);
  });

  it("renders requests the way upstream's to_string does", () => {
    const text = requestToString({
      id: "c1",
      parentId: "p1",
      finished: false,
      results: [makeResult("c1", { instance: "i1", node: "n1" }), makeResult("c1", { success: false, error: "boom" })],
    });
    expect(text).toBe("[request c1 (via p1) pending, results: success (reqid c1, instance i1, node n1), error (boom) (reqid c1)]");
  });

  it("gives its errors stable codes", () => {
    const { requests } = tracker();
    requests.create({ id: "a", state: "s" });
    const duplicate = (() => {
      try {
        requests.create({ id: "a", state: "s" });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(duplicate).toBeInstanceOf(RequestError);
    expect((duplicate as RequestError).code).toBe("duplicate_request");
    expect(() => requests.create({ parentId: "b", state: "s" })).toThrow(
      expect.objectContaining({ code: "unknown_parent", parentId: "b" }),
    );
  });
});

// The shape a role's requests take: one state member per request kind.
type Pending =
  | { kind: "deploy"; waiting: Set<string>; failures: Map<string, string> }
  | { kind: "restart"; waiting: Set<string> }
  | { kind: "dispatch"; parentReqid: string; waiting: Set<string> };

describe("request tracker with a state union", () => {
  function kinds(timeoutMs = 1000) {
    const timers = new ManualTimers();
    const timedOut: string[] = [];
    let n = 0;
    const requests = new RequestTracker<Pending>({
      timeoutMs,
      timers,
      newId: () => `id-${++n}`,
      onTimeout: (r) => timedOut.push(`${r.state.kind} ${r.id}`),
    });
    return { timers, timedOut, requests };
  }

  it("looks requests up by id and kind, and narrows the state", () => {
    const { requests } = kinds();
    const deploy = requests.create({ id: "d", state: { kind: "deploy", waiting: new Set(["a", "b"]), failures: new Map() } });
    // create keeps the narrow type: no lookup or cast is needed for the caller's own request.
    deploy.state.failures.set("a", "boom");
    requests.create({ id: "r", state: { kind: "restart", waiting: new Set(["a"]) } });

    expect(requests.getOfKind("d", "restart")).toBeUndefined();
    expect(requests.getOfKind("nope", "deploy")).toBeUndefined();
    const found = requests.getOfKind("d", "deploy");
    expect(found).toBe(deploy);
    expect(found?.state.failures.get("a")).toBe("boom");

    const any: TrackedRequest<Pending> | undefined = requests.get("r");
    expect(any && hasKind(any, "restart") ? [...any.state.waiting] : []).toEqual(["a"]);
    expect(any && hasKind(any, "deploy")).toBe(false);
  });

  it("sends every timeout without a callback of its own down the tracker's one timeout path", () => {
    const { timers, timedOut, requests } = kinds(1000);
    const own: string[] = [];
    requests.create({ id: "d", state: { kind: "deploy", waiting: new Set(), failures: new Map() } });
    requests.create({ id: "r", state: { kind: "restart", waiting: new Set() }, timeoutMs: 300 });
    requests.create({
      state: { kind: "dispatch", parentReqid: "x", waiting: new Set() },
      onTimeout: (r) => own.push(r.state.parentReqid),
    });
    timers.advance(299);
    expect(timedOut).toEqual([]);
    timers.advance(1);
    expect(timedOut).toEqual(["restart r"]);
    timers.advance(700);
    expect(timedOut).toEqual(["restart r", "deploy d"]);
    expect(own).toEqual(["x"]);
    expect(requests.size).toBe(0);
    expect(timers.scheduled).toBe(0);
  });

  it("finishes a request once its last awaited party answered, and ignores late answers", () => {
    const { timers, timedOut, requests } = kinds(1000);
    const answered: string[][] = [];
    const restart = requests.create({
      id: "r",
      state: { kind: "restart", waiting: new Set(["w1", "w2"]) },
      onFinish: (r) => answered.push(r.results.map((x) => x.node ?? "")),
    });
    const answer = (reqid: string, node: string): boolean => {
      const pending = requests.getOfKind(reqid, "restart");
      if (!pending || !pending.state.waiting.delete(node)) return false;
      pending.results.push(makeResult(reqid, { node }));
      if (pending.state.waiting.size === 0) requests.finish(reqid);
      return true;
    };
    expect(answer("r", "w2")).toBe(true);
    expect(answer("r", "w2")).toBe(false);
    expect(restart.finished).toBe(false);
    expect(answer("r", "w1")).toBe(true);
    expect(restart.finished).toBe(true);
    expect(answered).toEqual([["w2", "w1"]]);
    expect(answer("r", "w1")).toBe(false);
    timers.advance(5000);
    expect(timedOut).toEqual([]);
  });

  it("counts a parent's pending children as they finish, time out with it or are cancelled", () => {
    const { timers, timedOut, requests } = kinds(1000);
    requests.create({ id: "p", state: { kind: "restart", waiting: new Set() } });
    const child = () => requests.create({ parentId: "p", state: { kind: "dispatch", parentReqid: "p", waiting: new Set() } });
    const [a, b, c] = [child(), child(), child()];
    expect(requests.childCount("p")).toBe(3);
    requests.finish(a.id);
    requests.cancel(b.id);
    expect(requests.childCount("p")).toBe(1);
    expect(requests.childrenOf("p")).toEqual([c]);
    expect(requests.childCount("unknown")).toBe(0);
    timers.advance(1000);
    // Only the parent times out; its child goes with it silently.
    expect(timedOut).toEqual(["restart p"]);
    expect(c.finished).toBe(true);
    expect(requests.pending()).toEqual([]);
  });
});
