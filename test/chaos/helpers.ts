// Shared tools of the fault-injection suite: clusters of real processes, a view of which
// node processes are really alive (from /proc, not from what the agents claim), a TCP
// proxy that can cut or blackhole the controller–agent link, and a check that every
// client request ends in an answer or a typed error rather than hanging.

import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { expect } from "vitest";
import { ProtocolError } from "../../src/broker/errors.js";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../../src/client/controller-client.js";
import type { Configuration, Node, NodeStatus } from "../../src/management/types.js";
import { TestEnv, freePort } from "../helpers/cluster.js";
import { eventually } from "../helpers/ws.js";

export { CLI, TestEnv, freePort, pidAlive } from "../helpers/cluster.js";
export { eventually } from "../helpers/ws.js";

/** Loaded into every chaos node: records starts, optionally delays check-in and stop. */
export const CHAOS_NODE_SCRIPT = resolve(import.meta.dirname, "fixtures/chaos-node.mjs");

/**
 * Fast revival and a short stop escalation keep each scenario within seconds; the request
 * timeout is generous because a loaded machine can take seconds to boot a node.
 */
export const AGENT_ARGS = ["--request-timeout", "10", "--restart-delay", "0.2", "--stop-timeout", "3"];

export function chaosNode(name: string, instance: string, role: Node["role"], env: Record<string, string> = {}): Node {
  return { name, instance, role, state: "RUNNING", env, scripts: [CHAOS_NODE_SCRIPT] };
}

export function config(nodes: Node[], instances: string[]): Configuration {
  return { id: randomUUID(), instances: instances.map((name) => ({ name, host: "0.0.0.0" })), nodes };
}

// ---------------------------------------------------------------------------------------
// What really runs, according to the kernel.

interface ProcInfo {
  pid: number;
  env: Map<string, string>;
  cwd: string;
}

function readEnviron(pid: string): Map<string, string> | undefined {
  try {
    // A zombie has an empty environ; it is dead for our purposes.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (/^\d+ \(.*\) Z /s.test(stat)) return undefined;
    const env = new Map<string, string>();
    for (const kv of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
      const eq = kv.indexOf("=");
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    return env;
  } catch {
    return undefined;
  }
}

/** Live (non-zombie) processes whose working directory is inside `dir`. */
export function processesIn(dir: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== dir && !cwd.startsWith(`${dir}/`)) continue;
    const env = readEnviron(entry);
    if (env) out.push({ pid: Number(entry), env, cwd });
  }
  return out;
}

/** Live processes per cluster node name (every node process carries CLUSTER_NODE). */
export function livePids(dir: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const p of processesIn(dir)) {
    const name = p.env.get("CLUSTER_NODE");
    if (name === undefined) continue;
    out.set(name, [...(out.get(name) ?? []), p.pid]);
  }
  return out;
}

/** The agent process (the supervisor's child) of instance `name`. */
export function agentPid(dir: string, name: string): number | undefined {
  return processesIn(dir).find(
    (p) =>
      p.env.get("ZEEK_MANAGEMENT_NODE") === "AGENT" && (p.env.get("ZMGMT_AGENT_OPTIONS") ?? "").includes(`"name":${JSON.stringify(name)}`),
  )?.pid;
}

