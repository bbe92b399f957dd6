// The report: one JSON document with every measurement, and a Markdown rendering of it.

import type { ControlPlaneReport } from "../control-plane.js";
import { renderSoak, type SoakReport } from "../soak.js";
import type { DeployReport } from "../deploy.js";
import type { RestartReport } from "../restart.js";
import { renderZeekDeploy, type ZeekDeployReport } from "../zeek-deploy.js";
import type { ProfileSummary } from "./profile.js";
import type { Summary } from "./proc.js";

export interface TargetResult {
  id: string;
  target: string;
  measured: string;
  /** true met, false missed, null not evaluated (section skipped, failed or cut short). */
  met: boolean | null;
  note?: string;
}

export interface BenchReport {
  generatedAt: string;
  mode: "full" | "quick";
  durationSec: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    os: string;
    node: string;
    loadAvgStart: number[];
    loadAvgEnd: number[];
    commit?: string;
  };
  versions: Record<string, string>;
  targets: TargetResult[];
  deploy?: DeployReport;
  restart?: RestartReport;
  controlPlane?: ControlPlaneReport;
  zeekDeploy?: ZeekDeployReport;
  soak?: SoakReport;
  errors: Array<{ section: string; error: string }>;
  notes: string[];
}

const f = (v: number | undefined, digits = 1): string => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits));
const pm = (s: Summary | undefined): string => (s && s.n ? `${f(s.p50)} / ${f(s.p99)}` : "-");

