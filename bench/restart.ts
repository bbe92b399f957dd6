// Crash-restart latency: SIGKILL a node, then time until its cluster port serves again (a
// connection that yields the node's JSON greeting from a new pid). The same node program
// runs under our agent, under PM2 (private PM2_HOME) and under supervisord; the same probe
// loop measures all three.

import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { WEBSOCKET_PATH } from "../src/broker/messages.js";
import type { Configuration } from "../src/management/types.js";
import { clusterNode, connectClient, floorNodeEnv, stageOrThrow, startAgent, startController, waitInstances } from "./lib/cluster.js";
import {
  CLI,
  freePort,
  medianDiffInterval,
  pidAlive,
  readLine,
  round,
  sleep,
  summarize,
  waitFor,
  Scratch,
  type Summary,
} from "./lib/proc.js";
import { restartPhases } from "./lib/timeline.js";
import { randomUUID } from "node:crypto";
import { resultConfiguration } from "../src/client/controller-client.js";
import type { Logf } from "./lib/log.js";

export type Manager = "zmgmt" | "pm2" | "supervisord";

export interface RestartCase {
  manager: Manager;
  /** What the manager was told to wait before restarting. */
  delaySetting: string;
  summary?: Summary;
  samplesMs: number[];
  skipped?: string;
  /** Others only: 95% interval of zmgmt's median minus this one's (negative: ours faster). */
  zmgmtMinusThisP50Ms?: { low: number; high: number };
  /** zmgmt only: when the supervisor noticed the exit and respawned, ms after the kill. */
  phases?: { exitNoticedMs: Summary; respawnedMs: Summary; respawnToServingMs: Summary };
}

export interface RestartReport {
  /** The comparison the target is judged on: every manager restarts without delay. */
  matched: RestartCase[];
  /** Informational: a 1 s first delay where the manager has that setting. */
  delayed: RestartCase[];
  /** Spawning the node program directly until it serves: the part no manager can avoid. */
  coldStartMs: Summary;
  versions: Record<string, string>;
  notes: string[];
}

export interface RestartOptions {
  kills: number;
  delayedKills: number;
}

interface Greeting {
  pid: number;
}

async function greeting(port: number): Promise<Greeting | undefined> {
  const line = await readLine(port, 500);
  if (!line) return undefined;
  try {
    const j = JSON.parse(line) as { pid?: unknown };
    return typeof j.pid === "number" ? { pid: j.pid } : undefined;
  } catch {
    return undefined;
  }
}

interface KillSample {
  ms: number;
  killedAt: number;
  servingAt: number;
}

/** A node under one manager, serving on `port`. */
interface Target {
  manager: Manager;
  delaySetting: string;
  port: number;
  supervisorLog?: string;
  /** performance.now() when the current process was first seen serving. */
  upSince?: number;
  samples: KillSample[];
  close(): Promise<void>;
}

/**
 * Kills the target's serving process once and waits for a new pid to serve. Before the
 * kill the process has been up for `uptimeMs`, long enough for PM2 (min_uptime) and
 * supervisord (startsecs) to count it as started, so neither treats the crash as a
 * failed start.
 */
async function killOnce(t: Target, uptimeMs: number): Promise<void> {
  const cur = await waitFor(() => greeting(t.port), 30_000, `${t.manager} node on port ${t.port} serving`);
  t.upSince ??= performance.now();
  const wait = uptimeMs - (performance.now() - t.upSince);
  if (wait > 0) await sleep(wait);
  const still = await greeting(t.port);
  if (!still || still.pid !== cur.pid) throw new Error(`${t.manager} node on port ${t.port} restarted on its own`);
  const killedAt = Date.now();
  const t0 = performance.now();
  process.kill(cur.pid, "SIGKILL");
  const deadline = t0 + 60_000;
  for (;;) {
    const g = await greeting(t.port);
    if (g && g.pid !== cur.pid) break;
    if (performance.now() > deadline) throw new Error(`${t.manager} node on port ${t.port} did not serve again within 60 s`);
    await sleep(PROBE_INTERVAL_MS);
  }
  t.upSince = performance.now();
  const ms = t.upSince - t0;
  t.samples.push({ ms, killedAt, servingAt: killedAt + ms });
}

