// Multi-host for real: the controller, two agents and the client each in a network
// namespace of their own, joined by veth pairs to a bridge in a fifth ("switch")
// namespace. Nothing in the root namespace changes. Needs root and `ip netns`; elsewhere
// the test is skipped with the reason printed.

import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, TestEnv, eventually } from "./helpers.js";

const run = promisify(execFile);

const TAG = `zmc${process.pid}`;
const SWITCH = `${TAG}-sw`;
const SUBNET = "10.123.1";
const HOSTS = [
  { ns: `${TAG}-ctl`, addr: `${SUBNET}.1` },
  { ns: `${TAG}-h1`, addr: `${SUBNET}.2` },
  { ns: `${TAG}-h2`, addr: `${SUBNET}.3` },
  { ns: `${TAG}-cli`, addr: `${SUBNET}.9` },
] as const;
const [CTL, H1, H2, CLIENT] = HOSTS;
const CONTROLLER = `${CTL.addr}:2149`;

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${(r.stderr || r.error?.message || "failed").trim()}`);
}

/** Why this machine cannot run the test, or undefined if it can. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to create network namespaces";
  const probe = `${TAG}-probe`;
  try {
    ip("netns", "add", probe);
  } catch (err) {
    return `ip netns does not work here (${(err as Error).message})`;
  }
  try {
    ip("netns", "del", probe);
  } catch {
    // best effort; the real setup reports problems itself
  }
  return undefined;
}

const skipReason = unavailable();
if (skipReason) console.log(`multi-host chaos test skipped: ${skipReason}`);

function removeNamespaces(): void {
  // Deleting a namespace takes its veth ends with it, and with them their peers.
  for (const ns of [...HOSTS.map((h) => h.ns), SWITCH]) spawnSync("ip", ["netns", "del", ns], { timeout: 10_000 });
}

function createNamespaces(): void {
  ip("netns", "add", SWITCH);
  ip("-n", SWITCH, "link", "add", "br0", "type", "bridge");
  ip("-n", SWITCH, "link", "set", "br0", "up");
  HOSTS.forEach((h, i) => {
    ip("netns", "add", h.ns);
    ip("-n", h.ns, "link", "add", "eth0", "type", "veth", "peer", "name", `port${i}`, "netns", SWITCH);
    ip("-n", SWITCH, "link", "set", `port${i}`, "master", "br0");
    ip("-n", SWITCH, "link", "set", `port${i}`, "up");
    ip("-n", h.ns, "addr", "add", `${h.addr}/24`, "dev", "eth0");
    ip("-n", h.ns, "link", "set", "eth0", "up");
    ip("-n", h.ns, "link", "set", "lo", "up");
  });
}

let env: TestEnv;
const procs: ChildProcess[] = [];

/** Starts `zmgmt …` inside a namespace, in its own process group (ip execs into node). */
function spawnIn(ns: string, args: string[]): ChildProcess {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, CLI, ...args], {
    cwd: env.dir,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  (child as ChildProcess & { output?: () => string }).output = () => out;
  procs.push(child);
  return child;
}

/** Runs a client command from the client namespace; returns its JSON output. */
async function client(...args: string[]): Promise<unknown> {
  const { stdout } = await run("ip", ["netns", "exec", CLIENT.ns, process.execPath, CLI, "--controller", CONTROLLER, "--json", ...args], {
    cwd: env.dir,
    timeout: 30_000,
  });
  return JSON.parse(stdout);
}

function netnsInode(pid: number | "self"): number {
  return statSync(`/proc/${pid}/ns/net`).ino;
}

async function stopAll(): Promise<void> {
  for (const c of procs) if (c.pid) tryKill(-c.pid, "SIGTERM");
  await eventually(() => procs.every((c) => c.exitCode !== null || c.signalCode !== null), 15_000, "processes to exit").catch(
    () => undefined,
  );
  for (const c of procs) if (c.pid) tryKill(-c.pid, "SIGKILL");
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

const INI = `[instances]
host-1
host-2

[manager]
instance = host-1
role = manager

[logger]
instance = host-1
role = logger

[worker-01]
instance = host-1
role = worker
interface = eth0

