// Soak: a real controller and a real agent (supervisor + agent process) running built-in
// nodes, under `clients` clients each looping get-nodes, with a deploy every
// `deployEverySec` seconds that alternates between two configurations (so nodes really
// stop and start). The RSS and open file descriptors of controller, supervisor and agent
// process are sampled every `sampleEverySec` seconds; after the warm-up none may grow by
// more than `maxGrowthMb`.

import { readdirSync } from "node:fs";
import type { ControllerClient } from "../src/client/controller-client.js";
import { connectClient, stageOrThrow, standardConfig, startAgent, startController, waitInstances } from "./lib/cluster.js";
import type { Logf } from "./lib/log.js";
import { cmdline, descendants, memory, round, sleep, Scratch } from "./lib/proc.js";

export interface SoakOptions {
  durationSec: number;
  clients: number;
  deployEverySec: number;
  sampleEverySec: number;
  warmupSec: number;
  maxGrowthMb: number;
}

export interface SoakSample {
  atSec: number;
  rssMb: Record<SoakRole, number>;
  fds: Record<SoakRole, number>;
}

type SoakRole = "controller" | "supervisor" | "agent";
const ROLES: SoakRole[] = ["controller", "supervisor", "agent"];

export interface SoakReport {
  durationSec: number;
  clients: number;
  deployEverySec: number;
  sampleEverySec: number;
  warmupSec: number;
  getNodes: { requests: number; failed: number; perSec: number };
  deploys: { count: number; failed: number; p50Ms: number; maxMs: number };
  /** Per process: RSS and fds at the end of the warm-up, at the end, and the largest rise after the warm-up. */
  growth: Array<{
    role: SoakRole;
    rssAfterWarmupMb: number;
    rssEndMb: number;
    rssMaxMb: number;
    /**
     * Median of the last minute's samples minus the median of the first minute's after the
     * warm-up: growth, not the transient peaks of a deploy (those are in rssMaxMb).
     */
    rssGrowthMb: number;
    /** Least-squares slope of RSS after the warm-up, MB per minute. */
    rssSlopeMbPerMin: number;
    fdsAfterWarmup: number;
    fdsEnd: number;
    fdsMax: number;
  }>;
  samples: SoakSample[];
  maxGrowthMb: number;
  flat: boolean;
  notes: string[];
}

