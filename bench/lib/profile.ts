// Summaries of V8 profiles (`node --cpu-prof` / `--heap-prof` output): the functions and
// modules that take the time or hold the memory, small enough to print in a report.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, round } from "./proc.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  fn: string;
  where: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ModuleCost {
  module: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  process: string;
  file: string;
  wallMs: number;
  /** Sampled time outside (idle) / (program) / (garbage collector) counts as CPU too. */
  busyMs: number;
  idleMs: number;
  gcMs: number;
  top: FunctionCost[];
  modules: ModuleCost[];
}

function shortUrl(url: string): string {
  if (!url) return "";
  let u = url.replace(/^file:\/\//, "");
  if (u.startsWith(REPO)) u = u.slice(REPO.length + 1);
  return u;
}

/** The module a frame belongs to: a package, a project file, node's internals, or V8. */
function moduleOf(frame: CallFrame): string {
  const u = shortUrl(frame.url);
  if (!u) return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (pkg) return `npm:${pkg[1]}`;
  if (u.startsWith("node:")) return u.split("/").slice(0, 2).join("/");
  return u;
}

function frameKey(frame: CallFrame): string {
  return `${frame.functionName || "(anonymous)"}\u0000${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Now on the clock V8 stamps profile samples with (CLOCK_MONOTONIC, as hrtime), in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface Window {
  fromUs: number;
  toUs: number;
}

/**
 * `window` (from monotonicUs(), taken in any process: the clock is system-wide) keeps only
 * the samples of one phase, e.g. the measured requests and not the process's start-up.
 */
export function summarizeCpuProfile(file: string, processName: string, window?: Window, topN = 15): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let ts = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    const delta = prof.timeDeltas[i] ?? 0;
    ts += delta;
    if (window && (ts < window.fromUs || ts > window.toUs)) continue;
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const modules = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let sampled = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    sampled += us;
    const f = node.callFrame;
    if (f.functionName === "(idle)") {
      idle += us;
      continue;
    }
    if (f.functionName === "(garbage collector)") gc += us;
    const key = frameKey(f);
    self.set(key, (self.get(key) ?? 0) + us);
    const mod = moduleOf(f);
    modules.set(mod, (modules.get(mod) ?? 0) + us);
    // Inclusive time: charge every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = frameKey(byId.get(cur)!.callFrame);
      if (k.startsWith("(root)")) continue;
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const busy = sampled - idle;
  const ms = (us: number): number => round(us / 1000, 1);
  const pct = (us: number): number => (busy > 0 ? round((us / busy) * 100, 1) : 0);
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k, us]) => {
      const [fn, where] = k.split("\u0000") as [string, string];
      const t = total.get(k) ?? us;
      return { fn, where, selfMs: ms(us), selfPct: pct(us), totalMs: ms(t), totalPct: pct(t) };
    });
  const mods = [...modules.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([module, us]) => ({ module, selfMs: ms(us), pct: pct(us) }));
  return {
    process: processName,
    file: shortUrl(file),
    wallMs: round(
      (window ? Math.min(window.toUs, prof.endTime) - Math.max(window.fromUs, prof.startTime) : prof.endTime - prof.startTime) / 1000,
      1,
    ),
    busyMs: ms(busy),
    idleMs: ms(idle),
    gcMs: ms(gc),
    top,
    modules: mods,
  };
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children?: HeapNode[];
}

export interface HeapSummary {
  process: string;
  file: string;
  /** Bytes still allocated when the profile stopped (sampled estimate). */
  liveMb: number;
  top: Array<{ fn: string; where: string; mb: number; pct: number }>;
  modules: Array<{ module: string; mb: number; pct: number }>;
}

/** `--heap-prof` output: sampled allocations still alive at exit, by allocation site. */
export function summarizeHeapProfile(file: string, processName: string, topN = 12): HeapSummary {
  const prof = JSON.parse(readFileSync(file, "utf8")) as { head: HeapNode };
  const sites = new Map<string, number>();
  const modules = new Map<string, number>();
  let totalBytes = 0;
  const stack: HeapNode[] = [prof.head];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.selfSize > 0) {
      totalBytes += n.selfSize;
      const k = frameKey(n.callFrame);
      sites.set(k, (sites.get(k) ?? 0) + n.selfSize);
      const m = moduleOf(n.callFrame);
      modules.set(m, (modules.get(m) ?? 0) + n.selfSize);
    }
    stack.push(...(n.children ?? []));
  }
  const mbOf = (b: number): number => round(b / 1024 / 1024, 2);
  const pct = (b: number): number => (totalBytes > 0 ? round((b / totalBytes) * 100, 1) : 0);
  return {
    process: processName,
    file: shortUrl(file),
    liveMb: mbOf(totalBytes),
    top: [...sites.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, b]) => {
        const [fn, where] = k.split("\u0000") as [string, string];
        return { fn, where, mb: mbOf(b), pct: pct(b) };
      }),
    modules: [...modules.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([module, b]) => ({ module, mb: mbOf(b), pct: pct(b) })),
  };
}

/** Profile files in `dir` with the given extension, newest last. */
export function profilesIn(dir: string, ext: ".cpuprofile" | ".heapprofile"): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(ext))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** The pid in a default profile file name (CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile). */
export function profilePid(file: string): number | undefined {
  const m = /\.(\d+)\.\d+\.\d+\.(?:cpu|heap)profile$/.exec(file);
  return m ? Number(m[1]) : undefined;
}