[worker-02]
instance = host-2
role = worker
interface = eth0
`;

describe.skipIf(skipReason !== undefined)("controller and agents on separate hosts (network namespaces)", () => {
  beforeAll(() => {
    env = new TestEnv("zmgmt-chaos-netns-");
    removeNamespaces();
    createNamespaces();
    const help = spawnSync(process.execPath, [CLI, "controller", "--help"], { encoding: "utf8" }).stdout;
    // Plaintext on a non-loopback address must be asked for explicitly, where supported.
    const insecure = help.includes("--allow-insecure-listen") ? ["--allow-insecure-listen"] : [];
    spawnIn(CTL.ns, [
      "controller",
      "--listen",
      CONTROLLER,
      "--state-dir",
      join(env.dir, "ctl"),
      "--name",
      "controller",
      "--request-timeout",
      "10",
      "--agent-master-secret-file",
      env.masterSecretFile(),
      ...insecure,
    ]);
    for (const [name, h] of [
      ["host-1", H1],
      ["host-2", H2],
    ] as const) {
      spawnIn(h.ns, [
        "agent",
        "--name",
        name,
        "--state-dir",
        join(env.dir, name),
        "--listen",
        "127.0.0.1:2151",
        "--controller",
        CONTROLLER,
        "--agent-secret-file",
        env.agentSecretFile(name),
        "--request-timeout",
        "6",
        "--restart-delay",
        "0.2",
        "--stop-timeout",
        "3",
      ]);
    }
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    await env?.cleanup();
    removeNamespaces();
  }, 60_000);

  it("agents dialing across veth links are known by their own namespace addresses, and a CLI in a fourth namespace deploys a cluster that runs where it should", async () => {
    // The agents check in from their namespaces: the controller sees their addresses.
    const instances = await eventually(
      async () => {
        const got = (await client("get-instances")) as Record<string, { host?: string }>;
        return Object.keys(got).length === 2 ? got : undefined;
      },
      30_000,
      "both agents checked in",
    );
    expect(instances).toEqual({ "host-1": { host: H1.addr }, "host-2": { host: H2.addr } });

    const file = join(env.dir, "cluster.ini");
    writeFileSync(file, INI);
    const deployed = (await client("deploy-config", file)) as { errors: unknown[]; results: Record<string, unknown> };
    expect(deployed.errors).toEqual([]);

    type NodeRow = { state: string; pid?: number; cluster_role: string | null };
    const nodes = await eventually(
      async () => {
        const got = (await client("get-nodes")) as { errors: unknown[]; results: Record<string, Record<string, NodeRow>> };
        const rows = Object.entries(got.results).flatMap(([inst, ns]) =>
          Object.entries(ns)
            .filter(([, r]) => typeof r.cluster_role === "string")
            .map(([n, r]) => ({ inst, n, ...r })),
        );
        return rows.length === 4 && rows.every((r) => r.state === "RUNNING" && r.pid) ? rows : undefined;
      },
      40_000,
      "all four nodes RUNNING",
    );
    expect(nodes.map((r) => `${r.inst}/${r.n}`).sort()).toEqual([
      "host-1/logger",
      "host-1/manager",
      "host-1/worker-01",
      "host-2/worker-02",
    ]);

    // Each node process really lives in its agent's namespace, not the test's.
    const nsOf = { "host-1": statSync(`/run/netns/${H1.ns}`).ino, "host-2": statSync(`/run/netns/${H2.ns}`).ino };
    for (const r of nodes) {
      expect(netnsInode(r.pid!)).toBe(nsOf[r.inst as "host-1" | "host-2"]);
      expect(netnsInode(r.pid!)).not.toBe(netnsInode("self"));
    }

    // The cluster layout every node received carries the hosts' real addresses.
    const layout = (await client("get-id-value", "Cluster::nodes", "worker-02")) as { results: Record<string, unknown> };
    const seen = layout.results["worker-02"] as Record<string, { ip: string }>;
    expect(seen["manager"]!.ip).toBe(H1.addr);
    expect(seen["worker-02"]!.ip).toBe(H2.addr);
  });
});
