// Processes, ports and /proc readings for the benchmarks. Every process a benchmark starts
// runs in its own process group with its working directory inside the run's scratch
// directory, so teardown can reach whole trees and can prove that nothing was left behind.

import { fork, spawn, execFileSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, type WriteStream } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export { DAEMON_NODE_FLAGS } from "../../src/management/paths.js";
import { DAEMON_NODE_FLAGS } from "../../src/management/paths.js";
export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = join(REPO, "dist/cli/main.js");

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${errorMessage(last)}` : ""}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------
// Ports.

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/**
 * A run of `count` consecutive free ports for the controller's auto-assignment. Taken below
 * the kernel's ephemeral range so that outgoing connections made during the run cannot
 * grab one of them between the check and the node binding it.
 */
export async function freePortRange(count: number, taken: Set<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_000 - 20_000 - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = !taken.has(p) && (await bindable(p));
    if (ok) {
      for (let p = base; p < base + count; p++) taken.add(p);
      return base;
    }
  }
  throw new Error(`no run of ${count} free ports found`);
}

export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((res) => {
    const sock = createConnection({ port, host });
    sock.once("connect", () => {
      sock.destroy();
      res(true);
    });
    sock.once("error", () => res(false));
  });
}

/** Connects and returns the first line the server sends, or undefined if none comes. */
export function readLine(port: number, timeoutMs = 1000, host = "127.0.0.1"): Promise<string | undefined> {
  return new Promise((res) => {
    let buf = "";
    let settled = false;
    const done = (v: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      res(v);
    };
    const sock = createConnection({ port, host });
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) done(buf.slice(0, nl));
    });
    sock.once("error", () => done(undefined));
    sock.once("close", () => done(undefined));
  });
}

// ---------------------------------------------------------------------------------------
// /proc.

let clkTck: number | undefined;
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process in milliseconds, or undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface MemoryReading {
  rssKb: number;
  hwmKb: number;
  anonKb: number;
}

export function memory(pid: number): MemoryReading | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM"), anonKb: kb("RssAnon") };
  } catch {
    return undefined;
  }
}

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const p = Number(entry);
    const pp = ppidOf(p);
    if (pp === undefined) continue;
    const list = children.get(pp) ?? [];
    list.push(p);
    children.set(pp, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Samples a process's RSS in the background; `stop` returns the highest reading. */
export function sampleRss(pid: number, everyMs = 200): { stop(): number } {
  let max = memory(pid)?.rssKb ?? 0;
  const t = setInterval(() => {
    const m = memory(pid);
    if (m && m.rssKb > max) max = m.rssKb;
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      const m = memory(pid);
      if (m && m.rssKb > max) max = m.rssKb;
      return max;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Process groups.

export interface Proc {
  child: ChildProcess;
  pid: number;
  name: string;
  exited: Promise<void>;
  /** Output so far (kept in memory up to a bound, and written to a log file). */
  output(): string;
}

// Process-group kills and the sweep for leftovers are the test suite's own.
export { killGroup, pidAlive, processesUnder } from "../../test/helpers/cluster.js";
import { killGroup, processesUnder } from "../../test/helpers/cluster.js";
import { errorMessage } from "../../src/broker/errors.js";

const MAX_KEPT_OUTPUT = 256 * 1024;

function tsxLoader(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
}

/**
 * A scratch directory plus every process started in it. `close` stops the groups (SIGTERM,
 * then SIGKILL), kills anything else still working inside the directory and reports what
 * it had to kill the hard way, so a leak shows up in the report instead of on the machine.
 */
export class Scratch {
  private static readonly live = new Set<Scratch>();
  /** Every teardown that had to SIGKILL something, for the report. */
  static readonly forced: Array<{ dir: string; pids: number[] }> = [];
  readonly dir: string;
  private readonly procs: Proc[] = [];
  private logs: WriteStream[] = [];

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `zmgmt-bench-${prefix}-`));
    Scratch.live.add(this);
  }

  /** For an interrupted run: kill everything every open scratch directory holds, now. */
  static killAllNow(): void {
    for (const s of Scratch.live) {
      for (const p of s.procs) killGroup(p.pid, "SIGKILL");
      for (const pid of processesUnder(s.dir)) killGroup(pid, "SIGKILL");
      rmSync(s.dir, { recursive: true, force: true });
    }
    Scratch.live.clear();
  }

  spawn(
    name: string,
    command: string,
    args: string[],
    options: SpawnOptions & { onLine?: (line: string) => void; noLog?: boolean } = {},
  ): Proc {
    const { onLine, noLog, ...spawnOptions } = options;
    const child = spawn(command, args, {
      cwd: this.dir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...spawnOptions,
      env: { ...process.env, ...(spawnOptions.env ?? {}) },
    });
    return this.adopt(name, child, noLog, onLine);
  }

  private adopt(name: string, child: ChildProcess, noLog = false, onLine?: (line: string) => void): Proc {
    const log = noLog ? undefined : createWriteStream(join(this.dir, `${name}.out`));
    if (log) this.logs.push(log);
    let out = "";
    let pending = "";
    const onData = (d: Buffer): void => {
      const text = d.toString();
      log?.write(text);
      if (out.length < MAX_KEPT_OUTPUT) out += text;
      if (onLine) {
        pending += text;
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const exited = new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) res();
      else child.once("exit", () => res());
      child.once("error", () => res());
    });
    const proc: Proc = { child, pid: child.pid ?? -1, name, exited, output: () => out };
    this.procs.push(proc);
    return proc;
  }

  /**
   * Runs one of the benchmark's own TypeScript modules as a helper process with an IPC
   * channel (simulated agents, the echo server).
   */
  forkTs(name: string, modulePath: string, args: string[] = []): Proc {
    const child = fork(modulePath, args, {
      cwd: this.dir,
      detached: true,
      execArgv: ["--import", tsxLoader()],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    return this.adopt(name, child);
  }

  spawnCli(
    name: string,
    args: string[],
    options: { env?: Record<string, string>; nodeArgs?: string[]; onLine?: (line: string) => void } = {},
  ): Proc {
    // The daemons' heap flags, as the zmgmt launcher (bin/zmgmt.js) and a supervisor give them.
    const flags = args[0] === "node" ? [] : DAEMON_NODE_FLAGS;
    return this.spawn(name, process.execPath, [...flags, ...(options.nodeArgs ?? []), CLI, ...args], {
      ...(options.env ? { env: options.env } : {}),
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
  }

  /** Stops one process group and waits (bounded) for its leader to exit. */
  async stop(proc: Proc, signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<void> {
    killGroup(proc.pid, signal);
    const done = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) killGroup(proc.pid, "SIGKILL");
    await Promise.race([proc.exited, sleep(2000)]);
  }

  /** Returns the pids that had to be killed after the polite round (should be empty). */
  async close(keep = false): Promise<number[]> {
    for (const p of this.procs) killGroup(p.pid, "SIGTERM");
    await Promise.race([Promise.all(this.procs.map((p) => p.exited)), sleep(20_000)]);
    const stragglers: number[] = [];
    for (const p of this.procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) stragglers.push(p.pid);
      killGroup(p.pid, "SIGKILL");
    }
    // Children that left their parent's group (nodes, daemons) but still run in here.
    await sleep(200);
    for (const pid of processesUnder(this.dir)) {
      stragglers.push(pid);
      killGroup(pid, "SIGKILL");
    }
    await sleep(100);
    const left = processesUnder(this.dir);
    if (stragglers.length) Scratch.forced.push({ dir: this.dir, pids: stragglers });
    if (left.length) throw new Error(`processes survived teardown of ${this.dir}: ${left.join(", ")}`);
    for (const l of this.logs) l.end();
    this.logs = [];
    if (!keep) {
      rmSync(this.dir, { recursive: true, force: true });
      Scratch.live.delete(this);
    }
    return stragglers;
  }
}

// ---------------------------------------------------------------------------------------
// Statistics.

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles; values rounded to 0.01. */
export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const pct = (p: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  const r = (v: number): number => Math.round(v * 100) / 100;
  return {
    n,
    min: r(s[0]!),
    p50: r(pct(50)),
    p90: r(pct(90)),
    p99: r(pct(99)),
    max: r(s[n - 1]!),
    mean: r(s.reduce((a, b) => a + b, 0) / n),
  };
}

export const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * 95% bootstrap interval of median(a) − median(b). An interval that contains 0 means the
 * two sets of samples do not tell the medians apart. Seeded, so reruns on the same
 * samples give the same interval.
 */
export function medianDiffInterval(a: number[], b: number[], rounds = 2000): { low: number; high: number } {
  let seed = 0x2545f491;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const resample = (xs: number[]): number[] => xs.map(() => xs[Math.floor(rand() * xs.length)]!);
  const diffs: number[] = [];
  for (let i = 0; i < rounds; i++) diffs.push(median(resample(a)) - median(resample(b)));
  diffs.sort((x, y) => x - y);
  return { low: round(diffs[Math.floor(rounds * 0.025)]!, 1), high: round(diffs[Math.floor(rounds * 0.975)]!, 1) };
}
