// Real Zeek clusters end to end: a controller and an agent running real `zeek` processes as
// the manager, logger, proxy and workers, driven by the stock zeek-client as an operator
// would drive it. Skips with a printed reason where Zeek or zeek-client is missing, except
// in CI, where that is a failure.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, get as httpGet, type Server } from "node:http";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { CLI, TestEnv, killGroup, pidAlive, processesUnder, upArgs, type Proc } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { contribMetricNames } from "./helpers/contrib.js";
import { locateZeek, locateZeekClientOrSkip, zeekClient, type ClientRun } from "./helpers/zeek.js";

const zeek = locateZeek();
const client = locateZeekClientOrSkip();
const canRun = zeek !== undefined && client !== undefined;
const ZEEK = zeek ?? "";
const CLIENT = client ?? "";
/** Capturing on `lo` needs root (or capabilities Zeek's binary does not have here). */
const canCapture = process.getuid?.() === 0;
const AGENT = "agent-zeek";

interface NodeView {
  state: string;
  pid?: number;
  port?: number;
  metrics_port?: number;
  cluster_role?: string | null;
}

function clusterIni(nodes: string): string {
  return `[instances]\n${AGENT}\n\n${nodes}`;
}

function nodeSection(name: string, role: string, extra: Record<string, string> = {}): string {
  const lines = [`[${name}]`, `instance = ${AGENT}`, `role = ${role}`, ...Object.entries(extra).map(([k, v]) => `${k} = ${v}`)];
  return `${lines.join("\n")}\n\n`;
}

function isZeekProcess(pid: number): boolean {
  try {
    return /\/zeek$/.test(readlinkSync(`/proc/${pid}/exe`)) || readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "zeek";
  } catch {
    return false;
  }
}

/** One request on a connection of its own, closed after the answer, so Zeek sees it end. */
function httpGetOnce(port: number, path: string): Promise<void> {
  return new Promise((resolveGet, reject) => {
    const req = httpGet({ host: "127.0.0.1", port, path, agent: false, headers: { connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => resolveGet());
    });
    req.on("error", reject);
  });
}

function nodesOf(run: ClientRun): Record<string, NodeView> {
  const results = (run.json as { results?: Record<string, Record<string, NodeView>> } | undefined)?.results ?? {};
  return results[AGENT] ?? {};
}

