// Observability with real processes: the controller's and agents' Prometheus metrics on
// their WebSocket ports, service discovery for the whole cluster, and `zmgmt netstats`
// against the built-in node (which does not capture, and says so).

import { afterEach, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { CLI, TestEnv, upArgs } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { contribMetricNames } from "./helpers/contrib.js";
import { ControllerClient, resultConfiguration, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import type { Configuration, Node } from "../src/management/types.js";
import { errorMessage } from "../src/broker/errors.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"`;
const SAMPLE = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(${LABEL}(?:,${LABEL})*)?\})? (\S+)$`);

/**
 * Checks Prometheus text exposition strictly (every sample line well-formed, every sample
 * of a family announced by # TYPE, histogram samples under their family) and returns the
 * samples. Written here, apart from the code under test.
 */
function parseExposition(text: string): Sample[] {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const m = SAMPLE.exec(line);
    expect(m, `malformed sample line: ${line}`).not.toBeNull();
    const name = m![1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    expect(types.has(family), `no # TYPE for ${name}`).toBe(true);
    if (family !== name) expect(types.get(family)).toBe("histogram");
    const value = Number(m![3]!.replace("+Inf", "Infinity"));
    expect(Number.isNaN(value), line).toBe(false);
    const labels: Record<string, string> = {};
    for (const l of (m![2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name, labels, value });
  }
  return samples;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.length === 0 ? undefined : found.reduce((a, s) => a + s.value, 0);
}

/** zmgmt_nodes as "STATE/ROLE" -> count, zeros left out. */
function nodeGauge(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === "zmgmt_nodes" && s.value !== 0) out[`${s.labels["state"]}/${s.labels["cluster_role"]}`] = s.value;
  return out;
}

interface SdEntry {
  targets: string[];
  labels: Record<string, string>;
}

async function services(port: number): Promise<SdEntry[]> {
  const res = await fetch(`http://127.0.0.1:${port}/services.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  return (await res.json()) as SdEntry[];
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: env.dir, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function node(name: string, instance: string, role: Node["role"]): Node {
  return { name, instance, role, state: "RUNNING", env: {} };
}

const AGENT_ARGS = ["--request-timeout", "15", "--restart-delay", "0.2", "--stop-timeout", "3"];

describe("control-plane metrics, service discovery and netstats", () => {
  it("counts a real cluster's nodes on the controller and each agent, and counts a kill -9", async () => {
    env = new TestEnv();
    const controller = await env.startController({ requestTimeoutSec: 20 });
    const a1 = await env.startAgent({ name: "instance-1", controllerPort: controller.port, extraArgs: AGENT_ARGS });
    const a2 = await env.startAgent({ name: "instance-2", controllerPort: controller.port, extraArgs: AGENT_ARGS });
    const client = await ControllerClient.connect({ url: `127.0.0.1:${controller.port}`, requestTimeoutMs: 20_000 });
    clients.push(client);
    await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === 2, 15_000, "2 instances");
    const config: Configuration = {
      id: randomUUID(),
      instances: [
        { name: "instance-1", host: "0.0.0.0" },
        { name: "instance-2", host: "0.0.0.0" },
      ],
      nodes: [
        node("manager", "instance-1", "MANAGER"),
        node("logger-01", "instance-1", "LOGGER"),
        node("worker-01", "instance-1", "WORKER"),
        node("proxy-01", "instance-2", "PROXY"),
        node("worker-02", "instance-2", "WORKER"),
        node("worker-03", "instance-2", "WORKER"),
      ],
    };
    await client.stageConfiguration(config);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    const statuses = await eventually(
      async () => {
        const all = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
        return all.length === 6 && all.every((s) => s.state === "RUNNING") ? all : undefined;
      },
      15_000,
      "6 nodes RUNNING",
    );

    const c = await scrape(controller.port);
    expect(nodeGauge(c)).toEqual({ "RUNNING/MANAGER": 1, "RUNNING/LOGGER": 1, "RUNNING/PROXY": 1, "RUNNING/WORKER": 3 });
    expect(value(c, "zmgmt_nodes", { state: "CRASHED", cluster_role: "WORKER" })).toBe(0);
    expect(value(c, "zmgmt_agents_connected")).toBe(2);
    expect(value(c, "zmgmt_agent_stats_up", { cluster_instance: "instance-2" })).toBe(1);
    expect(value(c, "zmgmt_requests_total", { type: "deploy", result: "success" })).toBe(1);
    expect(value(c, "zmgmt_requests_total", { type: "stage_configuration", result: "success" })).toBe(1);
    expect(value(c, "zmgmt_request_duration_seconds_count", { type: "deploy", result: "success" })).toBe(1);
    expect(value(c, "zmgmt_request_duration_seconds_sum", { type: "deploy" })).toBeGreaterThan(0);
    expect(value(c, "zmgmt_deploys_total", { trigger: "client", result: "success" })).toBe(1);
    expect(value(c, "zmgmt_deploy_duration_seconds_count", { trigger: "client" })).toBe(1);
    expect(value(c, "zmgmt_deploy_rollbacks_total")).toBe(0);
    // The two agents and this test's client at least.
    expect(value(c, "zmgmt_websocket_connections")).toBeGreaterThanOrEqual(3);
    expect(value(c, "zmgmt_node_crashes_total", { cluster_node: "worker-02" })).toBe(0);
    expect(value(c, "zmgmt_node_restarts_total", { cluster_node: "worker-02" })).toBe(0);

    const s1 = await scrape(a1.port);
    expect(nodeGauge(s1)).toEqual({ "RUNNING/MANAGER": 1, "RUNNING/LOGGER": 1, "RUNNING/WORKER": 1 });
    expect(value(s1, "zmgmt_controller_connected")).toBe(1);
    expect(value(s1, "zmgmt_requests_total", { type: "deploy", result: "success" })).toBe(1);
    // The shipped dashboard and alerts query only metrics that exist.
    const families = new Set([...c, ...s1].map((x) => x.name.replace(/_(bucket|sum|count)$/, "")));
    const used = contribMetricNames("zmgmt");
    expect(used.length).toBeGreaterThan(8);
    expect(used.filter((n) => !families.has(n))).toEqual([]);
    const s2 = await scrape(a2.port);
    expect(nodeGauge(s2)).toEqual({ "RUNNING/PROXY": 1, "RUNNING/WORKER": 2 });

    // A kill -9 is a crash and, once revived, a restart; on the controller and the agent.
    const victim = statuses.find((s) => s.node === "worker-02")!;
    process.kill(victim.pid!, "SIGKILL");
    const after = await eventually(
      async () => {
        const samples = await scrape(controller.port);
        const running = value(samples, "zmgmt_nodes", { state: "RUNNING" });
        return value(samples, "zmgmt_node_restarts_total", { cluster_node: "worker-02" }) === 1 && running === 6 ? samples : undefined;
      },
      15_000,
      "the controller to count worker-02's crash and restart",
    );
    expect(
      value(after, "zmgmt_node_crashes_total", { cluster_node: "worker-02", cluster_role: "WORKER", cluster_instance: "instance-2" }),
    ).toBe(1);
    expect(value(after, "zmgmt_node_crashes_total", { cluster_node: "worker-03" })).toBe(0);
    const agentAfter = await scrape(a2.port);
    expect(value(agentAfter, "zmgmt_node_crashes_total", { cluster_node: "worker-02" })).toBe(1);
    expect(value(agentAfter, "zmgmt_node_restarts_total", { cluster_node: "worker-02" })).toBe(1);

    // Service discovery: every node's metrics port on its host, plus the control plane.
    const deployed = resultConfiguration(await client.getConfiguration(true))!;
    const sd = await services(controller.port);
    const expected = deployed.nodes.map((n) => ({
      targets: [`127.0.0.1:${n.metricsPort}`],
      labels: { node: n.name, role: n.role.toLowerCase(), instance: n.instance },
    }));
    expect(deployed.nodes.every((n) => n.metricsPort! > 0)).toBe(true);
    expect(sd.filter((e) => !["controller", "agent"].includes(e.labels["role"]!))).toEqual(expect.arrayContaining(expected));
    expect(sd.length).toBe(6 + 3);
    expect(sd.filter((e) => e.labels["role"] === "controller").map((e) => e.targets)).toEqual([[`127.0.0.1:${controller.port}`]]);
    expect(
      sd
        .filter((e) => e.labels["role"] === "agent")
        .map((e) => `${e.labels["instance"]} ${e.targets.join()}`)
        .sort(),
    ).toEqual([`instance-1 127.0.0.1:${a1.port}`, `instance-2 127.0.0.1:${a2.port}`]);
    // The built-in nodes really serve metrics where service discovery points.
    const target = sd.find((e) => e.labels["node"] === "worker-03")!.targets[0]!;
    expect((await fetch(`http://${target}/metrics`)).status).toBe(200);

    // netstats: the built-in node does not capture, and says so for every worker.
    const text = await runCli(["--controller", `127.0.0.1:${controller.port}`, "netstats"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trimEnd().split("\n")).toEqual(
      ["worker-01", "worker-02", "worker-03"].map((w) => `${w}: n/a: not a Zeek node: the built-in node does not capture`),
    );
    const json = await runCli(["--controller", `127.0.0.1:${controller.port}`, "--json", "netstats"]);
    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r["node"], r["instance"], r["state"], r["recvd"]])).toEqual([
      ["worker-01", "instance-1", "RUNNING", undefined],
      ["worker-02", "instance-2", "RUNNING", undefined],
      ["worker-03", "instance-2", "RUNNING", undefined],
    ]);
    const c2 = await scrape(controller.port);
    expect(value(c2, "zmgmt_requests_total", { type: "get_netstats", result: "success" })).toBe(2);
  }, 120_000);

  it("zmgmt up: /metrics on the controller port shows node states, /services.json every node's metrics port", async () => {
    env = new TestEnv();
    const { args, controllerPort } = await upArgs();
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 30_000, "the cluster to come up").catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}; output:\n${up.output()}`);
    });
    const samples = await scrape(controllerPort);
    expect(nodeGauge(samples)).toEqual({ "RUNNING/MANAGER": 1, "RUNNING/LOGGER": 1, "RUNNING/PROXY": 1, "RUNNING/WORKER": 2 });

    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
    clients.push(client);
    const statuses = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
    const sd = await services(controllerPort);
    const nodeTargets: Record<string, string[]> = Object.fromEntries(
      sd
        .filter((e) => e.labels["role"] !== "controller" && e.labels["role"] !== "agent")
        .map((e): [string, string[]] => [e.labels["node"]!, e.targets]),
    );
    expect(nodeTargets).toEqual(Object.fromEntries(statuses.map((s) => [s.node, [`127.0.0.1:${s.metricsPort}`]])));
    expect(Object.keys(nodeTargets).length).toBe(5);
  });
});