function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>): string => `| ${cells.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(head), `|${head.map(() => "---").join("|")}|`, ...rows.map(line)].join("\n");
}

function profileSection(p: ProfileSummary): string {
  const out = [
    `**${p.process}**: ${f(p.busyMs, 0)} ms on CPU in a ${f(p.wallMs, 0)} ms window (GC ${f(p.gcMs, 0)} ms).`,
    "",
    table(
      ["function", "where", "self ms", "self %", "total %"],
      p.top.slice(0, 12).map((t) => [t.fn, t.where || "-", f(t.selfMs, 0), f(t.selfPct), f(t.totalPct)]),
    ),
    "",
    `By module (self time): ${p.modules
      .slice(0, 8)
      .map((m) => `${m.module} ${f(m.pct)}%`)
      .join(", ")}.`,
  ];
  return out.join("\n");
}

export function renderMarkdown(r: BenchReport): string {
  const md: string[] = [];
  md.push("# zmgmt benchmark report", "");
  md.push(
    `Generated ${r.generatedAt} by \`npm run bench\`${r.mode === "quick" ? " in **quick mode** (BENCH_QUICK=1: smaller N, fewer iterations; not for judging targets)" : ""}; ` +
      `the run took ${Math.round(r.durationSec)} s. Every ratio compares against a baseline measured in the same run.`,
    "",
  );
  const m = r.machine;
  md.push(
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GiB, ${m.os}, Node ${m.node}. ` +
      `Load average (1/5/15 min) at start ${m.loadAvgStart.map((v) => v.toFixed(2)).join(" / ")}, at end ${m.loadAvgEnd.map((v) => v.toFixed(2)).join(" / ")}` +
      `${m.commit ? `; commit ${m.commit.slice(0, 12)}${m.commit.includes(" ") ? " with uncommitted changes" : ""}` : ""}. ` +
      `Versions: ${Object.entries(r.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}.`,
    "",
  );

  md.push("## Targets", "");
  md.push(
    table(
      ["target", "measured", "result"],
      r.targets.map((t) => [
        t.target,
        t.measured + (t.note ? ` (${t.note})` : ""),
        t.met === null ? "not evaluated" : t.met ? "**met**" : "**missed**",
      ]),
    ),
    "",
  );
  if (r.errors.length) {
    md.push("## Errors", "", ...r.errors.map((e) => `- ${e.section}: ${e.error}`), "");
  }

  const d = r.deploy;
  if (d) {
    md.push("## Deploy latency", "");
    md.push(
      "Client deploy request to response (the response comes once every agent has seen every node check in, i.e. all RUNNING; " +
        "confirmed with get-nodes afterwards), for 1 manager + 1 logger + 2 proxies + N workers. Floor: the same node processes with " +
        "the same environment and ports, started directly and all at once, until each has bound its listeners. " +
        "Each deploy starts from agents without nodes; deploy and floor runs alternate. Overhead = deploy p50 / floor p50 − 1; paired = each deploy " +
        "against the floor run right after it; the target is judged on the larger of the two. Times in ms.",
      "",
    );
    md.push(
      table(
        ["agents", "N", "nodes", "floor p50", "deploy p50", "deploy/floor", "overhead", "paired overhead p50 (min..max)", "judged", "runs"],
        d.cases.map((c) => [
          c.agents,
          c.workers,
          c.nodes,
          f(c.floorMs.p50, 0),
          f(c.deployMs.p50, 0),
          f(c.ratio, 3),
          `${f(c.overheadPct)}%`,
          `${f(c.pairedOverheadPct.p50)}% (${f(c.pairedOverheadPct.min)}..${f(c.pairedOverheadPct.max)})`,
          `${f(c.judgedOverheadPct)}%`,
          c.deployMs.n,
        ]),
      ),
      "",
    );
    const withTimeline = d.cases.filter((c) => c.timeline && c.workers === Math.max(...d.cases.map((x) => x.workers)));
    for (const c of withTimeline) {
      const t = c.timeline!;
      md.push(
        `Where the last N=${c.workers} deploy with ${c.agents} agent(s) spent its ${f(t.totalMs, 0)} ms (from the management logs; ms resolution): ` +
          `create requests reached the supervisor(s) from ${f(t.creates.firstMs, 0)} to ${f(t.creates.lastMs, 0)} ms, nodes ` +
          `checked in from ${f(t.checkIns.firstMs, 0)} (median ${f(t.checkIns.p50Ms, 0)}) to ${f(t.checkIns.lastMs, 0)} ms.`,
        "",
        table(
          ["phase", "ms"],
          t.segments.map((s) => [s.name, f(s.ms, 0)]),
        ),
        "",
      );
    }
    if (d.memory.idle || d.memory.loaded) {
      md.push("### Memory (1 agent)", "");
      const rows: Array<Array<string | number>> = [];
      for (const [label, s] of [
        ["idle (no nodes)", d.memory.idle],
        [`with ${d.memory.loaded?.nodes ?? "?"} nodes`, d.memory.loaded],
      ] as const) {
        if (!s) continue;
        rows.push([
          label,
          f(s.controllerRssMb),
          f(s.supervisorRssMb),
          f(s.agentProcessRssMb),
          f(s.agentTotalRssMb),
          s.nodesRssMb !== undefined ? f(s.nodesRssMb) : "-",
        ]);
      }
      md.push(
        table(["state", "controller RSS MB", "supervisor RSS MB", "agent process RSS MB", "agent total MB", "all nodes MB"], rows),
        "",
      );
    }
    if (d.profile) {
      md.push(
        "### Profile of the deploy miss",
        "",
        `${d.profile.reason}. CPU profiles of the management processes over the measured deploy:`,
        "",
      );
      for (const p of d.profile.processes) md.push(profileSection(p), "");
      if (d.profile.timeline) {
        md.push(
          "Timeline of the profiled deploy:",
          "",
          table(
            ["phase", "ms"],
            d.profile.timeline.segments.map((s) => [s.name, f(s.ms, 0)]),
          ),
          "",
        );
      }
    }
    if (d.notes.length) md.push(...d.notes.map((n) => `- ${n}`), "");
  }

  if (r.zeekDeploy) md.push(...renderZeekDeploy(r.zeekDeploy));

  const rs = r.restart;
  if (rs) {
    md.push("## Crash-restart latency", "");
    md.push(
      "SIGKILL of a node to its cluster port serving again (a TCP connection that yields the node's greeting from a new pid; probed every 2 ms). " +
        "The same program (`zmgmt node`, environment as our agent gives a manager node, metrics port included) under each manager; " +
        "each process has been up at least 1.5 s before it is killed, and the managers take turns, one kill each per round. Times in ms.",
      "",
    );
    const zm = rs.matched.find((c) => c.manager === "zmgmt");
    const rowsFor = (cases: RestartReport["matched"]): Array<Array<string | number>> =>
      cases.map((c) => [
        c.manager,
        c.delaySetting,
        c.skipped ?? pm(c.summary),
        c.skipped ? "-" : f(c.summary?.min),
        c.skipped ? "-" : f(c.summary?.max),
        c.skipped || !zm?.summary || !c.summary ? "-" : f(zm.summary.p50 / c.summary.p50, 2),
        c.zmgmtMinusThisP50Ms ? `${f(c.zmgmtMinusThisP50Ms.low, 0)} .. ${f(c.zmgmtMinusThisP50Ms.high, 0)}` : "-",
        c.samplesMs.length,
      ]);
    md.push(
      "Matched setting (the comparison the target is judged on): every manager restarts without delay. " +
        "The CI column is a bootstrap interval of the difference of medians; one that spans 0 means the samples cannot tell the two apart.",
      "",
    );
    md.push(
      table(
        ["manager", "restart delay setting", "p50 / p99", "min", "max", "zmgmt p50 / this p50", "zmgmt − this, p50 ms (95% CI)", "kills"],
        rowsFor(rs.matched),
      ),
      "",
    );
    md.push(
      `For reference, the node program alone (spawned directly, until it serves): p50 ${f(rs.coldStartMs.p50, 0)} ms, p99 ${f(rs.coldStartMs.p99, 0)} ms. ` +
        (zm?.phases
          ? `Under our agent the supervisor logged the exit p50 ${f(zm.phases.exitNoticedMs.p50, 0)} ms and the respawn p50 ${f(zm.phases.respawnedMs.p50, 0)} ms after the kill; ` +
            `the new process then took p50 ${f(zm.phases.respawnToServingMs.p50, 0)} ms to serve.`
          : ""),
      "",
    );
    md.push("With a 1 s setting (informational):", "");
    md.push(
      table(
        ["manager", "restart delay setting", "p50 / p99", "min", "max", "zmgmt p50 / this p50", "zmgmt − this, p50 ms (95% CI)", "kills"],
        rowsFor(rs.delayed),
      ),
      "",
    );
    md.push(
      "What the settings mean: our `--restart-delay` is the first revival delay counted from the previous spawn (a node that ran longer than the delay is revived at once; " +
        "the delay doubles every third revival and resets after 30 s of uptime). PM2's `restart_delay` is a fixed wait after every exit. " +
        "supervisord has no such setting: it respawns a process that exited after `startsecs` on its next main-loop pass (its loop polls with a 1 s timeout, " +
        "which is where most of its latency comes from), and backs off only for processes that fail during start-up.",
      "",
    );
    if (rs.notes.length) md.push(...rs.notes.map((n) => `- ${n}`), "");
  }

  const cp = r.controlPlane;
  if (cp) {
    md.push("## Control plane", "");
    md.push(
      `Round trips from a client (the project's ControllerClient) through a real controller process to simulated agents: real WebSocket peers in one helper process, ` +
        `each answering the agent API with one or a few nodes (the configuration deployed to them is 1 manager + 1 logger + 2 proxies + one worker per agent). ` +
        `Baseline: a bare WebSocket echo of a ${cp.echo.frameBytes}-byte request frame, p50 ${f(cp.echo.latencyMs.p50, 2)} ms, p99 ${f(cp.echo.latencyMs.p99, 2)} ms. ` +
        "Latency in ms (p50 / p99), sequential; throughput with 8 requests in flight. CPU 100% = one core.",
      "",
    );
    md.push(
      table(
        [
          "agents",
          "get-nodes p50 / p99",
          "× echo p50",
          "query floor ms",
          "× floor",
          "req/s",
          "get-id-value p50 / p99",
          "× echo p50",
          "req/s",
          "controller CPU ms/req (get-nodes)",
          "controller CPU %",
          "simulator CPU %",
        ],
        cp.sizes.map((s) => [
          s.agents,
          pm(s.getNodes.latencyMs),
          f(s.getNodes.latencyMs.p50 / cp.echo.latencyMs.p50, 0),
          f(s.queryFloorMs, 2),
          f(s.getNodesPerFloor, 1),
          f(s.getNodes.throughputRps),
          pm(s.getIdValue.latencyMs),
          f(s.getIdValue.latencyMs.p50 / cp.echo.latencyMs.p50, 0),
          f(s.getIdValue.throughputRps),
          f(s.getNodes.controllerCpuMsPerRequest, 2),
          f(s.getNodes.controllerCpuPct),
          f(s.getNodes.simulatorCpuPct),
        ]),
      ),
      "",
    );
    md.push(
      table(
        [
          "agents",
          "connect ms",
          "deploy ms",
          "deploy floor ms",
          "deploy / floor",
          "deploy with come-up check ms",
          "first deploy (welcomes) ms",
          "deploy frame KB",
          "RSS connected MB",
          "RSS deployed MB",
          "RSS during queries (max) MB",
          "peak RSS (VmHWM) MB",
          "idle CPU %",
        ],
        cp.sizes.map((s) => [
          s.agents,
          f(s.connectMs, 0),
          f(s.deployMs, 0),
          f(s.deployFloorMs, 0),
          f(s.deployPerFloor, 2),
          f(s.deployCheckedMs, 0),
          f(s.firstDeployMs, 0),
          f(s.deployFrameBytes / 1024, 0),
          f(s.controller.rssConnectedMb),
          f(s.controller.rssDeployedMb),
          f(s.controller.rssQueriesMaxMb),
          f(s.controller.hwmMb),
          f(s.controller.cpuIdlePct),
        ]),
      ),
      "",
    );
    if (cp.profile) {
      const p = cp.profile;
      md.push(
        "### Profile of the control plane",
        "",
        `${p.reason}. A second run at ${p.agents} agents with the controller under \`--cpu-prof\` (summarized per phase) and an inspector on loopback:`,
        "",
      );
      for (const c of p.cpu) md.push(profileSection(c), "");
      if (p.memory.length) {
        md.push(
          "Memory of the controller, RSS as sampled and then after a forced full GC (process.memoryUsage()):",
          "",
          table(
            ["when", "RSS MB", "after GC: RSS MB", "heap total MB", "heap used MB", "external MB"],
            p.memory.map((x) => [
              x.when,
              f(x.rssBeforeGcMb),
              f(x.afterGc.rssMb),
              f(x.afterGc.heapTotalMb),
              f(x.afterGc.heapUsedMb),
              f(x.afterGc.externalMb),
            ]),
          ),
          "",
        );
      }
      if (p.heap) {
        md.push(
          `Live heap after the queries (heap snapshot, ${f(p.heap.totalMb)} MB in total), largest kinds by own size:`,
          "",
          table(
            ["kind", "name", "count", "MB", "%"],
            p.heap.top.slice(0, 10).map((h) => [h.type, h.name || "-", h.count, f(h.selfMb, 2), f(h.pct)]),
          ),
          "",
        );
      }
    }
    if (cp.notes.length) md.push(...cp.notes.map((n) => `- ${n}`), "");
  }
  if (r.soak) md.push(renderSoak(r.soak, table), "");

  if (r.notes.length) md.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  return md.join("\n");
}