/** Every pid a node was ever started with, in order (the chaos node script logs them). */
export function starts(stateDir: string, node: string): number[] {
  try {
    return readFileSync(join(stateDir, "nodes", node, "starts"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Fails unless every named node has exactly one live process; returns those pids. */
export function expectOneProcessEach(dir: string, names: string[]): Map<string, number> {
  const live = livePids(dir);
  const counts = Object.fromEntries(names.map((n) => [n, live.get(n)?.length ?? 0]));
  expect(counts).toEqual(Object.fromEntries(names.map((n) => [n, 1])));
  // Nothing else may be running under a cluster node's name either.
  expect([...live.keys()].sort()).toEqual([...names].sort());
  return new Map(names.map((n) => [n, live.get(n)![0]!]));
}

/** Waits until a node has a live process other than `not`; polls fast so kills can land early. */
export async function waitForProcess(dir: string, node: string, not: number[] = [], timeoutMs = 15_000): Promise<number> {
  return eventually(() => (livePids(dir).get(node) ?? []).find((p) => !not.includes(p)), timeoutMs, `a new process for node ${node}`);
}

export function kill9(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------
// Client requests: each ends in an answer or a typed error, never in silence.

export type Answer<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

/**
 * Awaits a client request. Resolving is an answer; rejecting is acceptable only as the
 * client's own timeout or a disconnect, both typed. Anything still open after `boundMs`
 * (which must exceed the client timeout) fails the test.
 */
export async function answered<T>(request: Promise<T>, boundMs: number, what: string): Promise<Answer<T>> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} was neither answered nor failed within ${boundMs} ms`)), boundMs);
  });
  try {
    return { ok: true, value: await Promise.race([request, bound]) };
  } catch (err) {
    if (err instanceof ProtocolError && (err.code === "request_timeout" || err.code === "disconnected")) return { ok: false, error: err };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------
// Clusters.

export type NodeView = NodeStatus & { instance: string };

/** A client on the controller at `port`, remembered in `clients` for teardown. */
export async function connectClient(port: number, clients: ControllerClient[], requestTimeoutMs = 12_000): Promise<ControllerClient> {
  const c = await ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs });
  clients.push(c);
  return c;
}

export async function nodeStates(client: ControllerClient): Promise<Map<string, NodeView>> {
  const out = new Map<string, NodeView>();
  for (const r of await client.getNodes()) {
    for (const s of resultNodeStatuses(r) ?? []) if (s.mgmtRole === "NONE") out.set(s.node, { ...s, instance: r.instance! });
  }
  return out;
}

/** get_nodes, polled until exactly these nodes are RUNNING with a pid (and `accept` agrees). */
export async function allRunning(
  client: ControllerClient,
  names: string[],
  accept: (m: Map<string, NodeView>) => boolean = () => true,
  timeoutMs = 25_000,
): Promise<Map<string, NodeView>> {
  return eventually(
    async () => {
      const m = await nodeStates(client);
      const ok = m.size === names.length && names.every((n) => m.get(n)?.state === "RUNNING" && m.get(n)?.pid !== undefined);
      return ok && accept(m) ? m : undefined;
    },
    timeoutMs,
    `nodes ${names.join(", ")} RUNNING`,
  );
}

export async function waitInstances(client: ControllerClient, names: string[], timeoutMs = 20_000): Promise<void> {
  await eventually(
    async () => {
      const have = (resultInstances(await client.getInstances()) ?? []).map((i) => i.name).sort();
      return JSON.stringify(have) === JSON.stringify([...names].sort());
    },
    timeoutMs,
    `instances ${names.join(", ")} connected`,
  );
}

export interface AgentHandle {
  name: string;
  port: number;
  stateDir: string;
  /** The supervisor (`zmgmt agent`) process. */
  supervisorPid: number;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/**
 * The first of `n` consecutive free ports below the kernel's ephemeral range: ports the
 * controller auto-assigns from an ephemeral start can be taken by any outgoing connection
 * before a node binds them.
 */
export async function freePortBlock(n: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    let ok = true;
    for (let p = base; ok && p < base + n; p++) ok = await portFree(p);
    if (ok) return base;
  }
}

/** A controller plus agents dialing it (directly, or at `controllerPortFor(name)`). */
export async function startCluster(
  env: TestEnv,
  names: string[],
  opts: { controllerTimeoutSec?: number; controllerPort?: number; agentArgs?: string[]; controllerPortFor?: (name: string) => number } = {},
): Promise<{ controllerPort: number; controllerPid: number; agents: Map<string, AgentHandle> }> {
  const port = opts.controllerPort ?? (await freePort());
  const block = await freePortBlock(32);
  env.brokerStartPort = block;
  env.metricsStartPort = block + 16;
  const controller = await env.startController({ requestTimeoutSec: opts.controllerTimeoutSec ?? 8, port });
  const agents = new Map<string, AgentHandle>();
  for (const name of names) {
    const a = await env.startAgent({
      name,
      controllerPort: opts.controllerPortFor?.(name) ?? port,
      extraArgs: opts.agentArgs ?? AGENT_ARGS,
    });
    agents.set(name, { name, port: a.port, stateDir: a.stateDir, supervisorPid: a.proc.pid });
  }
  return { controllerPort: port, controllerPid: controller.proc.pid, agents };
}

// ---------------------------------------------------------------------------------------
// A controllable TCP proxy between agents and the controller.

export type ProxyMode = "pass" | "refuse" | "blackhole";
export type Direction = "up" | "down";

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

/**
 * Forwards connections to 127.0.0.1:`target`. "refuse" resets new connections at once;
 * "blackhole" swallows all data in both directions and hides closes, as a dead route
 * would. `sever()` resets every connection passing through.
 */
export class ChaosProxy {
  readonly attempts: number[] = [];
  private mode: ProxyMode = "pass";
  private readonly pairs = new Set<Pair>();
  private tripwire: { dir: Direction; match: string; deliver: boolean; fired: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: number,
  ) {}

  static async start(target: number): Promise<ChaosProxy> {
    const server = createServer();
    const port = await new Promise<number>((res, rej) => {
      server.once("error", rej);
      server.listen(0, "127.0.0.1", () => res((server.address() as { port: number }).port));
    });
    const proxy = new ChaosProxy(server, port, target);
    server.on("connection", (s) => proxy.accept(s));
    return proxy;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
  }

  /** Resets every connection now; new ones follow the current mode. */
  sever(): void {
    for (const p of [...this.pairs]) this.drop(p);
  }

  /**
   * Severs when a chunk containing `match` passes in `dir`: after delivering it, or instead
   * (the link dies with it in flight). Only "down" (controller to agent) is readable:
   * WebSocket clients mask what they send.
   */
  severOn(dir: Direction, match: string, deliver: boolean): Promise<void> {
    return new Promise((resolve) => {
      this.tripwire = {
        dir,
        match,
        deliver,
        fired: () => {
          this.sever();
          resolve();
        },
      };
    });
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise<void>((res) => this.server.close(() => res()));
  }

  private accept(client: Socket): void {
    this.attempts.push(Date.now());
    client.on("error", () => undefined);
    if (this.mode === "refuse") {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.on("close", () => {
      if (this.mode !== "blackhole") this.drop(pair);
    });
    if (this.mode === "blackhole") {
      // A connection into a dead route: nothing ever comes back.
      client.on("data", () => undefined);
      return;
    }
    const upstream = createConnection({ host: "127.0.0.1", port: this.target });
    pair.upstream = upstream;
    upstream.on("error", () => undefined);
    upstream.on("close", () => {
      if (this.mode !== "blackhole") this.drop(pair);
    });
    this.forward(client, upstream, "up");
    this.forward(upstream, client, "down");
  }

  private forward(from: Socket, to: Socket, dir: Direction): void {
    from.on("data", (chunk: Buffer) => {
      if (this.mode === "blackhole") return;
      if (to.destroyed) {
        // The far end went away while the route was dead: the first packet that gets
        // through again is answered with a reset, as a real stack would.
        this.drop(this.pairOf(from));
        return;
      }
      const t = this.tripwire;
      if (t && t.dir === dir && chunk.includes(t.match)) {
        this.tripwire = undefined;
        // Give the receiver a moment to read the chunk: a reset can discard unread data.
        if (t.deliver) to.write(chunk, () => setTimeout(t.fired, 50));
        else t.fired();
      } else {
        to.write(chunk);
      }
    });
  }

  private pairOf(s: Socket): Pair | undefined {
    for (const p of this.pairs) if (p.client === s || p.upstream === s) return p;
    return undefined;
  }

  private drop(p: Pair | undefined): void {
    if (!p) return;
    this.pairs.delete(p);
    if (!p.client.destroyed) p.client.resetAndDestroy();
    if (p.upstream && !p.upstream.destroyed) p.upstream.resetAndDestroy();
  }
}
