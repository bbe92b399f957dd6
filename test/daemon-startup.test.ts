// What an operator sees of running daemons: one start-up line each on stdout, the
// management log on stderr in the chosen --log-format (the log file stays JSON lines), and
// process titles that tell the supervisor, the agent and every node apart in `ps`.

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ControllerClient, resultNodeStatuses } from "../src/client/controller-client.js";
import type { Configuration } from "../src/management/types.js";
import { TestEnv, freePort, freePortRange, type Proc } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { errorMessage } from "../src/broker/errors.js";

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

interface Daemon {
  proc: Proc;
  stdout(): string;
  stderr(): string;
}

/** Starts `zmgmt ARGS` keeping stdout and stderr apart (listeners attach before any data). */
function start(args: string[]): Daemon {
  const proc = env.spawnCli(args);
  let out = "";
  let err = "";
  proc.child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return { proc, stdout: () => out, stderr: () => err };
}

async function startController(name: string, extra: string[]): Promise<{ d: Daemon; port: number }> {
  const port = await freePort();
  const d = start([
    "controller",
    "--name",
    name,
    "--listen",
    `127.0.0.1:${port}`,
    "--state-dir",
    join(env.dir, "state"),
    "--broker-start-port",
    String(await freePortRange(4)),
    "--metrics-start-port",
    String(await freePortRange(4)),
    ...extra,
  ]);
  await eventually(() => d.stdout().includes("\n"), 15_000, "the controller's start-up line").catch((e: unknown) => {
    throw new Error(`${errorMessage(e)}; output:\n${d.proc.output()}`);
  });
  return { d, port };
}

function lines(text: string): string[] {
  return text.split("\n").filter(Boolean);
}

/** The command line as `ps` shows it (process titles overwrite it). */
function psArgs(pid: number): string {
  return execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }).trim();
}

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
}

const PRETTY = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR)\s+[a-z]+ \S+: .+$/;

describe("daemon start-up and process titles", () => {
  it("controller: one start-up line, JSON log lines on stderr with --log-format json, titled process", async () => {
    env = new TestEnv();
    const { d, port } = await startController("ctl-a", ["--log-stderr", "--log-format", "json"]);
    await eventually(() => d.stderr().includes("controller is live"), 10_000, "the management log on stderr");
    expect(lines(d.stdout())).toEqual([`zmgmt controller ctl-a listening on ws://127.0.0.1:${port} (state in ${join(env.dir, "state")})`]);
    const logLines = lines(d.stderr()).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of logLines) {
      expect(Object.keys(l)).toEqual(["node", "level", "role", "ts", "message"]);
      expect(l["role"]).toBe("CONTROLLER");
      expect(l["node"]).toBe("ctl-a");
    }
    expect(cmdline(d.proc.pid)).toBe("zmgmt controller ctl-a");
    expect(psArgs(d.proc.pid)).toBe("zmgmt controller ctl-a");
  });

  it("agent: one start-up line, pretty log on stderr, JSON log file; supervisor, agent and nodes carry titles", async () => {
    env = new TestEnv();
    // The agent proves its name with the secret the test's master secret yields.
    const controller = await startController("ctl-b", ["--agent-master-secret-file", env.masterSecretFile()]);
    const agentPort = await freePort();
    const stateDir = join(env.dir, "state-inst-b");
    const agent = start([
      "agent",
      "--name",
      "inst-b",
      "--state-dir",
      stateDir,
      "--listen",
      `127.0.0.1:${agentPort}`,
      "--controller",
      `127.0.0.1:${controller.port}`,
      "--agent-secret-file",
      env.agentSecretFile("inst-b"),
      "--no-zeek",
      "--log-stderr",
      "--restart-delay",
      "0.2",
    ]);
    await eventually(() => agent.stdout().includes("\n"), 20_000, "the agent's start-up line").catch((e: unknown) => {
      throw new Error(`${errorMessage(e)}; output:\n${agent.proc.output()}`);
    });
    expect(lines(agent.stdout())).toEqual([
      `zmgmt agent inst-b listening on ws://127.0.0.1:${agentPort}, controller 127.0.0.1:${controller.port}, ` +
        `cluster nodes run the built-in zmgmt node (state in ${stateDir})`,
    ]);
    // The foreground's stderr is the supervisor's management log, in the pretty format.
    const logLines = lines(agent.stderr());
    expect(logLines.length).toBeGreaterThan(0);
    for (const l of logLines) expect(l).toMatch(PRETTY);
    expect(logLines.join("\n")).toMatch(/ INFO {4}supervisor supervisor: supervisor is live, pid \d+/);
    // The file keeps its JSON lines whatever stderr shows.
    const file = readFileSync(join(stateDir, "nodes", "supervisor", "management-supervisor.log"), "utf8");
    for (const l of lines(file)) expect(Object.keys(JSON.parse(l) as object)).toEqual(["node", "level", "role", "ts", "message"]);

    const client = await ControllerClient.connect({ url: `127.0.0.1:${controller.port}`, requestTimeoutMs: 20_000 });
    clients.push(client);
    await eventually(
      async () => {
        const r = await client.getInstances();
        return r.data?.type === "vector" && r.data.value.length === 1;
      },
      15_000,
      "the agent to check in",
    );
    const config: Configuration = {
      id: randomUUID(),
      instances: [{ name: "inst-b", host: "0.0.0.0" }],
      nodes: [
        { name: "manager", instance: "inst-b", role: "MANAGER", state: "RUNNING", env: {} },
        { name: "worker-01", instance: "inst-b", role: "WORKER", state: "RUNNING", env: {} },
      ],
    };
    expect((await client.stageConfiguration(config)).every((r) => r.success)).toBe(true);
    const deployed = await client.deploy();
    expect(deployed.filter((r) => !r.success)).toEqual([]);

    const statuses = await eventually(
      async () => {
        const all = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []);
        const nodes = all.filter((s) => s.mgmtRole === "NONE");
        return nodes.length === 2 && nodes.every((s) => s.state === "RUNNING" && s.pid) ? all : undefined;
      },
      20_000,
      "both nodes RUNNING",
    );
    for (const s of statuses.filter((x) => x.mgmtRole === "NONE")) {
      expect(cmdline(s.pid!)).toBe(`zmgmt node ${s.node}`);
      expect(psArgs(s.pid!)).toBe(`zmgmt node ${s.node}`);
    }
    const agentStatus = statuses.find((s) => s.mgmtRole === "AGENT");
    expect(agentStatus?.pid).toBeTypeOf("number");
    expect(psArgs(agentStatus!.pid!)).toBe("zmgmt agent inst-b");
    expect(psArgs(agent.proc.pid)).toBe("zmgmt supervisor inst-b");
    // Still the one line on stdout after a deploy.
    expect(lines(agent.stdout())).toHaveLength(1);
  });
});
