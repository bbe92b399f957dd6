// Deploy latency of real Zeek clusters (1 manager, 1 logger, 2 proxies, N workers, one
// host), three ways in the same run and with the same configurations:
//   floor    the same zeek commands started directly, all at once, until each listens;
//   upstream Zeek's own Management Framework from the same Zeek build (`zeek -j` running
//            its controller, agent and supervisor), driven by the stock zeek-client;
//   zmgmt    our controller and an agent running real Zeek nodes (`zmgmt agent --zeek`),
//            driven by the same zeek-client requests.
// Both managed variants are timed from the client's deploy request to its response, which
// both frameworks send once every node has checked in (RUNNING); get-nodes confirms it.

import { DEFAULT_DEPLOY_CHECK_DELAY_MS } from "../src/controller/api.js";
import { execFileSync, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { startAgent, startController } from "./lib/cluster.js";
import type { Logf } from "./lib/log.js";
import {
  CLI,
  REPO,
  canConnect,
  descendants,
  freePort,
  freePortRange,
  killGroup,
  medianDiffInterval,
  memory,
  round,
  Scratch,
  sleep,
  summarize,
  waitFor,
  type Proc,
  type Summary,
} from "./lib/proc.js";
import type { TargetResult } from "./lib/report.js";

export const ZEEK_DEPLOY_TARGET_ID = "zeek-deploy-vs-upstream";

export interface ZeekDeployOptions {
  workers: number[];
  iterations: (workers: number) => number;
  /** `--zeek PATH` from the command line; otherwise ZEEK, PATH, then the repository's sibling build. */
  zeek?: string;
  /** Workers capture `lo` (root only); by default they run without an interface. */
  captureLo: boolean;
}

export interface ZeekDeployCase {
  workers: number;
  nodes: number;
  floorMs: Summary;
  upstreamMs?: Summary;
  zmgmtMs?: Summary;
  /** The whole zeek-client process (Python start-up, staging, deploy, exit), for scale. */
  upstreamClientMs?: Summary;
  zmgmtClientMs?: Summary;
  /** The stage_configuration round trip that deploy-config makes first. */
  upstreamStageMs?: Summary;
  zmgmtStageMs?: Summary;
  ratios: { upstreamToFloor?: number; zmgmtToFloor?: number; zmgmtToUpstream?: number };
  /** 95% bootstrap interval of median(zmgmt) − median(upstream), ms. */
  zmgmtMinusUpstreamP50Ms?: { low: number; high: number };
  samples: { floorMs: number[]; upstreamMs: number[]; zmgmtMs: number[] };
  /** Deploys that failed or did not answer in time; they count as no sample. */
  failures: Array<{ plane: "floor" | "upstream" | "zmgmt"; run: number; error: string }>;
}

export interface ZeekDeployReport {
  /** Why the section did not run (no Zeek, no client, no python3). */
  skipped?: string;
  /** Why the zmgmt variant was not measured while the others were. */
  zmgmtPending?: string;
  measuredAt: string;
  mode: "full" | "quick";
  zeek?: { path: string; version: string };
  client?: { path: string; version: string };
  workerInterface: string;
  nodeScripts: string[];
  cases: ZeekDeployCase[];
  /** 1-minute load average when the section started and ended. */
  loadAvg: { start: number; end?: number };
  /** RSS of each management plane with no nodes (everything but the cluster nodes), MB. */
  controlPlaneRssMb: { upstream?: number; zmgmt?: number };
  notes: string[];
}

// ---------------------------------------------------------------------------------------
// Locating the programs.

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const d of (process.env["PATH"] ?? "").split(delimiter)) {
    if (d && executable(join(d, name))) return join(d, name);
  }
  return undefined;
}

/** `--zeek`, then ZEEK, then `zeek` on PATH, then ../shared/zeek next to the repository. */
export function locateZeek(flag?: string): { path?: string; tried: string[] } {
  const tried: string[] = [];
  const candidates: Array<[string, string | undefined]> = [
    ["--zeek", flag],
    ["ZEEK", process.env["ZEEK"]],
    ["PATH", onPath("zeek")],
    ["../shared/zeek", resolve(REPO, "../shared/zeek/bin/zeek")],
  ];
  for (const [from, p] of candidates) {
    if (!p) continue;
    tried.push(`${from}: ${p}`);
    if (executable(p)) return { path: resolve(p), tried };
    // A Zeek named explicitly is the one to measure, not a fallback.
    if (from === "--zeek" || from === "ZEEK") return { tried };
  }
  return { tried };
}