/** How often the probe retries a refused port: fine enough for latencies of ~0.5 s. */
const PROBE_INTERVAL_MS = 2;

/**
 * The managers take turns, one kill each per round, so load from outside the benchmark
 * that comes and goes during the run is spread over all of them alike.
 */
async function roundRobin(targets: Target[], kills: number, uptimeMs: number): Promise<void> {
  for (let i = 0; i < kills; i++) for (const t of targets) await killOnce(t, uptimeMs);
}

function toCase(t: Target): RestartCase {
  const c: RestartCase = {
    manager: t.manager,
    delaySetting: t.delaySetting,
    samplesMs: t.samples.map((s) => round(s.ms, 1)),
    summary: summarize(t.samples.map((s) => s.ms)),
  };
  if (t.supervisorLog) {
    const phases = t.samples.map((s) => ({ ...restartPhases(t.supervisorLog!, "manager", s.killedAt, s.servingAt), ms: s.ms }));
    const exitNoticed = phases.flatMap((p) => (p.exitNoticedMs !== undefined ? [p.exitNoticedMs] : []));
    const respawned = phases.flatMap((p) => (p.respawnedMs !== undefined ? [p.respawnedMs] : []));
    const toServing = phases.flatMap((p) => (p.respawnedMs !== undefined ? [p.ms - p.respawnedMs] : []));
    c.phases = { exitNoticedMs: summarize(exitNoticed), respawnedMs: summarize(respawned), respawnToServingMs: summarize(toServing) };
  }
  return c;
}

/**
 * What our agent would give a lone manager node with these ports (a metrics port makes the
 * node load its metrics library, so leaving it out would make the program lighter here
 * than under our agent), with an agent URL nobody answers.
 */
async function standaloneNodeEnv(port: number, metricsPort: number): Promise<Record<string, string>> {
  while (metricsPort === port) metricsPort = await freePort();
  const config: Configuration = {
    id: randomUUID(),
    instances: [{ name: "host-1", host: "127.0.0.1" }],
    nodes: [clusterNode("manager", "host-1", "MANAGER", { port, metricsPort })],
  };
  return floorNodeEnv(config, "manager", `ws://127.0.0.1:${await freePort()}${WEBSOCKET_PATH}`);
}

async function zmgmtTarget(delaySec: number): Promise<Target> {
  const scratch = new Scratch("restart-zmgmt");
  try {
    const controller = await startController(scratch, { requestTimeoutSec: 60, portsNeeded: 4 });
    const agent = await startAgent(scratch, {
      name: "host-1",
      controller,
      args: ["--request-timeout", "60", "--restart-delay", String(delaySec), "--stop-timeout", "5"],
    });
    const client = await connectClient(controller.port);
    let port: number;
    try {
      await waitInstances(client, 1);
      await stageOrThrow(client, {
        id: randomUUID(),
        instances: [{ name: "host-1", host: "0.0.0.0" }],
        nodes: [clusterNode("manager", "host-1", "MANAGER")],
      });
      const res = await client.deploy(60_000);
      if (res.some((r) => !r.success)) throw new Error(`deploy failed: ${res.map((r) => r.error).join("; ")}`);
      const cfg = resultConfiguration(await client.getConfiguration(true));
      port = cfg?.nodes[0]?.port ?? NaN;
      if (!Number.isInteger(port)) throw new Error("deployed manager has no port");
    } finally {
      await client.close();
    }
    return {
      manager: "zmgmt",
      delaySetting: `--restart-delay ${delaySec}`,
      port,
      supervisorLog: agent.supervisorLogFile,
      samples: [],
      close: async () => {
        await scratch.close();
      },
    };
  } catch (err) {
    await scratch.close();
    throw err;
  }
}

function pm2Bin(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("pm2/package.json")), "bin", "pm2");
}

export function pm2Version(): string {
  const require = createRequire(import.meta.url);
  return (require("pm2/package.json") as { version: string }).version;
}

