// Deploy latency: a client's deploy request until its response (every node checked in,
// i.e. RUNNING), against the floor of starting the same node processes directly, all at
// once, and waiting until each one listens. Also the memory of the controller and of an
// agent (supervisor + agent process) idle and with the largest cluster running.

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { mkdirSync, rmSync } from "node:fs";
import { resultConfiguration, type ControllerClient } from "../src/client/controller-client.js";
import type { Configuration } from "../src/management/types.js";
import { WEBSOCKET_PATH } from "../src/broker/messages.js";
import {
  clusterNodeStates,
  connectClient,
  floorNodeEnv,
  emptyConfig,
  stageOrThrow,
  standardConfig,
  startAgent,
  startController,
  type RunningAgent,
  waitInstances,
  type RunningController,
} from "./lib/cluster.js";
import {
  CLI,
  descendants,
  freePort,
  cmdline,
  memory,
  killGroup,
  sleep,
  summarize,
  round,
  Scratch,
  type Proc,
  type Summary,
} from "./lib/proc.js";
import { deployTimeline, type DeployTimeline } from "./lib/timeline.js";
import { monotonicUs, profilePid, profilesIn, summarizeCpuProfile, type ProfileSummary, type Window } from "./lib/profile.js";
import type { Logf } from "./lib/log.js";

export interface DeployCase {
  agents: number;
  workers: number;
  nodes: number;
  floorMs: Summary;
  deployMs: Summary;
  /** deploy p50 / floor p50. */
  ratio: number;
  overheadPct: number;
  /** Paired per iteration: each deploy against the floor run right after it. */
  pairedOverheadPct: Summary;
  /**
   * What the target is judged on: the larger of `overheadPct` and the paired median, so
   * that neither drifting load nor one lucky pairing makes the overhead look smaller.
   */
  judgedOverheadPct: number;
  samples: { floorMs: number[]; deployMs: number[] };
  /** Phases of the last measured deploy, from the management logs. */
  timeline?: DeployTimeline;
}

export interface MemorySnapshot {
  controllerRssMb: number;
  supervisorRssMb: number;
  agentProcessRssMb: number;
  /** Supervisor + agent process: the agent's management overhead on a host. */
  agentTotalRssMb: number;
  /** All cluster node processes together, for scale. */
  nodesRssMb?: number;
  nodes: number;
}

export interface DeployReport {
  cases: DeployCase[];
  memory: { idle?: MemorySnapshot; loaded?: MemorySnapshot };
  profile?: { reason: string; processes: ProfileSummary[]; timeline?: DeployTimeline };
  notes: string[];
}

export interface DeployOptions {
  workers: number[];
  agentCounts: number[];
  iterations: (workers: number) => number;
  /** Deploy overhead target at the largest N, in percent over the floor. */
  targetOverheadPct: number;
}

const CPU_PROFILE_PRELOAD = pathToFileURL(join(import.meta.dirname, "helpers/cpu-profile-preload.mjs")).href;

const AGENT_ARGS = ["--request-timeout", "240", "--restart-delay", "1", "--stop-timeout", "5"];
const CONTROLLER_TIMEOUT_SEC = 300;
const CLIENT_DEPLOY_TIMEOUT_MS = 320_000;

function instanceNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `host-${i + 1}`);
}

/**
 * Starts every node of `config` directly and waits until each has printed that it is live,
 * which the node program does right after its listeners are bound. Returns the wall time.
 */