/** ZEEK_CLIENT, then the one installed beside zeek, then PATH, then ../shared/zeek-client. */
function locateClient(zeek: string): string | undefined {
  const candidates = [
    process.env["ZEEK_CLIENT"],
    join(dirname(zeek), "zeek-client"),
    onPath("zeek-client"),
    resolve(REPO, "../shared/zeek-client/zeek-client"),
  ];
  return candidates.find((p): p is string => !!p && executable(p));
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

/** Whether this build's agent can run real Zeek nodes; the reason when it cannot. */
function zmgmtZeekSupport(): string | undefined {
  const help = run(process.execPath, [CLI, "agent", "--help"]) ?? "";
  return /--zeek\b/.test(help) ? undefined : "this build's `zmgmt agent` has no --zeek option yet (real Zeek nodes not available)";
}

// ---------------------------------------------------------------------------------------
// The cluster: one configuration rendered three ways (zeek-client INI, Zeek cluster layout,
// floor commands).

const INSTANCE = "host-1";
/** Loaded by every node in all three variants, so that each starts the same Zeek. */
const NODE_SCRIPTS = ["local"];
/** Far above any deploy that works (upstream: 4.6 s for 20 nodes on an idle 2-core host). */
const DEPLOY_TIMEOUT_MS = 180_000;
const TIMED_CLIENT = join(import.meta.dirname, "helpers/zeek-client-timed.py");

interface ZeekNode {
  name: string;
  role: "manager" | "logger" | "proxy" | "worker";
  port?: number;
  metricsPort: number;
  iface?: string;
}

async function clusterNodes(workers: number, iface: string | undefined, taken: Set<number>): Promise<ZeekNode[]> {
  const base = await freePortRange(4, taken);
  const metrics = await freePortRange(workers + 4, taken);
  const nodes: ZeekNode[] = [
    { name: "manager", role: "manager", port: base, metricsPort: metrics },
    { name: "logger-01", role: "logger", port: base + 1, metricsPort: metrics + 1 },
    { name: "proxy-01", role: "proxy", port: base + 2, metricsPort: metrics + 2 },
    { name: "proxy-02", role: "proxy", port: base + 3, metricsPort: metrics + 3 },
  ];
  for (let w = 0; w < workers; w++) {
    nodes.push({
      name: `worker-${String(w + 1).padStart(2, "0")}`,
      role: "worker",
      metricsPort: metrics + 4 + w,
      ...(iface ? { iface } : {}),
    });
  }
  return nodes;
}

function iniOf(nodes: ZeekNode[]): string {
  const out = ["[instances]", INSTANCE, ""];
  for (const n of nodes) {
    out.push(`[${n.name}]`, `instance = ${INSTANCE}`, `role = ${n.role}`);
    if (n.port !== undefined) out.push(`port = ${n.port}`);
    out.push(`metrics_port = ${n.metricsPort}`);
    if (n.iface) out.push(`interface = ${n.iface}`);
    out.push(`scripts = ${NODE_SCRIPTS.join(" ")}`, "");
  }
  return out.join("\n");
}

/** `Cluster::nodes` as Zeek's own layout generator writes it. */
function layoutOf(nodes: ZeekNode[]): string {
  const entries = nodes.map((n) => {
    const f = [`$node_type=Cluster::${n.role.toUpperCase()}`, "$ip=127.0.0.1"];
    if (n.port !== undefined) f.push(`$p=${n.port}/tcp`);
    if (n.role !== "manager") f.push(`$manager="manager"`);
    f.push(`$metrics_port=${n.metricsPort}/tcp`);
    return `\t["${n.name}"] = [${f.join(", ")}],`;
  });
  return ["redef Cluster::manager_is_logger = F;", "redef Cluster::nodes += {", ...entries, "};", ""].join("\n");
}

/** Every port a node of `nodes` listens on once it is up. */
function portsOf(nodes: ZeekNode[]): number[] {
  return nodes.flatMap((n) => (n.port !== undefined ? [n.port, n.metricsPort] : [n.metricsPort]));
}

// ---------------------------------------------------------------------------------------
// The floor.

interface ZeekEnv {
  zeek: string;
  /** Zeek's default script path, when zeek-config says it; the node's directory goes first. */
  zeekPath?: string;
}

/**
 * Starts every node's zeek directly, all at once, each in its own directory with the
 * layout there and on ZEEKPATH, and waits until each listens: its cluster port (manager,
 * logger, proxies) and its metrics port (every node; workers have no cluster port).
 */
async function floorRun(scratch: Scratch, env: ZeekEnv, nodes: ZeekNode[], tag: string): Promise<number> {
  const dir = join(scratch.dir, `floor-${tag}`);
  const layout = layoutOf(nodes);
  for (const n of nodes) {
    mkdirSync(join(dir, n.name), { recursive: true });
    writeFileSync(join(dir, n.name, "cluster-layout.zeek"), layout);
  }
  const procs: Proc[] = [];
  const pending = new Set(portsOf(nodes));
  const t0 = performance.now();
  try {
    for (const n of nodes) {
      const cwd = join(dir, n.name);
      procs.push(
        scratch.spawn(
          `floor-${n.name}`,
          env.zeek,
          [...(n.iface ? ["-i", n.iface] : []), "frameworks/cluster/backend/broker", ...NODE_SCRIPTS],
          {
            cwd,
            noLog: true,
            env: {
              CLUSTER_NODE: n.name,
              // Without a known script path Zeek's default one, which starts with ".", finds
              // the layout in the working directory.
              ...(env.zeekPath ? { ZEEKPATH: `${cwd}:${env.zeekPath}` } : {}),
              ZEEK_DEFAULT_LISTEN_ADDRESS: "127.0.0.1",
            },
          },
        ),
      );
    }
    const deadline = Date.now() + 180_000;
    while (pending.size) {
      const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
      if (dead) throw new Error(`floor: ${dead.name} exited before listening: ${dead.output().slice(-600)}`);
      if (Date.now() > deadline) throw new Error(`floor: ports ${[...pending].join(", ")} not listening after 180 s`);
      const ports = [...pending];
      const up = await Promise.all(ports.map((p) => canConnect(p)));
      ports.forEach((p, i) => up[i] && pending.delete(p));
      if (pending.size) await sleep(10);
    }
    return performance.now() - t0;
  } finally {
    for (const p of procs) killGroup(p.pid, "SIGKILL");
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(10_000)])));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// The stock client.