async function pm2Target(restartDelayMs: number): Promise<Target> {
  const scratch = new Scratch("restart-pm2");
  const home = join(scratch.dir, "pm2-home");
  mkdirSync(home, { recursive: true });
  // PM2 phones home for a version check on its first run in a PM2_HOME; the marker file
  // it leaves after that run, and the switch for its daily check, keep it on loopback.
  writeFileSync(join(home, "touch"), String(Date.now()));
  const env = { PM2_HOME: home, PM2_DISABLE_VERSION_CHECK: "true" };
  const pm2 = async (...args: string[]): Promise<void> => {
    const p = scratch.spawn(`pm2-${args[0]}`, process.execPath, [pm2Bin(), ...args], { env });
    await p.exited;
    if (p.child.exitCode !== 0) throw new Error(`pm2 ${args.join(" ")} failed: ${p.output().slice(-2000)}`);
  };
  const close = async (): Promise<void> => {
    let daemon: number | undefined;
    try {
      daemon = Number(readFileSync(join(home, "pm2.pid"), "utf8").trim()) || undefined;
    } catch {
      // never started
    }
    await pm2("kill").catch(() => undefined);
    // `pm2 kill` returns before its daemon has exited.
    if (daemon !== undefined) await waitFor(() => !pidAlive(daemon), 15_000, "the PM2 daemon to exit").catch(() => undefined);
    await scratch.close();
  };
  try {
    const port = await freePort();
    const app = {
      name: "bench-node",
      script: process.execPath,
      args: [CLI, "node"],
      interpreter: "none",
      cwd: scratch.dir,
      autorestart: true,
      restart_delay: restartDelayMs,
      min_uptime: 1000,
      max_restarts: 1000,
      env: await standaloneNodeEnv(port, await freePort()),
      out_file: join(scratch.dir, "pm2-node.out"),
      error_file: join(scratch.dir, "pm2-node.err"),
    };
    const eco = join(scratch.dir, "ecosystem.json");
    writeFileSync(eco, JSON.stringify({ apps: [app] }, null, 2));
    await pm2("start", eco);
    return { manager: "pm2", delaySetting: `restart_delay ${restartDelayMs}`, port, samples: [], close };
  } catch (err) {
    await close();
    throw err;
  }
}

export function findSupervisord(): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    const p = join(dir || ".", "supervisord");
    if (existsSync(p)) return p;
  }
  return undefined;
}

export function supervisordVersion(bin: string): string {
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function quoteIni(value: string): string {
  // supervisord expands %(name)s in values and reads `command` and `environment` with
  // Python's non-POSIX shlex, where a backslash escapes nothing: a value holding double
  // quotes (JSON) has to travel in single quotes.
  const v = value.replace(/%/g, "%%");
  if (!v.includes('"')) return `"${v}"`;
  if (v.includes("'")) throw new Error(`cannot quote ${value} for supervisord`);
  return `'${v}'`;
}

async function supervisordTarget(bin: string): Promise<Target> {
  const scratch = new Scratch("restart-supervisord");
  try {
    const port = await freePort();
    const env = await standaloneNodeEnv(port, await freePort());
    const d = scratch.dir;
    const conf = [
      "[supervisord]",
      "nodaemon=true",
      `logfile=${join(d, "supervisord.log")}`,
      `pidfile=${join(d, "supervisord.pid")}`,
      `childlogdir=${d}`,
      ...(process.getuid?.() === 0 ? ["user=root"] : []),
      "",
      "[program:bench-node]",
      `command=${quoteIni(process.execPath)} ${quoteIni(CLI)} node`,
      `directory=${d}`,
      `environment=${Object.entries(env)
        .map(([k, v]) => `${k}=${quoteIni(v)}`)
        .join(",")}`,
      "autostart=true",
      "autorestart=true",
      "startsecs=1",
      "startretries=3",
      "stopasgroup=true",
      "killasgroup=true",
      "stopwaitsecs=5",
      `stdout_logfile=${join(d, "supervisord-node.out")}`,
      "redirect_stderr=true",
      "",
    ].join("\n");
    const confFile = join(d, "supervisord.conf");
    writeFileSync(confFile, conf);
    const proc = scratch.spawn("supervisord", bin, ["-n", "-c", confFile]);
    const exited = proc.exited.then(() => {
      throw new Error(`supervisord exited: ${proc.output().slice(-2000)}`);
    });
    await Promise.race([waitFor(() => greeting(port), 30_000, "the node under supervisord to serve"), exited]);
    exited.catch(() => undefined);
    return {
      manager: "supervisord",
      delaySetting: "none (restarts at once; backoff only for failed starts)",
      port,
      samples: [],
      close: async () => {
        await scratch.stop(proc, "SIGTERM", 15_000);
        await scratch.close();
      },
    };
  } catch (err) {
    await scratch.close();
    throw err;
  }
}

/** Spawn to serving for the node program alone, measured with the same probe. */
async function coldStart(runs: number): Promise<Summary> {
  const scratch = new Scratch("restart-cold");
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const port = await freePort();
      const env = await standaloneNodeEnv(port, await freePort());
      const t0 = performance.now();
      const p = scratch.spawn(`cold-${i}`, process.execPath, [CLI, "node"], { env, noLog: true });
      for (;;) {
        if (await greeting(port)) break;
        if (performance.now() - t0 > 30_000) throw new Error("node did not come up within 30 s");
        await sleep(PROBE_INTERVAL_MS);
      }
      samples.push(performance.now() - t0);
      await scratch.stop(p, "SIGKILL");
      await sleep(200);
    }
  } finally {
    await scratch.close();
  }
  return summarize(samples);
}

