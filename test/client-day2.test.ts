// zmgmt's day-2 commands end to end: logs, status, top, stop and start, through a real
// controller, an agent with its supervisor and real node processes, run as a user would
// (the built CLI as a process).

import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { B } from "../src/broker/data.js";
import { ZmgmtControllerApi } from "../src/controller/api.js";
import { ControllerClient } from "../src/client/controller-client.js";
import { CLI, TestEnv, pidAlive } from "./helpers/cluster.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

function startCli(args: string[], cwd: string): { child: ChildProcess; out: () => string; done: Promise<Run> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
  const done = new Promise<Run>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, out: () => stdout, done };
}

async function until<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface StatusNode {
  node: string;
  instance: string;
  state: string;
  role: string;
  pid?: number;
  uptimeMs?: number;
  restarts: number;
  lastExitCode?: number;
  lastExitSignal?: string;
  lastExitAt?: number;
  cpuPercent?: number;
  rssBytes?: number;
}
interface StatusJson {
  nodes: StatusNode[];
  errors: { node?: string; error: string }[];
}
interface OutcomeJson {
  nodes: { node: string; success: boolean; detail?: string }[];
  errors: { node?: string; error: string }[];
}

describe("day-2 commands against a real cluster", () => {
  let env: TestEnv;
  let port = 0;
  let controller: Awaited<ReturnType<TestEnv["startController"]>>;
  const zm = (args: string[]): Promise<Run> => startCli(["--controller", `127.0.0.1:${port}`, ...args], env.dir).done;
  const status = async (...nodes: string[]): Promise<{ run: Run; json: StatusJson }> => {
    const run = await zm(["status", "--json", ...nodes]);
    return { run, json: JSON.parse(run.stdout) as StatusJson };
  };
  const node = async (name: string): Promise<StatusNode> => (await status(name)).json.nodes.find((n) => n.node === name)!;

  beforeAll(async () => {
    env = new TestEnv("zmgmt-day2-");
    // A node script that prints to both streams at start and then a line every 100 ms.
    const script = join(env.dir, "noisy.mjs");
    writeFileSync(
      script,
      [
        "export function init() {",
        "  console.error(`stderr hello from ${process.pid}`);",
        "  let n = 0;",
        "  setInterval(() => console.log(`tick ${n++}`), 100);",
        "}",
        "",
      ].join("\n"),
    );
    controller = await env.startController({ requestTimeoutSec: 8 });
    port = controller.port;
    await env.startAgent({
      name: "agent-a",
      controllerPort: port,
      extraArgs: ["--request-timeout", "6", "--restart-delay", "0.2", "--stop-timeout", "3"],
    });
    const ini = [
      "[manager]",
      "instance = agent-a",
      "role = manager",
      "",
      "[worker-01]",
      "instance = agent-a",
      "role = worker",
      `scripts = ${script}`,
      "",
    ].join("\n");
    writeFileSync(join(env.dir, "cluster.ini"), ini);
    await until(
      async () => {
        const r = await zm(["deploy-config", join(env.dir, "cluster.ini")]);
        return r.code === 0 ? r : undefined;
      },
      30_000,
      "the deployment",
    );
  }, 90_000);

  afterEach(() => {
    for (const child of running) child.kill("SIGKILL");
    running.clear();
  });

  afterAll(async () => {
    await env?.cleanup();
  }, 60_000);

  it("status lists every node RUNNING with pid, uptime, CPU and RSS, and exits 0", async () => {
    const { run, json } = await until(
      async () => {
        const s = await status();
        return s.run.code === 0 ? s : undefined;
      },
      20_000,
      "every node to run",
    );
    expect(json.errors).toEqual([]);
    expect(json.nodes.map((n) => [n.node, n.instance, n.role, n.state])).toEqual([
      ["manager", "agent-a", "MANAGER", "RUNNING"],
      ["worker-01", "agent-a", "WORKER", "RUNNING"],
    ]);
    for (const n of json.nodes) {
      expect(n.pid).toBeGreaterThan(0);
      expect(pidAlive(n.pid!)).toBe(true);
      expect(n.uptimeMs).toBeGreaterThanOrEqual(0);
      expect(n.rssBytes).toBeGreaterThan(1024 * 1024);
      expect(n.cpuPercent).toBeGreaterThanOrEqual(0);
    }
    expect(run.stderr).toBe("");
  });

  it("logs shows the last lines, -n bounds them and --stderr reads stderr", async () => {
    const out = await until(
      async () => {
        const r = await zm(["logs", "worker-01", "-n", "5"]);
        return r.code === 0 && r.stdout.split("\n").filter(Boolean).length === 5 ? r : undefined;
      },
      15_000,
      "five lines of output",
    );
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l).toMatch(/^tick \d+$/);
    const pid = (await node("worker-01")).pid!;
    const err = await zm(["logs", "worker-01", "--stderr"]);
    expect(err.code).toBe(0);
    expect(err.stdout).toContain(`stderr hello from ${pid}`);
    expect(err.stdout).not.toContain("tick");
    const manager = await zm(["logs", "manager", "-n", "1000"]);
    expect(manager.stdout).toMatch(/node manager \(MANAGER\) is live, pid \d+/);
    const tooMany = await zm(["logs", "worker-01", "-n", "999999"]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toContain("-n is at most 5000 lines");
  });

  it("logs -f prints lines written after it started", async () => {
    const follow = startCli(["--controller", `127.0.0.1:${port}`, "logs", "worker-01", "-f", "-n", "1"], env.dir);
    const first = await until(() => /tick (\d+)/.exec(follow.out())?.[1], 15_000, "the first line");
    const later = await until(
      () => {
        const ticks = [...follow.out().matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
        return ticks.length >= 5 ? ticks : undefined;
      },
      15_000,
      "followed lines",
    );
    // Consecutive lines, no repeats and no gaps: the cursor continues exactly where it was.
    expect(later[0]).toBe(Number(first));
    for (let i = 1; i < later.length; i++) expect(later[i]).toBe(later[i - 1]! + 1);
    follow.child.kill("SIGINT");
    const r = await follow.done;
    expect(r.code).toBe(0);
  });

  it("counts a kill -9 as a restart with its last exit, and logs keep the crashed run's output", async () => {
    const before = await node("worker-01");
    const oldPid = before.pid!;
    process.kill(oldPid, "SIGKILL");
    const after = await until(
      async () => {
        const n = await node("worker-01");
        return n.state === "RUNNING" && n.pid !== undefined && n.pid !== oldPid ? n : undefined;
      },
      20_000,
      "the revived worker",
    );
    expect(after.restarts).toBe(before.restarts + 1);
    expect(after.lastExitSignal).toBe("SIGKILL");
    expect(after.lastExitAt).toBeGreaterThan(Date.now() - 60_000);
    const err = await zm(["logs", "worker-01", "--stderr", "-n", "100"]);
    expect(err.stdout).toContain(`stderr hello from ${oldPid}`);
    expect(err.stdout).toContain(`pid ${oldPid} killed by SIGKILL`);
    expect(err.stdout).toContain(`stderr hello from ${after.pid}`);
    const table = await zm(["status"]);
    // Not a terminal: JSON, which says the same.
    expect((JSON.parse(table.stdout) as StatusJson).nodes.find((n) => n.node === "worker-01")?.lastExitSignal).toBe("SIGKILL");
  });

  it("stop keeps a node down (status exits non-zero), start brings it back", async () => {
    const pid = (await node("worker-01")).pid!;
    const stopped = await zm(["stop", "--json", "worker-01"]);
    expect(stopped.code).toBe(0);
    expect((JSON.parse(stopped.stdout) as OutcomeJson).nodes).toEqual([{ node: "worker-01", instance: "agent-a", success: true }]);
    expect(pidAlive(pid)).toBe(false);
    // Past the revival delay: the supervisor does not bring it back.
    await new Promise((r) => setTimeout(r, 1500));
    const s = await status();
    expect(s.run.code).toBe(3);
    const w = s.json.nodes.find((n) => n.node === "worker-01")!;
    expect(w.state).toBe("STOPPED");
    expect(w.pid).toBeUndefined();
    expect(s.json.nodes.find((n) => n.node === "manager")?.state).toBe("RUNNING");
    // zeek-client's view: the upstream state name.
    const nodes = JSON.parse((await zm(["get-nodes"])).stdout) as { results: Record<string, Record<string, { state: string }>> };
    expect(nodes.results["agent-a"]?.["worker-01"]?.state).toBe("STOPPED");

    // An agent restart (the supervisor and its nodes stay) re-learns the node as stopped.
    type NodesJson = { results: Record<string, Record<string, { state: string; mgmt_role?: string; pid?: number }>> };
    const agentPid = Object.values((JSON.parse((await zm(["get-nodes"])).stdout) as NodesJson).results["agent-a"] ?? {}).find(
      (n) => n.mgmt_role === "AGENT",
    )?.pid;
    expect(agentPid).toBeGreaterThan(0);
    process.kill(agentPid!, "SIGKILL");
    const relearned = await until(
      async () => {
        const r = JSON.parse((await zm(["get-nodes"])).stdout) as NodesJson;
        const nodes = r.results["agent-a"] ?? {};
        const agent = Object.values(nodes).find((n) => n.mgmt_role === "AGENT");
        return agent?.pid !== undefined && agent.pid !== agentPid ? nodes : undefined;
      },
      30_000,
      "the agent to come back",
    );
    expect(relearned["worker-01"]?.state).toBe("STOPPED");
    await new Promise((r) => setTimeout(r, 1000));
    expect((await node("worker-01")).state).toBe("STOPPED");

    const started = await zm(["start", "--json"]);
    expect(started.code).toBe(0);
    const outcome = JSON.parse(started.stdout) as OutcomeJson;
    expect(outcome.nodes.find((n) => n.node === "worker-01")).toEqual({ node: "worker-01", instance: "agent-a", success: true });
    expect(outcome.nodes.find((n) => n.node === "manager")?.detail).toBe("not stopped (RUNNING)");
    await until(async () => ((await status()).run.code === 0 ? true : undefined), 20_000, "every node to run again");
  });

  it("a redeploy of the same configuration starts a stopped node and restarts nothing else", async () => {
    const managerPid = (await node("manager")).pid;
    expect((await zm(["stop", "worker-01"])).code).toBe(0);
    expect((await node("worker-01")).state).toBe("STOPPED");
    const deployed = await zm(["deploy-config", join(env.dir, "cluster.ini")]);
    expect(deployed.code).toBe(0);
    const worker = await until(
      async () => {
        const n = await node("worker-01");
        return n.state === "RUNNING" ? n : undefined;
      },
      20_000,
      "the worker to run again",
    );
    expect(worker.pid).toBeGreaterThan(0);
    expect((await node("manager")).pid).toBe(managerPid);
  });

  it("names unknown nodes with a suggestion", async () => {
    const logs = await zm(["logs", "worker-1"]);
    expect(logs.code).toBe(1);
    expect(logs.stdout).toBe("");
    expect(logs.stderr).toBe('error: unknown node "worker-1" (did you mean worker-01?)\n');
    const s = await status("managr");
    expect(s.run.code).toBe(1);
    expect(s.json.errors).toEqual([{ node: "managr", error: 'unknown node "managr" (did you mean manager?)' }]);
    const stop = await zm(["stop", "--json", "nope"]);
    expect(stop.code).toBe(1);
    expect((JSON.parse(stop.stdout) as OutcomeJson).errors[0]?.error).toBe(
      'unknown node "nope"; the cluster\'s nodes are manager, worker-01',
    );
  });

  it("answers malformed zmgmt requests with the reason instead of letting them time out", async () => {
    const client = await ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs: 10_000 });
    try {
      const badStream = B.vec([B.str("worker-01"), B.str("stdin"), B.count(5), B.none()]);
      const [, logs] = await client.transact(
        { name: ZmgmtControllerApi.node_logs_request.name, args: [B.str("bad-1"), badStream] },
        ZmgmtControllerApi.node_logs_response,
      );
      expect(logs.success).toBe(false);
      expect(logs.error).toMatch(/^invalid request: .*stream/);
      const tooMany = B.vec([B.str("worker-01"), B.str("stdout"), B.count(1_000_000), B.none()]);
      const [, many] = await client.transact(
        { name: ZmgmtControllerApi.node_logs_request.name, args: [B.str("bad-2"), tooMany] },
        ZmgmtControllerApi.node_logs_response,
      );
      expect(many.error).toMatch(/^invalid request: .*lines/);
      const [, statuses] = await client.transact(
        { name: ZmgmtControllerApi.get_node_status_request.name, args: [B.str("bad-3"), B.str("worker-01")] },
        ZmgmtControllerApi.get_node_status_response,
      );
      expect(statuses).toHaveLength(1);
      expect(statuses[0]?.success).toBe(false);
      expect(statuses[0]?.error).toMatch(/^invalid request: .*expected set of string/);
      const [, stop] = await client.transact(
        { name: ZmgmtControllerApi.stop_nodes_request.name, args: [B.str("bad-4"), B.set([B.count(1)])] },
        ZmgmtControllerApi.stop_nodes_response,
      );
      expect(stop[0]?.error).toMatch(/^invalid request:/);
      // Nothing was stopped by it.
      expect((await node("worker-01")).state).toBe("RUNNING");
    } finally {
      await client.close();
    }
  });

  it("top prints one snapshot per interval when not on a terminal", async () => {
    const top = startCli(["--controller", `127.0.0.1:${port}`, "top", "--json", "--interval", "0.3"], env.dir);
    const lines = await until(
      () => {
        const l = top.out().split("\n").filter(Boolean);
        return l.length >= 2 ? l : undefined;
      },
      15_000,
      "two snapshots",
    );
    for (const l of lines.slice(0, 2)) {
      const snap = JSON.parse(l) as StatusJson & { at: string };
      expect(snap.nodes.map((n) => n.node)).toEqual(["manager", "worker-01"]);
    }
    top.child.kill("SIGINT");
    expect((await top.done).code).toBe(0);
  });

  // Last: it takes the controller down.
  it("logs -f ends with an error when the controller goes away", async () => {
    const follow = startCli(["--controller", `127.0.0.1:${port}`, "logs", "worker-01", "-f", "-n", "1"], env.dir);
    await until(() => (/tick \d+/.test(follow.out()) ? true : undefined), 15_000, "the first line");
    controller.proc.child.kill("SIGTERM");
    const r = await follow.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: /);
  });
});
