// The stock zeek-client against a real controller, two agents (each with its supervisor) and
// their `zmgmt node` processes: every command, its output and its exit code, as operators
// see them. The tests in the cluster block run in order and share one cluster: they follow
// the life of a deployment (nothing connected, agents in, staged, deployed, restarted,
// redeployed), which is also the order an operator meets these answers in.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestEnv, freePort, pidAlive, upArgs } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import {
  type ZeekClientOptions,
  type ZeekClientRun,
  locateZeekClient,
  runZeekClient,
  startZeekClient,
  zeekClientRequired,
} from "./helpers/zeek-client.js";

const located = locateZeekClient();

if (!located.found) {
  if (zeekClientRequired()) {
    describe("stock zeek-client", () => {
      it("is available (CI=true requires it)", () => {
        throw new Error(located.reason);
      });
    });
  } else {
    console.warn(`skipping the zeek-client interoperability suite: ${located.reason}`);
  }
}

const ZC = located.found ? located.path : "";
const AGENT_ARGS = ["--request-timeout", "8", "--restart-delay", "0.2", "--stop-timeout", "3"];
// Generous: nodes are real processes, and restarts wait for them to check in again.
const CONTROLLER_TIMEOUT_SEC = 10;
/** Above the controller's own timeout, so the controller's answer always comes first. */
const CLIENT_TIMEOUT = `client.request_timeout_secs=${CONTROLLER_TIMEOUT_SEC + 4}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const CLUSTER_INI = `[instances]
instance-1
instance-2

[manager]
instance = instance-1
role = manager

[logger-01]
instance = instance-1
role = logger

[proxy-01]
instance = instance-2
role = proxy

[worker-01]
instance = instance-1
role = worker
interface = lo