interface ClientRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Request event name → request-to-response time, from the timing shim. */
  transactMs: Map<string, number>;
}

function zeekClient(scratch: Scratch, client: string, port: number, args: string[], timeoutMs = 300_000): Promise<ClientRun> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(
      "python3",
      [
        TIMED_CLIENT,
        client,
        "--controller",
        `127.0.0.1:${port}`,
        "--set",
        `client.request_timeout_secs=${Math.ceil(timeoutMs / 1000) - 10}`,
        ...args,
      ],
      { cwd: scratch.dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      rej(err);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const transactMs = new Map<string, number>();
      for (const m of stderr.matchAll(/^zmgmt-bench transact (\S+) ([\d.]+)$/gm)) transactMs.set(m[1]!, Number(m[2]));
      res({ code, stdout, stderr, wallMs: performance.now() - t0, transactMs });
    });
  });
}

function parseJson(out: ClientRun, what: string): Record<string, unknown> {
  try {
    return JSON.parse(out.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`${what}: zeek-client exited ${out.code} without JSON: ${(out.stdout + out.stderr).slice(-600)}`);
  }
}

/** Every cluster node's state, from zeek-client get-nodes. */
async function nodeStates(scratch: Scratch, client: string, port: number): Promise<Map<string, string>> {
  const out = await zeekClient(scratch, client, port, ["get-nodes"], 60_000);
  const json = parseJson(out, "get-nodes") as {
    results?: Record<string, Record<string, { state?: string; cluster_role?: string | null }>>;
  };
  const states = new Map<string, string>();
  for (const inst of Object.values(json.results ?? {})) {
    for (const [name, s] of Object.entries(inst)) if (s.cluster_role) states.set(name, s.state ?? "?");
  }
  return states;
}

// ---------------------------------------------------------------------------------------
// The two management planes.

interface Plane {
  name: "upstream" | "zmgmt";
  /** Where the plane keeps one directory per node (stdout, stderr), for failure reports. */
  nodesDir: string;
  /** The controller's WebSocket port, for zeek-client. */
  port: number;
  /** Every process of the plane with no nodes running (its nodes descend from the first). */
  pids: () => number[];
}

async function clientReady(scratch: Scratch, client: string, port: number, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const out = await zeekClient(scratch, client, port, ["get-instances"], 20_000);
      return out.code === 0 && INSTANCE in parseJson(out, "get-instances");
    },
    timeoutMs,
    `instance ${INSTANCE} at the controller on port ${port}`,
    250,
  );
}

