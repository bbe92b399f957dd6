// `npm run bench`: deploy latency, crash-restart latency and control-plane latency and
// memory, each against a baseline measured in the same run; writes bench/report.json and
// bench/report.md. BENCH_QUICK=1 makes a short smoke run (smaller N, fewer iterations);
// BENCH_ONLY=deploy,restart,control,zeek-deploy (or --only ...) runs a subset and merges its
// sections into the existing report. --zeek PATH picks the Zeek for the real-Zeek section.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { join } from "node:path";
import { runControlPlaneBench, type ControlPlaneOptions } from "./control-plane.js";
import { runSoakBench, type SoakOptions } from "./soak.js";
import { runDeployBench, type DeployOptions } from "./deploy.js";
import { DEFAULT_DEPLOY_CHECK_DELAY_MS } from "../src/controller/api.js";
import { logf } from "./lib/log.js";
import { CLI, REPO, Scratch, round } from "./lib/proc.js";
import { renderMarkdown, type BenchReport, type TargetResult } from "./lib/report.js";
import { findSupervisord, pm2Version, runRestartBench, supervisordVersion, SUPERVISORD_MISSING, type RestartOptions } from "./restart.js";
import { runZeekDeployBench, zeekDeployTarget, ZEEK_DEPLOY_TARGET_ID, type ZeekDeployOptions } from "./zeek-deploy.js";

const QUICK = process.env["BENCH_QUICK"] === "1";
function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const SECTIONS = ["deploy", "restart", "control", "zeek-deploy", "soak"];
const ONLY = new Set((flag("--only") ?? process.env["BENCH_ONLY"] ?? SECTIONS.join(",")).split(",").map((s) => s.trim()));

const TARGET_DEPLOY_OVERHEAD_PCT = 10;
const TARGET_GET_NODES_P50_MS = 20;
const TARGET_CONTROLLER_RSS_MB = 150;
const TARGET_AGENTS = 1000;
const TARGET_GET_NODES_P99_MS = 50;
/** Today's (before the fix) get-nodes throughput at 1,000 agents, 8 in flight; the target is 10x. */
const BASELINE_GET_NODES_RPS = 8.8;
const TARGET_DEPLOY_MS = 2000;
const TARGET_DEPLOY_PER_FLOOR = 2;
const TARGET_SOAK_GROWTH_MB = 5;
const TARGET_N = 64;

const deployOptions: DeployOptions = QUICK
  ? { workers: [4, 16], agentCounts: [1, 4], iterations: () => 2, targetOverheadPct: TARGET_DEPLOY_OVERHEAD_PCT }
  : {
      workers: [4, 16, TARGET_N],
      agentCounts: [1, 4],
      // N=64 is CPU-bound on a small machine (each node start costs ~0.5 s of CPU), so
      // its runs are long and fewer.
      iterations: (n) => (n >= 64 ? 5 : n >= 16 ? 4 : 6),
      targetOverheadPct: TARGET_DEPLOY_OVERHEAD_PCT,
    };

const zeekOptions: ZeekDeployOptions = {
  workers: process.env["BENCH_ZEEK_WORKERS"]?.split(",").map(Number) ?? (QUICK ? [4] : [4, 16]),
  // Each N=16 run starts 60 Zeek processes across the three variants (about 1 s of CPU each).
  iterations: QUICK ? () => 2 : () => 5,
  ...((): { zeek?: string } => {
    const z = flag("--zeek");
    return z ? { zeek: z } : {};
  })(),
  captureLo: process.env["BENCH_ZEEK_CAPTURE_LO"] === "1",
};

const restartOptions: RestartOptions = QUICK ? { kills: 4, delayedKills: 2 } : { kills: 20, delayedKills: 3 };