// Each step runs zeek-client (a Python process) a few times against ten Zeek processes; on a
// loaded 2-core machine a step takes well over the default minute.
describe.skipIf(!canRun)("a real Zeek cluster", { timeout: 180_000 }, () => {
  let env: TestEnv;
  let controllerPort = 0;
  let agentProc: Proc;
  let stateDir = "";
  const zc = (args: string[], timeoutMs?: number): Promise<ClientRun> => zeekClient(CLIENT, controllerPort, args, timeoutMs);

  async function clusterNodes(): Promise<Record<string, NodeView>> {
    const run = await zc(["get-nodes"]);
    const nodes = nodesOf(run);
    return Object.fromEntries(Object.entries(nodes).filter(([, n]) => n.cluster_role));
  }

  beforeAll(async () => {
    env = new TestEnv("zmgmt-zeek-");
    // A site script of the test's own: loopback traffic carries checksums the kernel never
    // filled in, which Zeek would otherwise discard.
    writeFileSync(join(env.dir, "test-site.zeek"), "redef ignore_checksums = T;\n");
    // Rotation every few seconds instead of hourly, so archival can be watched.
    writeFileSync(join(env.dir, "rotate-fast.zeek"), "redef Log::default_rotation_interval = 3 secs;\n");
    const controller = await env.startController({ requestTimeoutSec: 30 });
    controllerPort = controller.port;
    const agent = await env.startAgent({
      name: AGENT,
      controllerPort,
      extraArgs: [
        "--zeek",
        ZEEK,
        "--request-timeout",
        "20",
        "--restart-delay",
        "0.5",
        "--stop-timeout",
        "10",
        "--log-archive-interval",
        "1",
      ],
    });
    agentProc = agent.proc;
    stateDir = agent.stateDir;
    await eventually(async () => AGENT in (((await zc(["get-instances"])).json as object | undefined) ?? {}), 20_000, "agent to check in");
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  it("deploys manager, logger, proxy and two workers from an INI file, all RUNNING as zeek processes", async () => {
    const worker: Record<string, string> = canCapture ? { interface: "lo", scripts: `local ${join(env.dir, "test-site.zeek")}` } : {};
    const ini = clusterIni(
      nodeSection("manager", "manager") +
        nodeSection("logger", "logger", { scripts: `local ${join(env.dir, "rotate-fast.zeek")}` }) +
        nodeSection("proxy", "proxy") +
        nodeSection("worker-01", "worker", worker) +
        nodeSection("worker-02", "worker", worker),
    );
    const file = join(env.dir, "cluster.ini");
    writeFileSync(file, ini);
    const deployed = await zc(["deploy-config", file]);
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    const results = (deployed.json as { results: { nodes: Record<string, { success: boolean }> } }).results;
    expect(Object.keys(results.nodes).sort()).toEqual(["logger", "manager", "proxy", "worker-01", "worker-02"]);
    expect(Object.values(results.nodes).every((n) => n.success)).toBe(true);

    const nodes = await clusterNodes();
    expect(Object.keys(nodes).sort()).toEqual(["logger", "manager", "proxy", "worker-01", "worker-02"]);
    for (const [name, n] of Object.entries(nodes)) {
      expect(n.state, name).toBe("RUNNING");
      expect(n.pid, name).toBeGreaterThan(0);
      expect(isZeekProcess(n.pid!), `${name} (pid ${n.pid}) is a zeek process`).toBe(true);
      expect(n.metrics_port, name).toBeGreaterThan(0);
    }
    expect(nodes["manager"]!.port).toBeGreaterThan(0);
    // Each node runs in its own directory with the layout Zeek's cluster framework loaded.
    const layout = readFileSync(join(stateDir, "nodes", "worker-01", "cluster-layout.zeek"), "utf8");
    expect(layout).toContain('["manager"] = [$node_type=Cluster::MANAGER');
    expect(layout).toContain("redef Cluster::manager_is_logger = F;");
  });

  it("re-deploys an identical configuration without restarting any node", async () => {
    const before = await clusterNodes();
    const again = await zc(["deploy-config", join(env.dir, "cluster.ini")]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const after = await clusterNodes();
    for (const [name, n] of Object.entries(before)) expect(after[name]?.pid, name).toBe(n.pid);
    const deployedId = ((await zc(["get-config", "--deployed", "--as-json"])).json as { id: string }).id;
    expect(deployedId).toBe((again.json as { results: { id: string } }).results.id);
  });

  it("answers get-id-value for real identifiers exactly as upstream does", async () => {
    const interval = await zc(["get-id-value", "Log::default_rotation_interval", "manager"]);
    expect(interval.code).toBe(0);
    expect(interval.json).toEqual({ errors: [], results: { manager: "1.0 day" } });

    const count = await zc(["get-id-value", "Pcap::snaplen", "worker-01"]);
    expect(count.json).toEqual({ errors: [], results: { "worker-01": 9216 } });

    const table = await zc(["get-id-value", "Cluster::nodes", "logger"]);
    const layout = (table.json as { results: Record<string, Record<string, { node_type: string; p: { port: number } }>> }).results[
      "logger"
    ]!;
    const nodes = await clusterNodes();
    expect(layout["manager"]!.node_type).toBe("Cluster::MANAGER");
    expect(layout["manager"]!.p.port).toBe(nodes["manager"]!.port);
    expect(Object.keys(layout).sort()).toEqual(["logger", "manager", "proxy", "worker-01", "worker-02"]);

    const unknown = await zc(["get-id-value", "No::such_identifier", "proxy"]);
    expect(unknown.code).toBe(1);
    expect(unknown.json).toEqual({ errors: [{ source: "proxy", error: "unknown id" }], results: {} });
  });

  it("serves Zeek's own telemetry: zeek_version_info on every node, service discovery on the manager", async () => {
    const nodes = await clusterNodes();
    const metrics = await (await fetch(`http://127.0.0.1:${nodes["worker-02"]!.metrics_port}/metrics`)).text();
    expect(metrics).toMatch(/^zeek_version_info\{.*node="worker-02".*\} 1$/m);
    const services = (await (await fetch(`http://127.0.0.1:${nodes["manager"]!.metrics_port}/services.json`)).json()) as Array<{
      targets: string[];
    }>;
    const targets = services.flatMap((s) => s.targets).sort();
    const expected = Object.values(nodes)
      .map((n) => `127.0.0.1:${n.metrics_port}`)
      .sort();
    expect(targets).toEqual(expected);
  });

  it.skipIf(!canCapture)("captures loopback traffic on the workers and the logger writes conn.log and http.log", async () => {
    const server: Server = createServer((_req, res) => res.end("hello from the test\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    try {
      const loggerDir = join(stateDir, "nodes", "logger");
      // Workers start capturing a moment after they check in; keep the traffic coming until logged.
      await eventually(
        async () => {
          await httpGetOnce(port, "/zmgmt-test");
          await new Promise((r) => setTimeout(r, 500));
          const conn = join(loggerDir, "conn.log");
          const http = join(loggerDir, "http.log");
          return (
            existsSync(conn) &&
            readFileSync(conn, "utf8").includes(`\t${port}\ttcp\t`) &&
            existsSync(http) &&
            readFileSync(http, "utf8").includes("/zmgmt-test")
          );
        },
        45_000,
        "conn.log and http.log entries for the test's HTTP request",
      );
    } finally {
      server.close();
    }
  });

  it("zmgmt netstats reads each worker's packet counters from Zeek's own telemetry; the controller's /metrics counts the Zeek nodes", async () => {
    const zmgmt = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolveRun) => {
        execFile(
          process.execPath,
          [CLI, "--controller", `127.0.0.1:${controllerPort}`, ...args],
          { timeout: 60_000 },
          (err, stdout, stderr) => resolveRun({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
        );
      });
    const json = await zmgmt(["--json", "netstats"]);
    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<{ node: string; recvd?: number; dropped?: number; link?: number; drop_pct?: number }>;
    expect(rows.map((r) => r.node)).toEqual(["worker-01", "worker-02"]);
    for (const r of rows) {
      expect(Number.isInteger(r.recvd), r.node).toBe(true);
      expect(r.recvd, r.node).toBeGreaterThanOrEqual(0);
      if (!canCapture) continue;
      // Live capture: Zeek also reports drops and what the link saw.
      expect(r.dropped, r.node).toBeGreaterThanOrEqual(0);
      expect(r.link, r.node).toBeGreaterThanOrEqual(0);
      expect(r.drop_pct, r.node).toBeGreaterThanOrEqual(0);
    }
    const text = await zmgmt(["netstats"]);
    expect(text.code, text.stderr).toBe(0);
    const line = canCapture ? /^worker-0[12]: recvd=\d+ dropped=\d+ \(\d+\.\d\d%\) link=\d+$/ : /^worker-0[12]: recvd=\d+ /;
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines.length).toBe(2);
    for (const l of lines) expect(l).toMatch(line);

    // The shipped dashboard and alerts query Zeek metrics that a real worker serves.
    const nodes = await clusterNodes();
    const worker = await (await fetch(`http://127.0.0.1:${nodes["worker-01"]!.metrics_port}/metrics`)).text();
    const zeekNames = contribMetricNames("zeek");
    expect(zeekNames).toEqual(["zeek_net_dropped_packets_total", "zeek_net_link_packets_total", "zeek_net_received_packets_total"]);
    for (const name of zeekNames) expect(worker).toMatch(new RegExp(`^# TYPE ${name} counter$`, "m"));

    const metrics = await (await fetch(`http://127.0.0.1:${controllerPort}/metrics`)).text();
    expect(metrics).toMatch(/^zmgmt_nodes\{state="RUNNING",cluster_role="WORKER"\} 2$/m);
    expect(metrics).toMatch(/^zmgmt_nodes\{state="RUNNING",cluster_role="MANAGER"\} 1$/m);
  });

  it("rotates the logger's logs into its log queue and archives them compressed, one folder per day", async () => {
    const archive = join(stateDir, "logs");
    const archived = await eventually(
      () => {
        const days = existsSync(archive) ? readdirSync(archive) : [];
        const files = days.flatMap((d) => readdirSync(join(archive, d)).map((f) => join(archive, d, f)));
        return files.find((f) => /\/\d{4}-\d{2}-\d{2}\/cluster\.\d{2}:\d{2}:\d{2}-\d{2}:\d{2}:\d{2}\.log\.gz$/.test(f));
      },
      30_000,
      "an archived cluster.log",
    );
    const text = gunzipSync(readFileSync(archived)).toString("utf8");
    expect(text).toMatch(/^#separator/);
    expect(text).toContain("#path\tcluster");
    // What was archived left the queue.
    const queue = join(stateDir, "nodes", "logger", "log-queue");
    const queued = readdirSync(queue);
    expect(queued.filter((f) => f.startsWith("cluster__") && f.endsWith(".log")).length).toBeLessThanOrEqual(1);
  });

  it("restarts one worker: a new zeek pid, RUNNING again, the others untouched", async () => {
    const before = await clusterNodes();
    const restarted = await zc(["restart", "worker-01"]);
    expect(restarted.json).toEqual({ errors: [], results: { "worker-01": true } });
    // We answer once the node has checked in again, unlike upstream.
    const after = await clusterNodes();
    expect(after["worker-01"]!.state).toBe("RUNNING");
    expect(after["worker-01"]!.pid).not.toBe(before["worker-01"]!.pid);
    expect(isZeekProcess(after["worker-01"]!.pid!)).toBe(true);
    expect(pidAlive(before["worker-01"]!.pid!)).toBe(false);
    for (const name of ["manager", "logger", "proxy", "worker-02"]) expect(after[name]!.pid, name).toBe(before[name]!.pid);
  });

  it("revives a worker killed with SIGKILL", async () => {
    const before = await clusterNodes();
    const victim = before["worker-02"]!.pid!;
    process.kill(victim, "SIGKILL");
    await eventually(
      async () => {
        const n = (await clusterNodes())["worker-02"];
        return n?.state === "RUNNING" && n.pid !== undefined && n.pid !== victim;
      },
      30_000,
      "worker-02 to be revived",
    );
    const revived = (await clusterNodes())["worker-02"]!;
    expect(isZeekProcess(revived.pid!)).toBe(true);
  });

  it("reports Zeek's own error text when a node's script is broken", async () => {
    const broken = join(env.dir, "broken.zeek");
    writeFileSync(broken, "event zeek_init() { this is not zeek; }\n");
    const ini = clusterIni(nodeSection("manager", "manager") + nodeSection("worker-01", "worker", { scripts: `local ${broken}` }));
    const file = join(env.dir, "broken.ini");
    writeFileSync(file, ini);
    const deployed = await zc(["deploy-config", file]);
    expect(deployed.code).toBe(1);
    const nodes = (deployed.json as { results: { nodes: Record<string, { success: boolean; stderr?: string; error?: string }> } }).results
      .nodes;
    expect(nodes["manager"]!.success).toBe(true);
    expect(nodes["worker-01"]!.success).toBe(false);
    expect(nodes["worker-01"]!.stderr).toContain("broken.zeek");
    expect(nodes["worker-01"]!.stderr).toMatch(/error/);
  });

  it("leaves no zeek process behind when the agent stops", async () => {
    const nodes = await clusterNodes();
    const pids = Object.values(nodes)
      .map((n) => n.pid)
      .filter((p): p is number => p !== undefined);
    expect(pids.length).toBeGreaterThan(0);
    killGroup(agentProc.pid, "SIGTERM");
    await eventually(() => agentProc.child.exitCode !== null || agentProc.child.signalCode !== null, 30_000, "the agent to stop");
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(processesUnder(stateDir).filter(isZeekProcess)).toEqual([]);
  });
});

describe.skipIf(!canRun)("zmgmt up --zeek", { timeout: 180_000 }, () => {
  let env: TestEnv;
  afterAll(async () => {
    await env?.cleanup();
  });

  it("brings up a real Zeek cluster that the stock zeek-client sees RUNNING", async () => {
    env = new TestEnv("zmgmt-up-zeek-");
    const { args, controllerPort } = await upArgs(["--zeek", ZEEK, "--instance", "local"]);
    if (!canCapture) {
      // The default layout captures on lo, which needs root; deploy the same roles without capture.
      const ini = join(env.dir, "no-capture.ini");
      writeFileSync(
        ini,
        "[instances]\nlocal\n\n" +
          [
            ["manager", "manager"],
            ["logger-01", "logger"],
            ["proxy-01", "proxy"],
            ["worker-01", "worker"],
            ["worker-02", "worker"],
          ]
            .map(([name, role]) => `[${name}]\ninstance = local\nrole = ${role}\n`)
            .join("\n"),
      );
      args.push("--config", ini);
    }
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 60_000, "zmgmt up to report the cluster up");
    expect(up.output()).toContain("cluster nodes run Zeek");
    const run = await zeekClient(CLIENT, controllerPort, ["get-nodes"]);
    const nodes = Object.values((run.json as { results: Record<string, Record<string, NodeView>> }).results["local"]!).filter(
      (n) => n.cluster_role,
    );
    expect(nodes.length).toBeGreaterThanOrEqual(5);
    for (const n of nodes) {
      expect(n.state).toBe("RUNNING");
      expect(isZeekProcess(n.pid!)).toBe(true);
    }
    const value = await zeekClient(CLIENT, controllerPort, ["get-id-value", "Log::default_rotation_interval", "manager"]);
    expect(value.json).toEqual({ errors: [], results: { manager: "1.0 day" } });
  });
});

describe("choosing the node program", () => {
  let env: TestEnv;
  afterAll(async () => {
    await env?.cleanup();
  });

  it("says once at start that nodes run the built-in program when no zeek is on PATH", async () => {
    env = new TestEnv("zmgmt-no-zeek-");
    // A PATH without zeek on it; taskset and friends are not needed for this.
    const agent = env.spawnCli(["agent", "--name", "a", "--state-dir", join(env.dir, "s"), "--listen", "127.0.0.1:0", "--no-controller"], {
      PATH: env.dir,
    });
    await eventually(() => agent.output().includes("zmgmt agent a "), 20_000, "the agent's start-up line");
    const out = agent.output();
    expect(out.match(/no zeek found on PATH; cluster nodes run the built-in zmgmt node/g)).toHaveLength(1);
  });

  it.skipIf(!canRun)("names the Zeek the nodes run when given one", async () => {
    const agent = env.spawnCli([
      "agent",
      "--name",
      "b",
      "--state-dir",
      join(env.dir, "t"),
      "--listen",
      "127.0.0.1:0",
      "--no-controller",
      "--zeek",
      ZEEK,
    ]);
    await eventually(() => agent.output().includes("zmgmt agent b "), 20_000, "the agent's start-up line");
    expect(agent.output()).toMatch(/cluster nodes run Zeek 8\.\d+\.\d+\S* \(/);
  });
});