async function startUpstream(scratch: Scratch, zeek: string, client: string, taken: Set<number>): Promise<Plane> {
  const dir = join(scratch.dir, "upstream");
  mkdirSync(join(dir, "state"), { recursive: true });
  mkdirSync(join(dir, "spool"), { recursive: true });
  const [ws, broker, agent, supervisor] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const autoBroker = await freePortRange(8, taken);
  const autoMetrics = await freePortRange(8, taken);
  writeFileSync(
    join(dir, "management.zeek"),
    [
      "@load policy/frameworks/management/controller",
      "@load policy/frameworks/management/agent",
      "@load policy/frameworks/management/supervisor/config",
      // The supervisor listens on Broker's default port for its agent.
      `redef Broker::default_port = ${supervisor}/tcp;`,
      `redef Management::Controller::auto_assign_broker_start_port = ${autoBroker}/tcp;`,
      `redef Management::Controller::auto_assign_metrics_start_port = ${autoMetrics}/tcp;`,
      // The default 10 s would fail deploys of many nodes on a busy 2-core machine; it only
      // bounds the wait, it does not change when the answer comes.
      `redef Management::Request::timeout_interval = ${DEPLOY_TIMEOUT_MS / 1000 + 60}sec;`,
      "",
    ].join("\n"),
  );
  const root = scratch.spawn("upstream", zeek, ["-j", "management.zeek"], {
    cwd: dir,
    env: {
      ZEEK_DEFAULT_LISTEN_ADDRESS: "127.0.0.1",
      ZEEK_MANAGEMENT_STATE_DIR: join(dir, "state"),
      ZEEK_MANAGEMENT_SPOOL_DIR: join(dir, "spool"),
      ZEEK_CONTROLLER_NAME: "controller",
      ZEEK_CONTROLLER_ADDR: "127.0.0.1",
      ZEEK_CONTROLLER_PORT: `${broker}/tcp`,
      ZEEK_CONTROLLER_WEBSOCKET_ADDR: "127.0.0.1",
      ZEEK_CONTROLLER_WEBSOCKET_PORT: `${ws}/tcp`,
      ZEEK_AGENT_NAME: INSTANCE,
      ZEEK_AGENT_ADDR: "127.0.0.1",
      ZEEK_AGENT_PORT: `${agent}/tcp`,
    },
  });
  await waitFor(() => canConnect(ws), 60_000, `upstream controller on port ${ws}`);
  await clientReady(scratch, client, ws, 60_000);
  return { name: "upstream", nodesDir: join(dir, "state", "nodes"), port: ws, pids: () => [root.pid, ...descendants(root.pid)] };
}

const ZMGMT_AGENT_ARGS = ["--request-timeout", "240", "--restart-delay", "1", "--stop-timeout", "5"];

async function startZmgmt(scratch: Scratch, zeek: string, client: string): Promise<Plane> {
  // Upstream answers a deploy once its nodes have checked in and checks nothing after that;
  // zmgmt's come-up check (a deliberate wait, then get-nodes) is left out so both answer at
  // the same point. The control-plane section measures deploys with and without it.
  const controller = await startController(scratch, { requestTimeoutSec: 300, portsNeeded: 8, args: ["--no-deploy-rollback"] });
  const agent = await startAgent(scratch, {
    name: INSTANCE,
    controller,
    args: [...ZMGMT_AGENT_ARGS, "--zeek", zeek],
    // The nodes inherit it, as upstream's nodes inherit it from their supervisor.
    env: { ZEEK_DEFAULT_LISTEN_ADDRESS: "127.0.0.1" },
  });
  await clientReady(scratch, client, controller.port, 60_000);
  return {
    name: "zmgmt",
    nodesDir: join(agent.stateDir, "nodes"),
    port: controller.port,
    pids: () => [agent.proc.pid, ...descendants(agent.proc.pid), controller.proc.pid],
  };
}

function rssMb(pids: number[]): number {
  return round(pids.reduce((a, p) => a + (memory(p)?.rssKb ?? 0), 0) / 1024, 1);
}

/** What a failed deploy leaves to go on: node states and the tail of each unhappy node's stderr. */
async function diagnose(scratch: Scratch, client: string, plane: Plane, nodes: ZeekNode[]): Promise<string> {
  let states: Map<string, string>;
  try {
    states = await nodeStates(scratch, client, plane.port);
  } catch (err) {
    return `get-nodes failed too: ${String(err)}`;
  }
  const unhappy = nodes.filter((n) => states.get(n.name) !== "RUNNING");
  const tail = (n: ZeekNode): string => {
    try {
      return readFileSync(join(plane.nodesDir, n.name, "stderr"), "utf8")
        .trim()
        .split("\n")
        .slice(-3)
        .join(" / ");
    } catch {
      return "";
    }
  };
  return unhappy.length
    ? `not RUNNING: ${unhappy.map((n) => `${n.name} (${states.get(n.name) ?? "absent"}${tail(n) ? `; stderr: ${tail(n).slice(-300)}` : ""})`).join(", ")}`
    : "every node RUNNING by now";
}