const CONTROL_SIZES = flag("--control-sizes")?.split(",").map(Number);
const baseControlOptions: ControlPlaneOptions = QUICK
  ? {
      sizes: [1, 10, 100],
      requests: () => 50,
      warmup: 5,
      throughputMs: 500,
      concurrency: 8,
      targetP50Ms: TARGET_GET_NODES_P50_MS,
      targetRssMb: TARGET_CONTROLLER_RSS_MB,
    }
  : {
      sizes: [1, 10, 100, TARGET_AGENTS],
      // A round trip at 1,000 agents is slow enough that 40 samples already take a while.
      requests: (a) => (a >= 1000 ? 60 : a >= 100 ? 200 : 400),
      warmup: 5,
      throughputMs: 3000,
      concurrency: 8,
      targetP50Ms: TARGET_GET_NODES_P50_MS,
      targetRssMb: TARGET_CONTROLLER_RSS_MB,
    };
// --control-sizes 1000 measures only the named sizes (for iterating on one size).
const controlOptions: ControlPlaneOptions = CONTROL_SIZES ? { ...baseControlOptions, sizes: CONTROL_SIZES } : baseControlOptions;

const soakOptions: SoakOptions = {
  // --soak-duration SECONDS shortens the soak for iterating; the report's figure is a 10-minute run.
  durationSec: Number(flag("--soak-duration") ?? (QUICK ? 120 : 600)),
  clients: 20,
  deployEverySec: 15,
  sampleEverySec: 5,
  warmupSec: 60,
  maxGrowthMb: TARGET_SOAK_GROWTH_MB,
};