const mb = (kb: number | undefined): number => round((kb ?? 0) / 1024, 1);

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function slope(points: Array<[number, number]>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const num = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

export async function runSoakBench(opts: SoakOptions, log: Logf): Promise<SoakReport> {
  const scratch = new Scratch("soak");
  const notes: string[] = [];
  const clients: ControllerClient[] = [];
  try {
    const controller = await startController(scratch, { requestTimeoutSec: 60, portsNeeded: 16 });
    const agent = await startAgent(scratch, {
      name: "soak-1",
      controller,
      args: ["--request-timeout", "60", "--restart-delay", "1", "--stop-timeout", "5"],
    });
    const admin = await connectClient(controller.port, 120_000);
    clients.push(admin);
    await waitInstances(admin, 1, 60_000);
    // Two configurations that differ in a worker, so every deploy stops or starts a node.
    const configs = [standardConfig(["soak-1"], 2), standardConfig(["soak-1"], 3)];
    let deploys = 0;
    let deployFailed = 0;
    const deployMs: number[] = [];
    const deploy = async (): Promise<void> => {
      const config = configs[deploys % 2]!;
      deploys++;
      const t0 = performance.now();
      try {
        await stageOrThrow(admin, { ...config, id: `${config.id}-${deploys}` });
        const res = await admin.deploy(60_000);
        if (res.some((r) => !r.success)) deployFailed++;
      } catch {
        deployFailed++;
      }
      deployMs.push(performance.now() - t0);
    };
    await deploy();

    const pids = (): Record<SoakRole, number | undefined> => {
      const agentProcess = descendants(agent.proc.pid).find(
        (p) => cmdline(p).includes("agent-process") || cmdline(p).join(" ").startsWith("zmgmt agent "),
      );
      return { controller: controller.proc.pid, supervisor: agent.proc.pid, agent: agentProcess };
    };

    for (let i = 0; i < opts.clients; i++) clients.push(await connectClient(controller.port, 60_000));
    let requests = 0;
    let failed = 0;
    let stop = false;
    const loops = clients.slice(1).map(async (c) => {
      while (!stop) {
        try {
          const res = await c.getNodes();
          if (res.some((r) => !r.success)) failed++;
        } catch {
          failed++;
          await sleep(100);
        }
        requests++;
      }
    });

    const samples: SoakSample[] = [];
    const t0 = performance.now();
    const elapsed = (): number => (performance.now() - t0) / 1000;
    let nextDeploy = opts.deployEverySec;
    let nextSample = 0;
    let deploying: Promise<void> | undefined;
    while (elapsed() < opts.durationSec) {
      const now = elapsed();
      if (now >= nextSample) {
        nextSample += opts.sampleEverySec;
        const p = pids();
        const rssMb = {} as Record<SoakRole, number>;
        const fds = {} as Record<SoakRole, number>;
        for (const role of ROLES) {
          const pid = p[role];
          rssMb[role] = pid !== undefined ? mb(memory(pid)?.rssKb) : 0;
          fds[role] = pid !== undefined ? fdCount(pid) : 0;
        }
        samples.push({ atSec: round(now, 1), rssMb, fds });
        if (samples.length % 12 === 1) {
          log(
            `  soak ${Math.round(now)} s: RSS controller ${rssMb.controller} MB, supervisor ${rssMb.supervisor} MB, agent ${rssMb.agent} MB; ` +
              `${requests} get-nodes, ${deploys} deploys`,
          );
        }
      }
      if (now >= nextDeploy && !deploying) {
        nextDeploy += opts.deployEverySec;
        deploying = deploy().finally(() => (deploying = undefined));
      }
      await sleep(200);
    }
    stop = true;
    await Promise.all(loops);
    await deploying;
    const duration = elapsed();

    const after = samples.filter((s) => s.atSec >= opts.warmupSec);
    const base = after[0] ?? samples.at(-1)!;
    const last = samples.at(-1)!;
    const perMinute = Math.max(1, Math.round(60 / opts.sampleEverySec));
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const growth = ROLES.map((role) => {
      const rss = after.map((s) => s.rssMb[role]);
      const first = med(rss.slice(0, perMinute));
      const lastMinute = med(rss.slice(-perMinute));
      const fd = after.map((s) => s.fds[role]);
      return {
        role,
        rssAfterWarmupMb: base.rssMb[role],
        rssEndMb: last.rssMb[role],
        rssMaxMb: Math.max(...rss),
        rssGrowthMb: round(lastMinute - first, 1),
        rssSlopeMbPerMin: round(slope(after.map((s) => [s.atSec / 60, s.rssMb[role]])), 2),
        fdsAfterWarmup: base.fds[role],
        fdsEnd: last.fds[role],
        fdsMax: Math.max(...fd),
      };
    });
    const flat = growth.every((g) => g.rssGrowthMb <= opts.maxGrowthMb) && growth.every((g) => g.fdsEnd <= g.fdsAfterWarmup + 2);
    const sorted = [...deployMs].sort((a, b) => a - b);
    return {
      durationSec: round(duration, 0),
      clients: opts.clients,
      deployEverySec: opts.deployEverySec,
      sampleEverySec: opts.sampleEverySec,
      warmupSec: opts.warmupSec,
      getNodes: { requests, failed, perSec: round(requests / duration, 1) },
      deploys: {
        count: deploys,
        failed: deployFailed,
        p50Ms: round(sorted[Math.floor(sorted.length / 2)] ?? 0, 0),
        maxMs: round(sorted.at(-1) ?? 0, 0),
      },
      growth,
      samples,
      maxGrowthMb: opts.maxGrowthMb,
      flat,
      notes,
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await scratch.close();
  }
}

export function renderSoak(s: SoakReport, table: (head: string[], rows: Array<Array<string | number>>) => string): string {
  const md: string[] = ["## Soak", ""];
  md.push(
    `${Math.round(s.durationSec / 60)} minutes (${s.durationSec} s) against a real controller and a real agent (supervisor and agent process) running built-in nodes ` +
      `(1 manager + 1 logger + 2 proxies + 2 or 3 workers): ${s.clients} clients each looping get-nodes (${s.getNodes.requests} requests, ${s.getNodes.perSec}/s, ${s.getNodes.failed} failed) ` +
      `and a deploy every ${s.deployEverySec} s alternating between two configurations (${s.deploys.count} deploys, p50 ${s.deploys.p50Ms} ms, max ${s.deploys.maxMs} ms, ${s.deploys.failed} failed). ` +
      `RSS and open file descriptors sampled every ${s.sampleEverySec} s; growth is judged after the first ${s.warmupSec} s: ` +
      `the median RSS of the last minute minus that of the first minute after the warm-up, at most ${s.maxGrowthMb} MB per process, and no fd growth ` +
      "(the highest sample, deploys included, is shown beside it). " +
      `Result: **${s.flat ? "flat" : "growing"}**.`,
    "",
  );
  md.push(
    table(
      [
        "process",
        "RSS after warm-up MB",
        "RSS end MB",
        "RSS max MB",
        "growth MB",
        "slope MB/min",
        "fds after warm-up",
        "fds end",
        "fds max",
      ],
      s.growth.map((g) => [
        g.role,
        g.rssAfterWarmupMb,
        g.rssEndMb,
        g.rssMaxMb,
        g.rssGrowthMb,
        g.rssSlopeMbPerMin,
        g.fdsAfterWarmup,
        g.fdsEnd,
        g.fdsMax,
      ]),
    ),
    "",
  );
  // One row a minute keeps the table readable; every sample is in report.json.
  const perMinute = s.samples.filter((x, i) => i === 0 || Math.floor(x.atSec / 60) !== Math.floor(s.samples[i - 1]!.atSec / 60));
  md.push(
    "RSS in MB (fds) over time, the first sample of each minute:",
    "",
    table(
      ["s", "controller", "supervisor", "agent"],
      perMinute.map((x) => [
        x.atSec,
        `${x.rssMb.controller} (${x.fds.controller})`,
        `${x.rssMb.supervisor} (${x.fds.supervisor})`,
        `${x.rssMb.agent} (${x.fds.agent})`,
      ]),
    ),
  );
  if (s.notes.length) md.push("", ...s.notes.map((n) => `- ${n}`));
  return md.join("\n");
}