/** Deploys `ini` with zeek-client deploy-config; returns the deploy request's round trip. */
async function measuredDeploy(
  scratch: Scratch,
  client: string,
  plane: Plane,
  nodes: ZeekNode[],
  iniPath: string,
): Promise<{ ms: number; wallMs: number; stageMs: number }> {
  const out = await zeekClient(scratch, client, plane.port, ["deploy-config", iniPath], DEPLOY_TIMEOUT_MS);
  if (out.code === null)
    throw new Error(
      `${plane.name}: no deploy answer within ${DEPLOY_TIMEOUT_MS / 1000} s; ${await diagnose(scratch, client, plane, nodes)}`,
    );
  const json = parseJson(out, `${plane.name} deploy-config`) as {
    errors?: string[];
    results?: { nodes?: Record<string, { success?: boolean; error?: string; stderr?: string }> };
  };
  const failed = Object.entries(json.results?.nodes ?? {}).filter(([, r]) => !r.success);
  if (out.code !== 0 || json.errors?.length || failed.length) {
    throw new Error(
      `${plane.name} deploy failed (exit ${out.code}): ${[...(json.errors ?? []), ...failed.slice(0, 3).map(([n, r]) => `${n}: ${r.error ?? ""} ${(r.stderr ?? "").slice(-300)}`)].join("; ")}; ` +
        (await diagnose(scratch, client, plane, nodes)),
    );
  }
  // The client's event classes are named after the Zeek events.
  const ms = [...out.transactMs].find(([name]) => /deploy_request$/.test(name))?.[1];
  if (ms === undefined) throw new Error(`${plane.name}: the timing shim reported no deploy round trip: ${out.stderr.slice(-300)}`);
  const states = await nodeStates(scratch, client, plane.port);
  const notRunning = nodes.filter((n) => states.get(n.name) !== "RUNNING").map((n) => `${n.name} (${states.get(n.name) ?? "absent"})`);
  if (notRunning.length) throw new Error(`${plane.name} answered the deploy but not RUNNING: ${notRunning.join(", ")}`);
  return { ms, wallMs: out.wallMs, stageMs: [...out.transactMs].find(([name]) => /stage_configuration_request$/.test(name))?.[1] ?? NaN };
}

// ---------------------------------------------------------------------------------------