async function scenario(setups: Array<() => Promise<Target>>, kills: number, uptimeMs: number): Promise<RestartCase[]> {
  const targets: Target[] = [];
  try {
    for (const setup of setups) targets.push(await setup());
    await roundRobin(targets, kills, uptimeMs);
    const cases = targets.map(toCase);
    const ours = targets.find((t) => t.manager === "zmgmt");
    for (const [i, t] of targets.entries()) {
      if (!ours || t === ours) continue;
      cases[i]!.zmgmtMinusThisP50Ms = medianDiffInterval(
        ours.samples.map((x) => x.ms),
        t.samples.map((x) => x.ms),
      );
    }
    return cases;
  } finally {
    for (const t of targets) await t.close();
  }
}

export async function runRestartBench(opts: RestartOptions, log: Logf): Promise<RestartReport> {
  const notes: string[] = [];
  const versions: Record<string, string> = { pm2: pm2Version() };
  const sup = findSupervisord();
  if (sup) versions["supervisord"] = supervisordVersion(sup);

  const coldStartMs = await coldStart(Math.max(3, Math.min(opts.kills, 8)));
  log(`  node program cold start p50 ${coldStartMs.p50} ms`);
  const show = (c: RestartCase): void =>
    log(
      `  restart ${c.manager} (${c.delaySetting}): ${c.skipped ?? `p50 ${c.summary?.p50} ms, p99 ${c.summary?.p99} ms (${c.samplesMs.length} kills)`}`,
    );

  const matched = await scenario(
    [() => zmgmtTarget(0), () => pm2Target(0), ...(sup ? [() => supervisordTarget(sup)] : [])],
    opts.kills,
    1500,
  );
  if (!sup) matched.push({ manager: "supervisord", delaySetting: "-", samplesMs: [], skipped: SUPERVISORD_MISSING });
  matched.forEach(show);

  // With a 1 s setting the managers differ in what the delay means: ours counts it from
  // the previous spawn (a node that ran longer comes back at once), PM2 from the exit.
  // The longer uptime keeps our doubling of the delay (every third revival) from showing.
  const delayed = await scenario([() => zmgmtTarget(1), () => pm2Target(1000)], opts.delayedKills, 2500);
  delayed.push({
    manager: "supervisord",
    delaySetting: "n/a",
    samplesMs: [],
    skipped: "supervisord has no restart-delay setting (startsecs/backoff apply only to failed starts)",
  });
  delayed.forEach(show);
  return { matched, delayed, coldStartMs, versions, notes };
}

export const SUPERVISORD_MISSING = "skipped: supervisord not installed (apt-get install supervisor)";