/** HEAD, marked when tracked files differ from it (the run measured what was built). */
function commit(): string | undefined {
  const git = (...args: string[]): string =>
    execFileSync("git", args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const head = git("rev-parse", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") ? `${head} (with uncommitted changes)` : head;
  } catch {
    return undefined;
  }
}

function evaluateTargets(r: BenchReport): TargetResult[] {
  const out: TargetResult[] = [];
  const quickNote = QUICK ? "quick run: smaller sizes than the target names" : undefined;

  const cases = r.deploy?.cases ?? [];
  const n = cases.length ? Math.max(...cases.map((c) => c.workers)) : undefined;
  const atN = cases.filter((c) => c.workers === n);
  const worst = [...atN].sort((a, b) => b.judgedOverheadPct - a.judgedOverheadPct)[0];
  out.push({
    id: "deploy-overhead",
    target: `deploy overhead under ${TARGET_DEPLOY_OVERHEAD_PCT}% over the floor at N=${TARGET_N}`,
    measured: worst
      ? atN.map((c) => `${c.judgedOverheadPct}% with ${c.agents} agent(s)`).join(", ") +
        ` at N=${n} (the larger of p50 deploy / p50 floor and the median of paired runs)`
      : "not measured",
    met: worst && n === TARGET_N ? worst.judgedOverheadPct < TARGET_DEPLOY_OVERHEAD_PCT : null,
    ...(quickNote && worst ? { note: quickNote } : {}),
  });

  const m = r.restart?.matched ?? [];
  const ours = m.find((c) => c.manager === "zmgmt")?.summary;
  const others = m.filter((c) => c.manager !== "zmgmt");
  const measured = others.map((c) => (c.skipped ? `${c.manager}: ${c.skipped}` : `${c.manager} p50 ${c.summary?.p50} ms`));
  const comparable = others.filter((c) => !c.skipped && c.summary);
  const ties = comparable.filter((c) => c.zmgmtMinusThisP50Ms && c.zmgmtMinusThisP50Ms.low <= 0 && c.zmgmtMinusThisP50Ms.high >= 0);
  const notes: string[] = [];
  if (others.some((c) => c.skipped === SUPERVISORD_MISSING)) notes.push("supervisord not installed, so only partly evaluated");
  if (ties.length) {
    notes.push(
      `judged on p50; the difference to ${ties.map((c) => `${c.manager} (95% CI ${c.zmgmtMinusThisP50Ms!.low}..${c.zmgmtMinusThisP50Ms!.high} ms)`).join(", ")} is within the noise of this run`,
    );
  }
  out.push({
    id: "restart-latency",
    target: "crash-restart latency below both PM2 and supervisord",
    measured: ours ? [`zmgmt p50 ${ours.p50} ms`, ...measured].join(", ") : "not measured",
    met:
      ours && comparable.length === 2
        ? comparable.every((c) => ours.p50 < c.summary!.p50)
        : ours && comparable.some((c) => ours.p50 >= c.summary!.p50)
          ? false
          : null,
    ...(notes.length ? { note: notes.join("; ") } : {}),
  });

  const sizes = r.controlPlane?.sizes ?? [];
  const big = sizes.at(-1);
  const full = big?.agents === TARGET_AGENTS;
  const echoP50 = r.controlPlane?.echo.latencyMs.p50 ?? 0;
  const x = (v: number): string => (echoP50 > 0 ? ` (${Math.round(v / echoP50)}x the echo's ${echoP50} ms)` : "");
  out.push({
    id: "get-nodes-p50",
    target:
      `get-nodes and get-id-value p50 at ${TARGET_AGENTS} agents under ${TARGET_GET_NODES_P50_MS} ms, p99 under ${TARGET_GET_NODES_P99_MS} ms, ` +
      `get-nodes throughput with 8 in flight at least ${BASELINE_GET_NODES_RPS * 10} req/s (10x ${BASELINE_GET_NODES_RPS})`,
    measured: big
      ? `get-nodes p50 ${big.getNodes.latencyMs.p50} ms${x(big.getNodes.latencyMs.p50)}, p99 ${big.getNodes.latencyMs.p99} ms, ${big.getNodes.throughputRps} req/s; ` +
        `get-id-value p50 ${big.getIdValue.latencyMs.p50} ms${x(big.getIdValue.latencyMs.p50)}, p99 ${big.getIdValue.latencyMs.p99} ms, ${big.getIdValue.throughputRps} req/s; at ${big.agents} agents; ` +
        `query floor (a get_nodes_request frame written to as many plain peers, each answering) ${big.queryFloorMs} ms, get-nodes ${big.getNodesPerFloor}x that`
      : "not measured",
    met:
      big && full
        ? big.getNodes.latencyMs.p50 < TARGET_GET_NODES_P50_MS &&
          big.getIdValue.latencyMs.p50 < TARGET_GET_NODES_P50_MS &&
          big.getNodes.latencyMs.p99 < TARGET_GET_NODES_P99_MS &&
          big.getIdValue.latencyMs.p99 < TARGET_GET_NODES_P99_MS &&
          big.getNodes.throughputRps >= BASELINE_GET_NODES_RPS * 10
        : null,
    ...(quickNote && big ? { note: quickNote } : {}),
  });
  out.push({
    id: "controller-rss",
    target: `controller under ${TARGET_CONTROLLER_RSS_MB} MB RSS at ${TARGET_AGENTS} agents while serving queries`,
    measured: big
      ? `${big.controller.rssQueriesMaxMb} MB (highest sample while serving queries) at ${big.agents} agents; ${big.controller.hwmMb} MB peak including the deploy`
      : "not measured",
    met: big && full ? big.controller.rssQueriesMaxMb < TARGET_CONTROLLER_RSS_MB : null,
    ...(quickNote && big ? { note: quickNote } : {}),
  });
  out.push({
    id: "deploy-1000-agents",
    target: `deploy to ${TARGET_AGENTS} agents under ${TARGET_DEPLOY_MS} ms or within ${TARGET_DEPLOY_PER_FLOOR}x the floor (the same deploy frames, already encoded, written to as many WebSocket peers), whichever is larger`,
    measured: big
      ? `${big.deployMs} ms at ${big.agents} agents; floor ${big.deployFloorMs} ms (${big.deployPerFloor}x); ${Math.round(big.deployFrameBytes / 1024)} KB per agent's frame; ` +
        `${big.deployCheckedMs} ms with the default come-up check (a deliberate ${DEFAULT_DEPLOY_CHECK_DELAY_MS} ms wait, then get-nodes to every agent)`
      : "not measured",
    met: big && full ? big.deployMs < Math.max(TARGET_DEPLOY_MS, TARGET_DEPLOY_PER_FLOOR * big.deployFloorMs) : null,
    ...(big
      ? {
          note: [
            "the fan-out is judged with the come-up check off for that request (deploy --no-rollback), as the floor checks nothing; both figures are measured",
            ...(quickNote ? [quickNote] : []),
          ].join("; "),
        }
      : {}),
  });
  const soak = r.soak;
  out.push({
    id: "soak-flat-memory",
    target: `soak of 10 minutes (20 clients looping get-nodes, a deploy every 15 s, real agent and nodes): controller, agent and supervisor RSS grow at most ${TARGET_SOAK_GROWTH_MB} MB after the first minute, fds do not grow`,
    measured: soak
      ? `${soak.durationSec} s: ` +
        soak.growth
          .map(
            (g) =>
              `${g.role} +${g.rssGrowthMb} MB (${g.rssAfterWarmupMb} -> ${g.rssEndMb} MB, ${g.rssSlopeMbPerMin} MB/min), fds ${g.fdsAfterWarmup} -> ${g.fdsEnd}`,
          )
          .join("; ")
      : "not measured",
    met: soak ? (soak.durationSec >= 590 ? soak.flat : soak.flat ? null : false) : null,
    ...(soak && soak.durationSec < 590 ? { note: "shorter than 10 minutes, so not judged unless it already grew" } : {}),
  });
  out.push(zeekDeployTarget(r.zeekDeploy));
  return out;
}

/** Which targets each section measures, so that a subset run keeps the others' verdicts. */
const SECTION_TARGETS: Record<string, string[]> = {
  deploy: ["deploy-overhead"],
  restart: ["restart-latency"],
  control: ["get-nodes-p50", "controller-rss", "deploy-1000-agents"],
  soak: ["soak-flat-memory"],
  "zeek-deploy": [ZEEK_DEPLOY_TARGET_ID],
};
/** As the sections name themselves in `errors`. */
const SECTION_TITLES: Record<string, string> = {
  deploy: "deploy latency",
  restart: "crash-restart latency",
  control: "control plane",
  "zeek-deploy": "real Zeek deploy latency",
  soak: "soak",
};
const SECTION_FIELDS: Record<string, "deploy" | "restart" | "controlPlane" | "zeekDeploy" | "soak"> = {
  deploy: "deploy",
  restart: "restart",
  control: "controlPlane",
  "zeek-deploy": "zeekDeploy",
  soak: "soak",
};

/**
 * A subset run replaces only its own sections (and their targets and errors) in the
 * existing report, so measuring one section does not discard the others.
 */
function mergeIntoExisting(fresh: BenchReport, ran: string[], path: string): BenchReport {
  const sectionNames = ran.map((k) => SECTION_TITLES[k]!);
  let old: BenchReport;
  try {
    old = JSON.parse(readFileSync(path, "utf8")) as BenchReport;
  } catch {
    return fresh;
  }
  const merged: BenchReport = { ...old, errors: old.errors.filter((e) => !sectionNames.includes(e.section)).concat(fresh.errors) };
  for (const key of ran) {
    const field = SECTION_FIELDS[key];
    if (!field) continue;
    if (fresh[field] !== undefined) (merged as unknown as Record<string, unknown>)[field] = fresh[field];
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- sections are optional report keys; one that ran and produced nothing is dropped
    else delete merged[field];
  }
  const ranTargets = new Set(ran.flatMap((k) => SECTION_TARGETS[k] ?? []));
  const oldTargets = new Map(old.targets.map((t) => [t.id, t]));
  merged.targets = evaluateTargets(merged).map((t) => (!ranTargets.has(t.id) && oldTargets.has(t.id) ? oldTargets.get(t.id)! : t));
  const m = fresh.machine;
  const tag = (k: string): string => `The ${k} section was measured separately`;
  merged.notes = old.notes.filter((n) => !ran.some((k) => n.startsWith(tag(k))));
  for (const k of ran) {
    merged.notes.push(
      `${tag(k)} (${fresh.generatedAt}, ${fresh.mode} mode${m.commit ? `, commit ${m.commit.slice(0, 12)}${m.commit.includes(" ") ? " with uncommitted changes" : ""}` : ""}, ` +
        `load average ${m.loadAvgStart[0]} at start, ${m.loadAvgEnd[0]} at end) and merged into this report.`,
    );
  }
  return merged;
}

async function main(): Promise<number> {
  if (!existsSync(CLI)) {
    logf(`the built CLI is missing (${CLI}); run \`npm run build\` first (npm run bench does)`);
    return 2;
  }
  const started = Date.now();
  const c = cpus();
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    mode: QUICK ? "quick" : "full",
    durationSec: 0,
    machine: {
      cpus: c.length,
      cpuModel: c[0]?.model.trim() ?? "unknown",
      memoryGb: round(totalmem() / 1024 ** 3, 1),
      os: `${type()} ${release()}`,
      node: process.versions.node,
      loadAvgStart: loadavg().map((v) => round(v, 2)),
      loadAvgEnd: [],
      ...((): { commit?: string } => {
        const c = commit();
        return c ? { commit: c } : {};
      })(),
    },
    versions: {
      pm2: pm2Version(),
      supervisord: findSupervisord() ? supervisordVersion(findSupervisord()!) : "not installed",
    },
    targets: [],
    errors: [],
    notes: [],
  };
  if (report.machine.loadAvgStart[0]! > c.length) {
    report.notes.push(
      `The machine was already busy when the run started (1-minute load ${report.machine.loadAvgStart[0]} on ${c.length} cores); ` +
        "latencies that depend on process start-up are inflated by other work on the host.",
    );
  }
  logf(`zmgmt benchmark (${report.mode} run), results go to bench/report.{json,md}`);

  const section = async (name: string, key: string, f: () => Promise<void>): Promise<void> => {
    if (!ONLY.has(key)) return;
    logf(`${name}...`);
    const t0 = Date.now();
    try {
      await f();
    } catch (err) {
      const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
      logf(`${name} failed: ${msg}`);
      report.errors.push({ section: name, error: err instanceof Error ? err.message : String(err) });
    }
    logf(`${name} done in ${Math.round((Date.now() - t0) / 1000)} s`);
  };

  await section("deploy latency", "deploy", async () => {
    report.deploy = await runDeployBench(deployOptions, logf);
  });
  await section("crash-restart latency", "restart", async () => {
    report.restart = await runRestartBench(restartOptions, logf);
  });
  await section("control plane", "control", async () => {
    report.controlPlane = await runControlPlaneBench(controlOptions, logf);
  });
  await section("real Zeek deploy latency", "zeek-deploy", async () => {
    report.zeekDeploy = await runZeekDeployBench(zeekOptions, report.mode, logf);
  });

  await section("soak", "soak", async () => {
    report.soak = await runSoakBench(soakOptions, logf);
  });

  report.machine.loadAvgEnd = loadavg().map((v) => round(v, 2));
  report.durationSec = Math.round((Date.now() - started) / 1000);
  report.targets = evaluateTargets(report);
  report.notes.push(
    Scratch.forced.length
      ? `Teardown: ${Scratch.forced.length} scratch director(ies) still had processes after SIGTERM; they were SIGKILLed: ` +
          Scratch.forced.map((f) => `${f.dir.split("/").pop()} (${f.pids.length})`).join(", ")
      : "Teardown: every process the benchmark started exited on SIGTERM; none was left behind.",
  );
  report.notes.push(
    `All processes share this machine's ${c.length} cores: the benchmark's own client, probes and simulated agents run beside the system under test.`,
  );
  const dir = join(REPO, "bench");
  const ran = SECTIONS.filter((s) => ONLY.has(s));
  const out = ran.length < SECTIONS.length ? mergeIntoExisting(report, ran, join(dir, "report.json")) : report;
  writeFileSync(join(dir, "report.json"), JSON.stringify(out, null, 2) + "\n");
  writeFileSync(join(dir, "report.md"), renderMarkdown(out) + "\n");
  for (const t of out.targets) logf(`target: ${t.target}: ${t.measured} -> ${t.met === null ? "not evaluated" : t.met ? "met" : "MISSED"}`);
  logf(`wrote bench/report.json and bench/report.md in ${report.durationSec} s`);
  return report.errors.length ? 1 : 0;
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    logf(`${sig}: stopping every process the benchmark started`);
    Scratch.killAllNow();
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    logf(`benchmark crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    Scratch.killAllNow();
    process.exit(1);
  },
);