export async function runZeekDeployBench(opts: ZeekDeployOptions, mode: "full" | "quick", log: Logf): Promise<ZeekDeployReport> {
  const report: ZeekDeployReport = {
    measuredAt: new Date().toISOString(),
    mode,
    workerInterface: "none",
    nodeScripts: NODE_SCRIPTS,
    cases: [],
    loadAvg: { start: round(loadavg()[0]!, 2) },
    controlPlaneRssMb: {},
    notes: [],
  };
  const found = locateZeek(opts.zeek);
  if (!found.path) {
    report.skipped = `no Zeek found (tried ${found.tried.join("; ") || "--zeek, ZEEK, PATH, ../shared/zeek"})`;
    log(`  skipped: ${report.skipped}`);
    return report;
  }
  const zeek = found.path;
  const printed = run(zeek, ["--version"]) ?? "";
  const version = /version\s+(\S+)/.exec(printed)?.[1] ?? "unknown";
  report.zeek = { path: zeek, version };
  const client = locateClient(zeek);
  if (!client) {
    report.skipped = "no zeek-client found (ZEEK_CLIENT, beside zeek, PATH, ../shared/zeek-client)";
    log(`  skipped: ${report.skipped}`);
    return report;
  }
  if (run("python3", ["--version"]) === undefined) {
    report.skipped = "python3, which zeek-client needs, is not on PATH";
    log(`  skipped: ${report.skipped}`);
    return report;
  }
  report.client = { path: client, version: run("python3", [TIMED_CLIENT, client, "--version"]) ?? "unknown" };
  const zeekConfig = join(dirname(zeek), "zeek-config");
  const zeekPath = process.env["ZEEKPATH"] || (existsSync(zeekConfig) ? run(zeekConfig, ["--zeekpath"]) : undefined);
  const env: ZeekEnv = { zeek, ...(zeekPath ? { zeekPath } : {}) };
  if (opts.captureLo) {
    if (process.getuid?.() === 0) report.workerInterface = "lo";
    else report.notes.push("Workers capture nothing: capturing `lo` needs root.");
  }
  log(
    `  Zeek ${version} at ${zeek}; zeek-client ${report.client.version}; workers ${report.workerInterface === "lo" ? "capture lo" : "without an interface"}`,
  );

  const zmgmtPending = zmgmtZeekSupport();
  if (zmgmtPending !== undefined) {
    report.zmgmtPending = zmgmtPending;
    log(`  zmgmt with real Zeek nodes: pending (${zmgmtPending})`);
  }

  const scratch = new Scratch("zeek-deploy");
  const taken = new Set<number>();
  let forced = 0;
  try {
    const planes: Array<Plane["name"]> = report.zmgmtPending ? ["upstream"] : ["upstream", "zmgmt"];
    const iface = report.workerInterface === "lo" ? "lo" : undefined;

    // One unmeasured start of the smallest cluster, so that no variant pays for reading
    // Zeek's scripts from disk.
    await floorRun(scratch, env, await clusterNodes(Math.min(...opts.workers), iface, taken), "warmup");

    for (const workers of opts.workers) {
      const floor: number[] = [];
      const measured = new Map<Plane["name"], { ms: number[]; wall: number[]; stage: number[] }>(
        planes.map((p) => [p, { ms: [], wall: [], stage: [] }]),
      );
      const iterations = opts.iterations(workers);
      const failures: ZeekDeployCase["failures"] = [];
      let nodeCount = workers + 4;
      for (let i = 0; i < iterations; i++) {
        // Ports are picked per run, shortly before use: other work on the host takes ports
        // too. Within a run all three variants use the same ones.
        const nodes = await clusterNodes(workers, iface, new Set(taken));
        nodeCount = nodes.length;
        const iniPath = join(scratch.dir, `cluster-${workers}-${i}.ini`);
        writeFileSync(iniPath, iniOf(nodes));
        // Rotate the order, so that no variant always runs right after another's teardown.
        const steps: Array<() => Promise<string>> = [
          async () => {
            try {
              const ms = await floorRun(scratch, env, nodes, `${workers}-${i}`);
              floor.push(ms);
              return `floor ${ms.toFixed(0)} ms`;
            } catch (err) {
              const error = err instanceof Error ? err.message : String(err);
              failures.push({ plane: "floor", run: i + 1, error });
              return `floor FAILED: ${error.slice(0, 300)}`;
            }
          },
          ...planes.map((name) => async () => {
            // A fresh plane for every deploy, torn down with its nodes afterwards: clearing
            // a long-lived upstream instance between deploys was fragile (once its deploy
            // had not answered within the wait, it refused the next one while that was
            // pending), and a fresh plane measures a deploy rather than a plane's history.
            const own = new Scratch(`zeek-${name}`);
            let result: string;
            try {
              const plane =
                name === "upstream" ? await startUpstream(own, zeek, client, new Set(taken)) : await startZmgmt(own, zeek, client);
              await sleep(1000);
              if (report.controlPlaneRssMb[name] === undefined) report.controlPlaneRssMb[name] = rssMb(plane.pids());
              const d = await measuredDeploy(own, client, plane, nodes, iniPath);
              measured.get(name)!.ms.push(d.ms);
              measured.get(name)!.wall.push(d.wallMs);
              measured.get(name)!.stage.push(d.stageMs);
              result = `${name} ${d.ms.toFixed(0)} ms (client run ${d.wallMs.toFixed(0)} ms)`;
            } catch (err) {
              // One slow or failed deploy is a result about that plane, not a reason to
              // lose the whole section.
              const error = err instanceof Error ? err.message : String(err);
              failures.push({ plane: name, run: i + 1, error });
              result = `${name} FAILED: ${error.slice(0, 300)}`;
            } finally {
              forced += (await own.close()).length;
            }
            return result;
          }),
        ];
        const line: string[] = [];
        for (let s = 0; s < steps.length; s++) {
          line.push(await steps[(s + i) % steps.length]!());
          await sleep(300);
        }
        log(`  zeek deploy N=${workers} (${nodes.length} nodes), run ${i + 1}/${iterations}: ${line.join(", ")}`);
      }
      const fs = summarize(floor);
      const up = measured.get("upstream")!;
      const zmm = measured.get("zmgmt");
      const c: ZeekDeployCase = {
        workers,
        nodes: nodeCount,
        floorMs: fs,
        ratios: {},
        samples: { floorMs: floor.map((v) => round(v, 1)), upstreamMs: up.ms.map((v) => round(v, 1)), zmgmtMs: [] },
        failures,
      };
      if (up.ms.length) {
        c.upstreamMs = summarize(up.ms);
        c.upstreamClientMs = summarize(up.wall);
        c.upstreamStageMs = summarize(up.stage);
        c.ratios.upstreamToFloor = round(c.upstreamMs.p50 / fs.p50, 3);
      }
      if (zmm?.ms.length) {
        c.zmgmtMs = summarize(zmm.ms);
        c.zmgmtClientMs = summarize(zmm.wall);
        c.zmgmtStageMs = summarize(zmm.stage);
        c.samples.zmgmtMs = zmm.ms.map((v) => round(v, 1));
        c.ratios.zmgmtToFloor = round(c.zmgmtMs.p50 / fs.p50, 3);
        if (c.upstreamMs) {
          c.ratios.zmgmtToUpstream = round(c.zmgmtMs.p50 / c.upstreamMs.p50, 3);
          c.zmgmtMinusUpstreamP50Ms = medianDiffInterval(zmm.ms, up.ms);
        }
      }
      report.cases.push(c);
    }
  } finally {
    forced += (await scratch.close()).length;
    report.loadAvg.end = round(loadavg()[0]!, 2);
    const cores = cpus().length;
    if (Math.max(report.loadAvg.start, report.loadAvg.end) > cores) {
      report.notes.push(
        `The host was busy with other work (1-minute load ${report.loadAvg.start} at start, ${report.loadAvg.end} at end, on ${cores} cores): ` +
          "Zeek start-up is CPU-bound, so every absolute time here is inflated; the variants shared the same conditions, turn by turn.",
      );
    }
    report.notes.push(
      forced
        ? `Teardown: ${forced} process(es) needed SIGKILL after SIGTERM.`
        : "Teardown: every process of this section (Zeek supervisor, nodes, controllers, agent) exited on SIGTERM.",
    );
  }
  return report;
}