async function floorRun(scratch: Scratch, config: Configuration): Promise<number> {
  // Nothing listens here: the nodes keep retrying their agent in the background, as the
  // brief of the floor asks (no management plane at all).
  const deadUrl = `ws://127.0.0.1:${await freePort()}${WEBSOCKET_PATH}`;
  const dir = join(scratch.dir, "floor");
  mkdirSync(dir, { recursive: true });
  const total = config.nodes.length;
  let live = 0;
  let resolveAll!: (t: number) => void;
  const allLive = new Promise<number>((r) => (resolveAll = r));
  const procs: Proc[] = [];
  const envs = config.nodes.map((n) => floorNodeEnv(config, n.name, deadUrl));
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    procs.push(
      scratch.spawn(`floor-${config.nodes[i]!.name}`, process.execPath, [CLI, "node"], {
        cwd: dir,
        env: envs[i]!,
        noLog: true,
        onLine: (line) => {
          if (line.includes(" is live") && ++live === total) resolveAll(performance.now());
        },
      }),
    );
  }
  const t1 = await Promise.race([allLive, sleep(120_000).then(() => NaN)]);
  for (const p of procs) killGroup(p.pid, "SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  if (Number.isNaN(t1)) throw new Error(`floor run: only ${live} of ${total} nodes came up within 120 s`);
  return t1 - t0;
}

async function clear(client: ControllerClient, instances: string[]): Promise<void> {
  await stageOrThrow(client, emptyConfig(instances));
  const res = await client.deploy(CLIENT_DEPLOY_TIMEOUT_MS);
  const bad = res.filter((r) => !r.success);
  if (bad.length) throw new Error(`clearing deploy failed: ${bad.map((r) => `${r.node ?? r.instance ?? ""} ${r.error}`).join("; ")}`);
}

async function measuredDeploy(
  client: ControllerClient,
  config: Configuration,
): Promise<{ ms: number; startedAt: number; finishedAt: number }> {
  await stageOrThrow(client, config);
  const startedAt = Date.now();
  const t0 = performance.now();
  const res = await client.deploy(CLIENT_DEPLOY_TIMEOUT_MS);
  const ms = performance.now() - t0;
  const finishedAt = Date.now();
  const bad = res.filter((r) => !r.success);
  if (bad.length)
    throw new Error(
      `deploy failed: ${bad
        .slice(0, 5)
        .map((r) => `${r.node ?? r.instance ?? ""} ${r.error}`)
        .join("; ")}`,
    );
  // The response means every agent saw every node check in; confirm from the outside.
  const states = await clusterNodeStates(client);
  const notRunning = config.nodes.filter((n) => states.get(n.name)?.state !== "RUNNING").map((n) => n.name);
  if (notRunning.length) throw new Error(`deploy answered but not RUNNING: ${notRunning.join(", ")}`);
  return { ms, startedAt, finishedAt };
}

function agentPids(agent: RunningAgent): { supervisor: number; agentProcess?: number; nodes: number[] } {
  const all = descendants(agent.proc.pid);
  // The agent process renames itself (`zmgmt agent NAME`); before it does, argv names it.
  const agentProcess = all.find((p) => cmdline(p).includes("agent-process") || cmdline(p).join(" ").startsWith("zmgmt agent "));
  return {
    supervisor: agent.proc.pid,
    ...(agentProcess !== undefined ? { agentProcess } : {}),
    nodes: all.filter((p) => p !== agentProcess),
  };
}

const mb = (kb: number | undefined): number => round((kb ?? 0) / 1024, 1);

function snapshot(controller: RunningController, agent: RunningAgent, withNodes: boolean): MemorySnapshot {
  const pids = agentPids(agent);
  const sup = memory(pids.supervisor)?.rssKb ?? 0;
  const ap = pids.agentProcess !== undefined ? (memory(pids.agentProcess)?.rssKb ?? 0) : 0;
  const snap: MemorySnapshot = {
    controllerRssMb: mb(memory(controller.proc.pid)?.rssKb),
    supervisorRssMb: mb(sup),
    agentProcessRssMb: mb(ap),
    agentTotalRssMb: mb(sup + ap),
    nodes: pids.nodes.length,
  };
  if (withNodes) snap.nodesRssMb = mb(pids.nodes.reduce((a, p) => a + (memory(p)?.rssKb ?? 0), 0));
  return snap;
}