[worker-02]
instance = instance-2
role = worker
interface = lo
env = ROLE_NOTE=second
`;

/** A node's entry in get-nodes' answer; each agent appears there too, with mgmt_role AGENT. */
interface NodeStatus {
  state: string;
  mgmt_role: string | null;
  cluster_role: string | null;
  /** Present for every running node and agent, which is all these tests read it from. */
  pid: number;
  port?: number;
  metrics_port?: number;
}

/** zeek-client's JSON for a request its sources answer one by one: their errors and results. */
interface ResultsOutput<R, E = unknown> {
  errors: E[];
  results: R;
}

/** get-nodes: instance -> node -> status. */
type NodesOutput = ResultsOutput<Record<string, Record<string, NodeStatus>>>;

/** deploy and deploy-config: the deployed configuration's id and each node's outcome. */
type DeployOutput = ResultsOutput<{ id: string; nodes: Record<string, unknown> }>;

/** get-config --as-json: the configuration as the controller holds it. */
interface ConfigOutput {
  id: string;
  instances: unknown[];
  nodes: { name: string; port: number | null }[];
}

type NodeState = NodeStatus & { instance: string };

function json(run: ZeekClientRun): unknown {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`zeek-client printed no JSON (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

function describeRun(run: ZeekClientRun): string {
  return `exit ${run.code}${run.signal ? ` (${run.signal})` : ""} after ${run.ms} ms\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
}

/** Parses zeek-client's INI output into section -> key -> value (bare keys map to null). */
function parseIni(text: string): Record<string, Record<string, string | null>> {
  const out: Record<string, Record<string, string | null>> = {};
  let section: Record<string, string | null> | undefined;
  for (const line of text.split("\n")) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = out[header[1]!] = {};
      continue;
    }
    if (!line.trim() || !section) continue;
    const eq = line.indexOf(" = ");
    if (eq < 0) section[line.trim()] = null;
    else section[line.slice(0, eq)] = line.slice(eq + 3);
  }
  return out;
}

describe.skipIf(!located.found)("stock zeek-client without a controller", () => {
  let dir: TestEnv;
  beforeAll(() => {
    dir = new TestEnv("zmgmt-zc-");
  });
  afterAll(async () => dir.cleanup());

  it("show-settings merges the config file, ZEEK_CLIENT_CONFIG_SETTINGS and --set in that order", async () => {
    const cfg = join(dir.dir, "zeek-client.cfg");
    writeFileSync(cfg, "[controller]\nhost = 127.0.0.2\nport = 3000\n\n[client]\nverbosity = 1\npeering_attempts = 3\n");
    const run = await runZeekClient(ZC, ["-c", cfg, "--set", "controller.port=3002", "show-settings"], {
      env: { ZEEK_CLIENT_CONFIG_SETTINGS: "controller.port=3001 client.request_timeout_secs=7" },
    });
    expect(run.code, describeRun(run)).toBe(0);
    const ini = parseIni(run.stdout);
    expect(ini.controller).toEqual({ host: "127.0.0.2", port: "3002" });
    expect(ini.client).toMatchObject({ request_timeout_secs: "7", peering_attempts: "3", verbosity: "1" });
    expect(ini.ssl).toMatchObject({ enable: "False" });
  });

  it("fails with exit 1 once its peering attempts are spent when no controller listens", async () => {
    const port = await freePort();
    const run = await runZeekClient(ZC, [
      "--controller",
      `127.0.0.1:${port}`,
      "--set",
      "client.peering_attempts=2",
      "--set",
      "client.peering_retry_delay_secs=0.2",
      "get-nodes",
    ]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`error: websocket connection to 127.0.0.1:${port} timed out in connect()`);
  });
});

describe.skipIf(!located.found)("stock zeek-client against controller, agents and nodes", () => {
  let env: TestEnv;
  let port = 0;
  let base: string[] = [];
  const zc = (args: string[], opts?: ZeekClientOptions): Promise<ZeekClientRun> => runZeekClient(ZC, [...base, ...args], opts);
  const iniFile = (name: string, text: string): string => {
    const p = join(env.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const nodeStates = async (): Promise<Record<string, NodeState>> => {
    const run = await zc(["get-nodes"]);
    expect(run.code, describeRun(run)).toBe(0);
    const out: Record<string, NodeState> = {};
    for (const [instance, nodes] of Object.entries((json(run) as NodesOutput).results)) {
      for (const [name, s] of Object.entries(nodes)) if (s.mgmt_role === null) out[name] = { instance, ...s };
    }
    return out;
  };
  const allRunning = (count: number): Promise<Record<string, NodeState>> =>
    eventually(
      async () => {
        const nodes = await nodeStates();
        const list = Object.values(nodes);
        return list.length === count && list.every((n) => n.state === "RUNNING") ? nodes : undefined;
      },
      30_000,
      `${count} nodes RUNNING`,
    );

  beforeAll(async () => {
    env = new TestEnv("zmgmt-zc-");
    const controller = await env.startController({ requestTimeoutSec: CONTROLLER_TIMEOUT_SEC });
    port = controller.port;
    base = ["--controller", `127.0.0.1:${port}`, "--set", CLIENT_TIMEOUT];
  });
  afterAll(async () => env?.cleanup());

  // --- nothing connected, nothing staged -------------------------------------------------

  it("get-instances lists nothing (exit 0) before any agent checks in", async () => {
    const run = await zc(["get-instances"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(json(run)).toEqual({});
  });

  it("get-nodes reports 'no instances connected' (exit 1)", async () => {
    const run = await zc(["get-nodes"]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(json(run)).toEqual({ errors: [{ source: null, error: "no instances connected" }], results: {} });
  });

  it("get-config without a staged or deployed configuration logs the reason (exit 1)", async () => {
    const staged = await zc(["get-config"]);
    expect(staged.code, describeRun(staged)).toBe(1);
    expect(staged.stdout).toBe("");
    expect(staged.stderr).toContain("error: no staged configuration available");
    const deployed = await zc(["get-config", "--deployed", "--as-json"]);
    expect(deployed.code, describeRun(deployed)).toBe(1);
    expect(deployed.stderr).toContain("error: no deployed configuration available");
  });

  it("get-id-value, restart and deploy name what is missing (exit 1)", async () => {
    const idValue = await zc(["get-id-value", "Cluster::node"]);
    expect(idValue.code, describeRun(idValue)).toBe(1);
    expect(json(idValue)).toEqual({ errors: [{ source: null, error: "no cluster deployed" }], results: {} });
    const named = await zc(["get-id-value", "Cluster::node", "manager"]);
    expect(json(named)).toEqual({ errors: [{ source: null, error: "no cluster deployed" }], results: {} });
    const restart = await zc(["restart"]);
    expect(restart.code, describeRun(restart)).toBe(1);
    expect(json(restart)).toEqual({ errors: [{ source: null, error: "no instances connected" }], results: {} });
    const deploy = await zc(["deploy"]);
    expect(deploy.code, describeRun(deploy)).toBe(1);
    expect(json(deploy)).toEqual({ errors: ["no configuration available to deploy"], results: {} });
  });

  it("stage-config rejects a configuration the controller finds invalid, and stages nothing", async () => {
    const bad = iniFile(
      "bad.ini",
      "[instances]\ninstance-1 = 127.0.0.1:3000\n\n[manager]\ninstance = instance-1\nrole = manager\nport = 3000\n\n" +
        "[worker-01]\ninstance = instance-9\nrole = worker\n",
    );
    const run = await zc(["stage-config", bad]);
    expect(run.code, describeRun(run)).toBe(1);
    const out = json(run) as ResultsOutput<unknown>;
    expect(out.results).toEqual({});
    expect(out.errors).toEqual(
      expect.arrayContaining([
        "node 'manager' port 3000/tcp conflicts with agent port on instance 'instance-1'",
        "node 'worker-01' has undeclared instance name 'instance-9'",
      ]),
    );
    expect((await zc(["get-config"])).stderr).toContain("no staged configuration available");
  });

  it("stage-config refuses a file it cannot parse without contacting the controller", async () => {
    const run = await zc(["stage-config", iniFile("norole.ini", "[manager]\ninstance = instance-1\n")]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("configuration has errors, not sending");
    const missing = await zc(["stage-config", join(env.dir, "does-not-exist.ini")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("please provide a cluster configuration file");
  });

  it("test-timeout --with-state gets the controller's timeout answer (exit 0)", async () => {
    const run = await zc(["test-timeout", "--with-state"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(json(run)).toEqual({ error: "request timed out", success: false });
    // The controller answers after its own timeout, not at once.
    expect(run.ms).toBeGreaterThanOrEqual(CONTROLLER_TIMEOUT_SEC * 1000 - 500);
  });

  // --- agents connect --------------------------------------------------------------------

  it("get-instances lists agents that dial in, by name, with their address (exit 0)", async () => {
    await env.startAgent({ name: "instance-1", controllerPort: port, extraArgs: AGENT_ARGS });
    await env.startAgent({ name: "instance-2", controllerPort: port, extraArgs: AGENT_ARGS });
    const out = await eventually(
      async () => {
        const run = await zc(["get-instances"]);
        expect(run.code, describeRun(run)).toBe(0);
        const o = json(run) as Record<string, unknown>;
        return Object.keys(o).length === 2 ? o : undefined;
      },
      20_000,
      "two instances",
    );
    expect(out).toEqual({ "instance-1": { host: "127.0.0.1" }, "instance-2": { host: "127.0.0.1" } });
  });

  it("get-nodes shows each agent before anything is deployed (exit 0)", async () => {
    const run = await zc(["get-nodes"]);
    expect(run.code, describeRun(run)).toBe(0);
    const out = json(run) as NodesOutput;
    expect(out.errors).toEqual([]);
    expect(Object.keys(out.results).sort()).toEqual(["instance-1", "instance-2"]);
    for (const name of ["instance-1", "instance-2"]) {
      expect(out.results[name]).toEqual({
        [name]: { state: "RUNNING", mgmt_role: "AGENT", cluster_role: null, pid: expect.any(Number) as unknown },
      });
      expect(pidAlive(out.results[name]![name]!.pid)).toBe(true);
    }
  });

  it("get-id-value before the first deployment says 'no cluster deployed' (exit 1)", async () => {
    const run = await zc(["get-id-value", "Cluster::node"]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(json(run)).toEqual({ errors: [{ source: null, error: "no cluster deployed" }], results: {} });
  });

  // --- staging ---------------------------------------------------------------------------

  let stagedId = "";

  it("stage-config from stdin answers with the configuration's id (exit 0)", async () => {
    const run = await zc(["stage-config", "-"], { input: CLUSTER_INI });
    expect(run.code, describeRun(run)).toBe(0);
    const out = json(run) as ResultsOutput<{ id: string }>;
    expect(out.errors).toEqual([]);
    expect(out.results.id).toMatch(UUID);
    stagedId = out.results.id;
  });

  it("get-config renders the staged configuration as INI, to stdout or a file", async () => {
    const run = await zc(["get-config"]);
    expect(run.code, describeRun(run)).toBe(0);
    const ini = parseIni(run.stdout);
    expect(ini).toEqual({
      instances: { "instance-1": null, "instance-2": null },
      "logger-01": { instance: "instance-1", role: "LOGGER" },
      manager: { instance: "instance-1", role: "MANAGER" },
      "proxy-01": { instance: "instance-2", role: "PROXY" },
      "worker-01": { instance: "instance-1", role: "WORKER", interface: "lo" },
      "worker-02": { instance: "instance-2", role: "WORKER", interface: "lo", env: "ROLE_NOTE=second" },
    });
    const file = join(env.dir, "staged.ini");
    const toFile = await zc(["get-config", "--staged", "-f", file]);
    expect(toFile.code, describeRun(toFile)).toBe(0);
    expect(toFile.stdout).toBe("");
    expect(env.readFile(file)).toBe(run.stdout);
  });

  it("get-config --as-json shows the staged configuration as sent: no ports assigned yet", async () => {
    const run = await zc(["--set", "client.pretty_json=False", "get-config", "--as-json"]);
    expect(run.code, describeRun(run)).toBe(0);
    // One line: pretty_json=False.
    expect(run.stdout.trim().split("\n")).toHaveLength(1);
    const out = json(run) as ConfigOutput;
    expect(out.id).toBe(stagedId);
    expect(out.instances).toEqual([{ name: "instance-1" }, { name: "instance-2" }]);
    expect(out.nodes.map((n) => n.name)).toEqual(["logger-01", "manager", "proxy-01", "worker-01", "worker-02"]);
    expect(out.nodes.find((n) => n.name === "worker-02")).toEqual({
      cpu_affinity: null,
      env: { ROLE_NOTE: "second" },
      instance: "instance-2",
      interface: "lo",
      metrics_port: null,
      name: "worker-02",
      options: null,
      port: null,
      role: "WORKER",
      scripts: null,
    });
  });

  // --- deploying -------------------------------------------------------------------------

  it("deploy starts every node and reports each one with its instance (exit 0)", async () => {
    const run = await zc(["deploy"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(json(run)).toEqual({
      errors: [],
      results: {
        id: stagedId,
        nodes: {
          "logger-01": { instance: "instance-1", success: true },
          manager: { instance: "instance-1", success: true },
          "proxy-01": { instance: "instance-2", success: true },
          "worker-01": { instance: "instance-1", success: true },
          "worker-02": { instance: "instance-2", success: true },
        },
      },
    });
  });

  it("get-nodes shows every node RUNNING with pid, assigned ports and roles (exit 0)", async () => {
    const nodes = await allRunning(5);
    const b = env.brokerStartPort;
    const m = env.metricsStartPort;
    // Auto-assigned: one counter across instances, by instance, then role, then name.
    expect(nodes.manager).toMatchObject({ instance: "instance-1", cluster_role: "MANAGER", port: b, mgmt_role: null });
    expect(nodes["logger-01"]).toMatchObject({ instance: "instance-1", cluster_role: "LOGGER", port: b + 1 });
    expect(nodes["proxy-01"]).toMatchObject({ instance: "instance-2", cluster_role: "PROXY", port: b + 2 });
    expect(nodes["worker-01"]).not.toHaveProperty("port");
    for (const n of Object.values(nodes)) {
      expect(pidAlive(n.pid)).toBe(true);
      expect(n.metrics_port).toBeGreaterThanOrEqual(m);
      expect(n.metrics_port).toBeLessThan(m + 5);
    }
  });

  it("get-config --deployed has the observed hosts and the assigned ports", async () => {
    const run = await zc(["get-config", "--deployed", "--as-json"]);
    expect(run.code, describeRun(run)).toBe(0);
    const out = json(run) as ConfigOutput;
    expect(out.id).toBe(stagedId);
    expect(out.instances).toEqual([
      { name: "instance-1", host: "127.0.0.1" },
      { name: "instance-2", host: "127.0.0.1" },
    ]);
    expect(out.nodes.find((n) => n.name === "manager")?.port).toBe(env.brokerStartPort);
    // The staged configuration stays as it was sent.
    const staged = json(await zc(["get-config", "--as-json"])) as ConfigOutput;
    expect(staged.nodes.find((n) => n.name === "manager")?.port).toBeNull();
  });

  it("get-id-value answers from every node, or the named ones (exit 0)", async () => {
    const all = await zc(["get-id-value", "Cluster::node"]);
    expect(all.code, describeRun(all)).toBe(0);
    expect(json(all)).toEqual({
      errors: [],
      results: { "logger-01": "logger-01", manager: "manager", "proxy-01": "proxy-01", "worker-01": "worker-01", "worker-02": "worker-02" },
    });
    const named = await zc(["get-id-value", "ROLE_NOTE", "worker-02"]);
    expect(named.code, describeRun(named)).toBe(0);
    expect(json(named)).toEqual({ errors: [], results: { "worker-02": "second" } });
    const layout = await zc(["get-id-value", "Cluster::nodes", "manager"]);
    expect((json(layout) as ResultsOutput<Record<string, Record<string, unknown>>>).results.manager?.["proxy-01"]).toMatchObject({
      node_type: "Cluster::PROXY",
      ip: "127.0.0.1",
      p: { port: env.brokerStartPort + 2, proto: "tcp" },
    });
  });

  it("get-id-value reports unknown nodes and unknown identifiers per node (exit 1)", async () => {
    const unknownNode = await zc(["get-id-value", "Cluster::node", "worker-01", "nope"]);
    expect(unknownNode.code, describeRun(unknownNode)).toBe(1);
    expect(json(unknownNode)).toEqual({
      errors: [{ source: "nope", error: "unknown cluster node" }],
      results: { "worker-01": "worker-01" },
    });
    const unknownId = await zc(["get-id-value", "No::such_id", "manager"]);
    expect(unknownId.code, describeRun(unknownId)).toBe(1);
    const out = json(unknownId) as ResultsOutput<unknown>;
    expect(out.results).toEqual({});
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ source: "manager", error: expect.stringMatching(/\S/) as unknown });
  });

  // --- restarting ------------------------------------------------------------------------

  it("restart of named nodes restarts exactly those (exit 0)", async () => {
    const before = await allRunning(5);
    const run = await zc(["restart", "worker-01", "proxy-01"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(json(run)).toEqual({ errors: [], results: { "proxy-01": true, "worker-01": true } });
    const after = await allRunning(5);
    for (const [name, s] of Object.entries(after)) {
      if (name === "worker-01" || name === "proxy-01") expect(s.pid, name).not.toBe(before[name]!.pid);
      else expect(s.pid, name).toBe(before[name]!.pid);
    }
  });

  it("restart without names restarts every node (exit 0)", async () => {
    const before = await allRunning(5);
    const run = await zc(["restart"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(json(run)).toEqual({
      errors: [],
      results: { "logger-01": true, manager: true, "proxy-01": true, "worker-01": true, "worker-02": true },
    });
    const after = await allRunning(5);
    for (const [name, s] of Object.entries(after)) expect(s.pid, name).not.toBe(before[name]!.pid);
  });

  it("restart of an unknown node names it (exit 1) and restarts nothing", async () => {
    const before = await allRunning(5);
    const run = await zc(["restart", "nope"]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(json(run)).toEqual({ errors: [{ source: "nope", error: "unknown cluster node" }], results: {} });
    const after = await allRunning(5);
    for (const [name, s] of Object.entries(after)) expect(s.pid, name).toBe(before[name]!.pid);
  });

  // --- watching --------------------------------------------------------------------------

  it("monitor prints the controller's events until interrupted (exit 0)", async () => {
    const monitor = startZeekClient(ZC, [...base, "monitor"], { timeoutMs: 60_000 });
    try {
      // Events only reach a peered monitor; get-nodes until the monitor has seen one.
      await eventually(
        async () => {
          await zc(["get-nodes"]);
          return monitor.stdout().includes('received "Management::Controller::API::get_nodes_response(');
        },
        20_000,
        "monitor to print a get_nodes_response",
      );
    } finally {
      monitor.signal("SIGINT");
    }
    const run = await monitor.done;
    expect(run.code, describeRun(run)).toBe(0);
    expect(run.stdout).toMatch(
      /^received "Management::Controller::API::get_nodes_response\(reqid: <class '[\w.]+String'>, results: <class '[\w.]+Vector'>\)"$/m,
    );
  });

  // --- the client's own timeouts ---------------------------------------------------------

  it("test-timeout gives up after the client's own timeout (exit 1) while another client loops get-nodes", async () => {
    let looping = true;
    let loops = 0;
    const loop = (async () => {
      while (looping) {
        const r = await zc(["get-nodes"]);
        expect(r.code, describeRun(r)).toBe(0);
        loops++;
      }
    })();
    let run: ZeekClientRun;
    try {
      // Neither the controller's pings nor the other client's answers may restart the wait.
      run = await zc(["--set", "client.request_timeout_secs=8", "test-timeout"], { timeoutMs: 30_000 });
    } finally {
      looping = false;
      await loop;
    }
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain(`error: no response received: websocket connection to 127.0.0.1:${port} timed out`);
    expect(run.ms).toBeGreaterThanOrEqual(8000);
    expect(run.ms).toBeLessThan(20_000);
    expect(loops).toBeGreaterThanOrEqual(3);
  });

  it("stage-config of a configuration too large for the controller shows the refusal (exit 1)", async () => {
    // interface, unlike env and scripts, is not shlex-split: zeek-client handles it quickly.
    const huge = CLUSTER_INI.replace("interface = lo\nenv", `interface = ${"x".repeat(5 * 1024 * 1024)}\nenv`);
    const run = await zc(["stage-config", iniFile("huge.ini", huge)]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(json(run)).toEqual({
      errors: [expect.stringMatching(/^request refused: frame of \d+ bytes exceeds the limit of 4194304 bytes$/)],
      results: {},
    });
    expect((json(await zc(["get-config", "--as-json"])) as ConfigOutput).id).toBe(stagedId);
  });

  // --- redeploying -----------------------------------------------------------------------

  it("deploy-config stages and deploys in one go, printing the deploy's answer (exit 0)", async () => {
    const smaller = CLUSTER_INI.replace(/\[worker-02\][^[]*$/, "");
    const run = await zc(["deploy-config", iniFile("smaller.ini", smaller)]);
    expect(run.code, describeRun(run)).toBe(0);
    const out = json(run) as DeployOutput;
    expect(out.errors).toEqual([]);
    expect(out.results.id).toMatch(UUID);
    expect(out.results.id).not.toBe(stagedId);
    expect(Object.keys(out.results.nodes).sort()).toEqual(["logger-01", "manager", "proxy-01", "worker-01"]);
    const nodes = await allRunning(4);
    expect(Object.keys(nodes)).not.toContain("worker-02");
    const deployed = json(await zc(["get-config", "--deployed", "--as-json"])) as ConfigOutput;
    expect(deployed.id).toBe(out.results.id);
  });

  it("deploy-config of an invalid configuration prints the staging errors only (exit 1) and deploys nothing", async () => {
    const deployedBefore = (json(await zc(["get-config", "--deployed", "--as-json"])) as ConfigOutput).id;
    const bad = CLUSTER_INI.replace("[worker-01]\ninstance = instance-1", "[worker-01]\ninstance = instance-9");
    const run = await zc(["deploy-config", iniFile("bad-deploy.ini", bad)]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(json(run)).toEqual({ errors: ["node 'worker-01' has undeclared instance name 'instance-9'"], results: {} });
    expect((json(await zc(["get-config", "--deployed", "--as-json"])) as ConfigOutput).id).toBe(deployedBefore);
  });

  it("deploy-config naming an instance that never connects fails, naming it (exit 1)", async () => {
    const withThird =
      CLUSTER_INI.replace("instance-2\n\n", "instance-2\ninstance-3\n\n") + "\n[worker-03]\ninstance = instance-3\nrole = worker\n";
    const run = await zc(["deploy-config", iniFile("third.ini", withThird)]);
    expect(run.code, describeRun(run)).toBe(1);
    // Staging and deploy errors arrive as plain strings, not per-source records.
    const out = json(run) as ResultsOutput<unknown, string>;
    expect(out.errors.join("\n")).toContain("instance-3");
  });

  // --- settings from the environment and a file ------------------------------------------

  it("reaches the controller through ZEEK_CLIENT_CONFIG_SETTINGS and through a -c file", async () => {
    const viaEnv = await runZeekClient(ZC, ["get-instances"], {
      env: { ZEEK_CLIENT_CONFIG_SETTINGS: `controller.host=127.0.0.1 controller.port=${port} ${CLIENT_TIMEOUT}` },
    });
    expect(viaEnv.code, describeRun(viaEnv)).toBe(0);
    expect(Object.keys(json(viaEnv) as Record<string, unknown>).sort()).toEqual(["instance-1", "instance-2"]);
    const cfg = iniFile("client.cfg", `[controller]\nhost = 127.0.0.1\nport = ${port}\n\n[client]\npretty_json = False\n`);
    const viaFile = await runZeekClient(ZC, ["-c", cfg, "get-instances"]);
    expect(viaFile.code, describeRun(viaFile)).toBe(0);
    expect(viaFile.stdout.trim()).toBe('{"instance-1": {"host": "127.0.0.1"}, "instance-2": {"host": "127.0.0.1"}}');
    const viaFileEnv = await runZeekClient(ZC, ["get-instances"], { env: { ZEEK_CLIENT_CONFIG_FILE: cfg } });
    expect(viaFileEnv.code, describeRun(viaFileEnv)).toBe(0);
    expect(viaFileEnv.stdout).toBe(viaFile.stdout);
  });

  it("stage-config and get-config round-trip every node setting zeek-client knows", async () => {
    const full = `[instances]
instance-1 = 127.0.0.1:2151
instance-2

[manager]
instance = instance-1
role = manager
port = 2300
metrics_port = 9300

[worker-01]
instance = instance-2
role = worker
interface = eth1
cpu_affinity = 1
scripts = site/b.zeek "dir with space/a.zeek"
env = FOO=bar BAZ="a b"
`;
    const staged = await zc(["stage-config", iniFile("full.ini", full)]);
    expect(staged.code, describeRun(staged)).toBe(0);
    const run = await zc(["get-config"]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(parseIni(run.stdout)).toEqual({
      instances: { "instance-1": "127.0.0.1:2151", "instance-2": null },
      manager: { instance: "instance-1", role: "MANAGER", port: "2300", metrics_port: "9300" },
      "worker-01": {
        instance: "instance-2",
        role: "WORKER",
        interface: "eth1",
        cpu_affinity: "1",
        scripts: '"dir with space/a.zeek" site/b.zeek',
        env: 'BAZ="a b" FOO=bar',
      },
    });
  });

  // --- a node that cannot run ----------------------------------------------------------

  it("deploy shows a node that fails at start with its output (exit 1) and the rollback, and get-nodes shows its state when kept", async () => {
    const broken = `[instances]
instance-1
instance-2

[manager]
instance = instance-1
role = manager

[broken]
instance = instance-2
role = worker
env = ZMGMT_NODE_COMMAND="sh -c 'echo about to fail; echo boom >&2; exit 3'"
`;
    const before = (json(await zc(["get-config", "--deployed", "--as-json"])) as ConfigOutput).id;
    // Failing, then rolling back, can take two controller timeouts on a loaded machine.
    const run = await zc(["--set", "client.request_timeout_secs=60", "deploy-config", iniFile("broken.ini", broken)], {
      timeoutMs: 90_000,
    });
    expect(run.code, describeRun(run)).toBe(1);
    const out = json(run) as DeployOutput;
    expect(out.results.nodes).toEqual({
      broken: { instance: "instance-2", success: false, stdout: "about to fail", stderr: "boom" },
      manager: { instance: "instance-1", success: true },
    });
    // The controller rolls back by default; zeek-client shows that among the errors.
    expect(out.errors.join("\n")).toContain(`deployment failed; rolled back to configuration ${before}`);
    // zeek-client cannot opt out; zmgmt can, and then the failing node stays.
    const kept = env.spawnCli(["--controller", `127.0.0.1:${port}`, "deploy", "--no-rollback", "--json"]);
    expect(await new Promise((res) => kept.child.once("exit", res)), kept.output()).toBe(1);
    const nodes = await zc(["get-nodes"]);
    // zeek-client's rule: node states are shown, not judged; only failed Results fail it.
    expect(nodes.code, describeRun(nodes)).toBe(0);
    const state = (json(nodes) as NodesOutput).results["instance-2"]?.broken?.state;
    expect(["CRASHED", "PENDING", "FAILED"]).toContain(state);
  });
});

describe.skipIf(!located.found)("stock zeek-client over TLS", () => {
  let env: TestEnv;
  const f = (name: string): string => join(env.dir, name);
  beforeAll(() => {
    env = new TestEnv("zmgmt-zc-tls-");
    writeFileSync(
      f("openssl.cnf"),
      "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n" +
        "[ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n" +
        "[server_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n" +
        "[client_ext]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n",
    );
    const ssl = (...args: string[]): void => void execFileSync("openssl", args, { cwd: env.dir, stdio: ["ignore", "ignore", "pipe"] });
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    ssl(
      "req",
      "-x509",
      "-new",
      "-config",
      "openssl.cnf",
      "-extensions",
      "ca_ext",
      ...newKey,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=ca",
    );
    for (const [name, ext, serial] of [
      ["server", "server_ext", "1001"],
      ["client", "client_ext", "1002"],
    ] as const) {
      ssl("req", "-new", "-config", "openssl.cnf", ...newKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
      ssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        serial,
        "-days",
        "2",
        "-extfile",
        "openssl.cnf",
        "-extensions",
        ext,
        "-out",
        `${name}.pem`,
      );
    }
  });
  afterAll(async () => env?.cleanup());

  const tlsArgs = (): string[] => ["--tls-cert", f("server.pem"), "--tls-key", f("server.key")];

  it("ssl.enable alone reaches a TLS controller without verifying it (exit 0); plaintext does not (exit 1)", async () => {
    const { port } = await env.startController({ extraArgs: tlsArgs() });
    const base = [
      "--controller",
      `127.0.0.1:${port}`,
      "--set",
      "client.peering_attempts=2",
      "--set",
      "client.peering_retry_delay_secs=0.2",
    ];
    const secure = await runZeekClient(ZC, [...base, "--set", "ssl.enable=true", "get-instances"]);
    expect(secure.code, describeRun(secure)).toBe(0);
    expect(json(secure)).toEqual({});
    const plain = await runZeekClient(ZC, [...base, "get-instances"]);
    expect(plain.code, describeRun(plain)).toBe(1);
    expect(plain.stdout).toBe("");
    expect(plain.stderr).toMatch(/^error: /m);
  });

  it("with client certificates required, a client presenting one gets in (exit 0) and one without does not (exit 1)", async () => {
    const { port } = await env.startController({ extraArgs: [...tlsArgs(), "--tls-ca", f("ca.pem"), "--tls-verify-clients"] });
    const base = [
      "--controller",
      `127.0.0.1:${port}`,
      "--set",
      "client.peering_attempts=2",
      "--set",
      "client.peering_retry_delay_secs=0.2",
      "--set",
      "ssl.enable=true",
    ];
    const cfg = f("client-tls.cfg");
    writeFileSync(cfg, `[ssl]\ncertificate = ${f("client.pem")}\nkeyfile = ${f("client.key")}\ncafile = ${f("ca.pem")}\n`);
    const withCert = await runZeekClient(ZC, ["-c", cfg, ...base, "get-instances"]);
    expect(withCert.code, describeRun(withCert)).toBe(0);
    expect(json(withCert)).toEqual({});
    const withoutCert = await runZeekClient(ZC, [...base, "get-instances"]);
    expect(withoutCert.code, describeRun(withoutCert)).toBe(1);
    expect(withoutCert.stdout).toBe("");
    expect(withoutCert.stderr).toMatch(/^error: /m);
  });
});

describe.skipIf(!located.found)("stock zeek-client against zmgmt up", () => {
  let env: TestEnv;
  afterAll(async () => env?.cleanup());

  it("test-timeout with an 8 s timeout ends (exit 1) within 20 s while up watches the cluster", async () => {
    env = new TestEnv("zmgmt-zc-up-");
    const { args, controllerPort } = await upArgs();
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 40_000, "the cluster to come up").catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; output:\n${up.output()}`);
    });
    const base = ["--controller", `127.0.0.1:${controllerPort}`];
    const nodes = await runZeekClient(ZC, [...base, "get-nodes"]);
    expect(nodes.code, describeRun(nodes)).toBe(0);
    const statuses = Object.values((json(nodes) as NodesOutput).results).flatMap((n) => Object.values(n));
    expect(statuses.filter((s) => s.mgmt_role === null).map((s) => s.state)).toEqual(Array(5).fill("RUNNING"));
    const run = await runZeekClient(ZC, [...base, "--set", "client.request_timeout_secs=8", "test-timeout"], { timeoutMs: 30_000 });
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stderr).toContain(`error: no response received: websocket connection to 127.0.0.1:${controllerPort} timed out`);
    expect(run.ms).toBeGreaterThanOrEqual(8000);
    expect(run.ms).toBeLessThan(20_000);
  });
});