// ---------------------------------------------------------------------------------------
// Target and report section.

export function zeekDeployTarget(r: ZeekDeployReport | undefined): TargetResult {
  const target =
    "deploy of real Zeek clusters (N=4 and N=16 workers) not slower than upstream's Management Framework, p50, same client, configs and run";
  const base = { id: ZEEK_DEPLOY_TARGET_ID, target };
  if (!r) return { ...base, measured: "not measured", met: null };
  if (r.skipped) return { ...base, measured: `not measured: ${r.skipped}`, met: null };
  const up = r.cases.map(
    (c) => `N=${c.workers}: upstream p50 ${c.upstreamMs?.p50} ms (${c.ratios.upstreamToFloor}× floor ${c.floorMs.p50} ms)`,
  );
  if (r.zmgmtPending) return { ...base, measured: `zmgmt not measured (${r.zmgmtPending}); ${up.join(", ")}`, met: null };
  const measured = r.cases.map(
    (c) =>
      `N=${c.workers}: zmgmt p50 ${c.zmgmtMs?.p50} ms, upstream ${c.upstreamMs?.p50} ms (zmgmt/upstream ${c.ratios.zmgmtToUpstream}), floor ${c.floorMs.p50} ms`,
  );
  const complete = [4, 16].every((n) => r.cases.some((c) => c.workers === n && c.zmgmtMs && c.upstreamMs));
  const ties = r.cases.filter(
    (c) => c.zmgmtMinusUpstreamP50Ms && c.zmgmtMinusUpstreamP50Ms.low <= 0 && c.zmgmtMinusUpstreamP50Ms.high >= 0,
  );
  const notes: string[] = [
    `zmgmt without its come-up check (--no-deploy-rollback), which upstream does not have; with it, a deploy answers ${DEFAULT_DEPLOY_CHECK_DELAY_MS} ms and a get-nodes round later`,
  ];
  const belowFloor = r.cases.filter((c) => c.upstreamMs && c.upstreamMs.p50 < c.floorMs.p50);
  if (belowFloor.length) {
    // Zeek's supervisor forks each node from its stem, a process already past Zeek's own
    // start-up (binary loaded and linked); zmgmt, like the floor, starts each node as a new
    // zeek process, and on a CPU-bound host that start-up is paid once per node.
    notes.push(
      `upstream answers below the floor at ${belowFloor.map((c) => `N=${c.workers} (${c.ratios.upstreamToFloor}x)`).join(", ")}: ` +
        "Zeek's supervisor forks its nodes from its stem process, which is past Zeek's process start-up, while zmgmt, " +
        `like the floor, starts each node as a new zeek process (zmgmt/floor ${r.cases.map((c) => `${c.ratios.zmgmtToFloor} at N=${c.workers}`).join(", ")})`,
    );
  }
  if (!complete) notes.push("not every N of the target was measured");
  const failed = r.cases.flatMap((c) => c.failures.map((x) => `${x.plane} at N=${c.workers}, run ${x.run}`));
  if (failed.length) notes.push(`failed deploys (no sample): ${failed.join(", ")}`);
  if (ties.length) {
    notes.push(
      `judged on p50; at ${ties.map((c) => `N=${c.workers} (95% CI of zmgmt − upstream ${c.zmgmtMinusUpstreamP50Ms!.low}..${c.zmgmtMinusUpstreamP50Ms!.high} ms)`).join(", ")} the difference is within this run's noise`,
    );
  }
  // A plane that failed a deploy the other managed counts as the slower one.
  const slower = r.cases.some(
    (c) =>
      (c.zmgmtMs && c.upstreamMs && c.zmgmtMs.p50 > c.upstreamMs.p50) ||
      c.failures.filter((x) => x.plane === "zmgmt").length > c.failures.filter((x) => x.plane === "upstream").length,
  );
  return {
    ...base,
    measured: measured.join("; "),
    met: slower ? false : complete ? true : null,
    ...(notes.length ? { note: notes.join("; ") } : {}),
  };
}