export async function runDeployBench(opts: DeployOptions, log: Logf): Promise<DeployReport> {
  const report: DeployReport = { cases: [], memory: {}, notes: [] };
  const largest = Math.max(...opts.workers);
  for (const agentCount of opts.agentCounts) {
    const scratch = new Scratch(`deploy-${agentCount}`);
    try {
      const instances = instanceNames(agentCount);
      const controller = await startController(scratch, { requestTimeoutSec: CONTROLLER_TIMEOUT_SEC, portsNeeded: largest + 8 });
      const agents: RunningAgent[] = [];
      for (const name of instances) agents.push(await startAgent(scratch, { name, controller, args: AGENT_ARGS }));
      const client = await connectClient(controller.port, 120_000);
      try {
        await waitInstances(client, agentCount);
        // Adopt the instance set once, so every later deploy only changes nodes.
        await clear(client, instances);
        await sleep(500);
        if (agentCount === 1) report.memory.idle = snapshot(controller, agents[0]!, false);

        for (const workers of opts.workers) {
          const iterations = opts.iterations(workers);
          const floor: number[] = [];
          const dep: number[] = [];
          let last: { startedAt: number; finishedAt: number } | undefined;
          for (let i = 0; i < iterations; i++) {
            // Every deploy starts from an instance without nodes, like the floor does.
            const d = await measuredDeploy(client, standardConfig(instances, workers));
            dep.push(d.ms);
            last = d;
            if (agentCount === 1 && workers === largest && i === iterations - 1) {
              await sleep(1000);
              report.memory.loaded = snapshot(controller, agents[0]!, true);
            }
            // The floor starts the very node processes this deploy ran, with the ports the
            // controller assigned to them.
            const deployed = resultConfiguration(await client.getConfiguration(true));
            if (!deployed) throw new Error("no deployed configuration after a deploy");
            await clear(client, instances);
            await sleep(300);
            floor.push(await floorRun(scratch, deployed));
            await sleep(300);
            log(`  deploy ${agentCount} agent(s), N=${workers}: deploy ${d.ms.toFixed(0)} ms, floor ${floor[i]!.toFixed(0)} ms`);
          }
          const fs = summarize(floor);
          const ds = summarize(dep);
          const c: DeployCase = {
            agents: agentCount,
            workers,
            nodes: workers + 4,
            floorMs: fs,
            deployMs: ds,
            ratio: round(ds.p50 / fs.p50, 3),
            overheadPct: round((ds.p50 / fs.p50 - 1) * 100, 1),
            pairedOverheadPct: summarize(dep.map((d, i) => (d / floor[i]! - 1) * 100)),
            judgedOverheadPct: 0,
            samples: { floorMs: floor.map((v) => round(v, 1)), deployMs: dep.map((v) => round(v, 1)) },
          };
          c.judgedOverheadPct = round(Math.max(c.overheadPct, c.pairedOverheadPct.p50), 1);
          if (last) {
            try {
              // The clear and floor runs that followed do not touch these logs' window.
              c.timeline = deployTimeline({
                controllerLog: controller.logFile,
                agentLogs: agents.map((a) => a.logFile),
                supervisorLogs: agents.map((a) => a.supervisorLogFile),
                startedAt: last.startedAt,
                finishedAt: last.finishedAt,
              });
            } catch (err) {
              report.notes.push(`timeline for ${agentCount} agent(s), N=${workers} unavailable: ${String(err)}`);
            }
          }
          report.cases.push(c);
        }
      } finally {
        await client.close();
      }
    } finally {
      await scratch.close();
    }
  }

  const worst = report.cases.filter((c) => c.workers === largest).sort((a, b) => b.judgedOverheadPct - a.judgedOverheadPct)[0];
  if (worst && worst.judgedOverheadPct >= opts.targetOverheadPct) {
    log(`  deploy overhead ${worst.judgedOverheadPct}% at N=${largest} with ${worst.agents} agent(s) misses the target; profiling`);
    try {
      report.profile = await profileDeploy(worst.agents, largest, log);
    } catch (err) {
      report.notes.push(`deploy profile failed: ${String(err)}`);
    }
  }
  return report;
}