const f = (v: number | undefined, digits = 0): string => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits));

export function renderZeekDeploy(r: ZeekDeployReport): string[] {
  const md: string[] = ["## Deploy latency of real Zeek clusters", ""];
  if (r.skipped) return [...md, `Skipped: ${r.skipped}.`, ""];
  md.push(
    `Zeek ${r.zeek?.version ?? "?"}, zeek-client ${r.client?.version ?? "?"}; measured ${r.measuredAt}${r.mode === "quick" ? " (quick mode)" : ""}. ` +
      `1 manager + 1 logger + 2 proxies + N workers on one host (workers ${r.workerInterface === "lo" ? "capture `lo`" : "without an interface"}; every node loads ${r.nodeScripts.map((s) => `\`${s}\``).join(", ")}), ` +
      "with the same ports in all three variants. " +
      "**Floor**: the same `zeek` commands started directly, all at once (per node a working directory, `CLUSTER_NODE`, the generated `cluster-layout.zeek` on ZEEKPATH, " +
      "the Broker cluster backend), until each node listens: its cluster port (manager, logger, proxies) and its metrics port (all). " +
      "**Upstream**: Zeek's Management Framework from the same build (`zeek -j` with its controller, agent and supervisor). " +
      "**zmgmt**: our controller and agent with `--zeek`. Both managed variants get the same INI through the stock zeek-client (`deploy-config`) and are timed " +
      "from the deploy request to its response (both answer once every node has checked in), confirmed RUNNING with get-nodes. Each managed deploy goes to a " +
      "freshly started controller and agent (an instance without nodes), which are stopped with their nodes afterwards; the variants take turns in a rotating order. Times in ms.",
    "",
  );
  if (r.zmgmtPending) md.push(`**zmgmt: pending.** ${r.zmgmtPending}; only the floor and upstream were measured.`, "");
  md.push(
    "| N | nodes | floor p50 | upstream p50 | zmgmt p50 | upstream/floor | zmgmt/floor | zmgmt/upstream | zmgmt − upstream, p50 (95% CI) | stage p50: upstream / zmgmt | whole client run p50: upstream / zmgmt | runs |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...r.cases.map(
      (c) =>
        `| ${c.workers} | ${c.nodes} | ${f(c.floorMs.p50)} | ${f(c.upstreamMs?.p50)} | ${c.zmgmtMs ? f(c.zmgmtMs.p50) : "pending"} | ${f(c.ratios.upstreamToFloor, 3)} | ` +
        `${f(c.ratios.zmgmtToFloor, 3)} | ${f(c.ratios.zmgmtToUpstream, 3)} | ` +
        `${c.zmgmtMinusUpstreamP50Ms ? `${f(c.zmgmtMinusUpstreamP50Ms.low)} .. ${f(c.zmgmtMinusUpstreamP50Ms.high)}` : "-"} | ` +
        `${f(c.upstreamStageMs?.p50)} / ${f(c.zmgmtStageMs?.p50)} | ${f(c.upstreamClientMs?.p50)} / ${f(c.zmgmtClientMs?.p50)} | ${c.floorMs.n} |`,
    ),
    "",
  );
  const failures = r.cases.flatMap((c) => c.failures.map((x) => `- ${x.plane}, N=${c.workers}, run ${x.run}: ${x.error}`));
  if (failures.length) md.push("Failed deploys (not counted as samples):", "", ...failures, "");
  const rss = r.controlPlaneRssMb;
  if (rss.upstream !== undefined || rss.zmgmt !== undefined) {
    md.push(
      `Management plane RSS with no nodes: upstream (Zeek supervisor, stem, controller, agent) ${f(rss.upstream, 1)} MB; ` +
        `zmgmt (controller, supervisor, agent process) ${rss.zmgmt !== undefined ? `${f(rss.zmgmt, 1)} MB` : "pending"}.`,
      "",
    );
  }
  if (r.notes.length) md.push(...r.notes.map((n) => `- ${n}`), "");
  return md;
}