/**
 * One more deploy of the worst case with every management process under `--cpu-prof`
 * (nodes are told not to profile themselves), summarized per process over the measured
 * deploy only, plus its timeline.
 */
async function profileDeploy(agentCount: number, workers: number, log: Logf): Promise<NonNullable<DeployReport["profile"]>> {
  const scratch = new Scratch("deploy-profile");
  const profDir = join(scratch.dir, "profiles");
  const out: NonNullable<DeployReport["profile"]> = { reason: "", processes: [] };
  const roles = new Map<number, string>();
  let window: Window | undefined;
  try {
    const instances = instanceNames(agentCount);
    const controller = await startController(scratch, {
      requestTimeoutSec: CONTROLLER_TIMEOUT_SEC,
      portsNeeded: workers + 8,
      nodeArgs: ["--cpu-prof", "--cpu-prof-dir", join(profDir, "controller")],
    });
    roles.set(controller.proc.pid, "controller");
    const agents: RunningAgent[] = [];
    for (const [i, name] of instances.entries()) {
      const dir = join(profDir, `agent-${i + 1}`);
      agents.push(
        await startAgent(scratch, {
          name,
          controller,
          args: AGENT_ARGS,
          // Node refuses --cpu-prof in NODE_OPTIONS; a preloaded module does the same job in
          // the supervisor and in the agent process it spawns (which inherits the variables).
          env: { NODE_OPTIONS: `--import ${CPU_PROFILE_PRELOAD}`, BENCH_CPU_PROF_DIR: dir },
        }),
      );
    }
    const client = await connectClient(controller.port, 120_000);
    try {
      await waitInstances(client, agentCount);
      await clear(client, instances);
      // Nodes inherit the agent's environment; an empty NODE_OPTIONS keeps them unprofiled.
      const noProf = { NODE_OPTIONS: "" };
      await measuredDeploy(client, standardConfig(instances, workers, noProf));
      await clear(client, instances);
      await sleep(300);
      const fromUs = monotonicUs();
      const d = await measuredDeploy(client, standardConfig(instances, workers, noProf));
      window = { fromUs, toUs: monotonicUs() };
      log(`  profiled deploy ${agentCount} agent(s), N=${workers}: ${d.ms.toFixed(0)} ms`);
      out.reason = `deploy of N=${workers} across ${agentCount} agent(s) took ${d.ms.toFixed(0)} ms under the profiler`;
      out.timeline = deployTimeline({
        controllerLog: controller.logFile,
        agentLogs: agents.map((a) => a.logFile),
        supervisorLogs: agents.map((a) => a.supervisorLogFile),
        startedAt: d.startedAt,
        finishedAt: d.finishedAt,
      });
      for (const [i, a] of agents.entries()) {
        roles.set(a.proc.pid, `supervisor (host-${i + 1})`);
        const ap = agentPids(a).agentProcess;
        if (ap !== undefined) roles.set(ap, `agent process (host-${i + 1})`);
      }
      await clear(client, instances);
    } finally {
      await client.close();
    }
    await scratch.close(true);
    const dirs = ["controller", ...instances.map((_, i) => `agent-${i + 1}`)];
    for (const d of dirs) {
      for (const f of profilesIn(join(profDir, d), ".cpuprofile")) {
        const pid = profilePid(f);
        out.processes.push(summarizeCpuProfile(f, (pid !== undefined ? roles.get(pid) : undefined) ?? `pid ${pid}`, window));
      }
    }
    return out;
  } finally {
    await scratch.close().catch(() => []);
    rmSync(scratch.dir, { recursive: true, force: true });
  }
}
