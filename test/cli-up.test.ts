// The README's first command: `zmgmt up` brings a whole local cluster up and Ctrl-C takes
// it all down again.

import { afterEach, describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { TestEnv, pidAlive, processesUnder, upArgs } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { ControllerClient, resultNodeStatuses } from "../src/client/controller-client.js";
import { errorMessage } from "../src/broker/errors.js";

let env: TestEnv;
afterEach(async () => {
  await env?.cleanup();
});

describe("zmgmt up", () => {
  it("deploys the default cluster, shows it coming up, and stops everything on SIGINT", async () => {
    env = new TestEnv();
    const { args, controllerPort } = await upArgs();
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 30_000, "the cluster to come up").catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}; output:\n${up.output()}`);
    });
    const out = up.output();
    for (const name of ["manager", "logger-01", "proxy-01", "worker-01", "worker-02"])
      expect(out).toMatch(new RegExp(`${name}\\s+\\w+\\s+RUNNING`));

    // It is a real cluster: a client sees it, including the co-located controller.
    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
    const statuses = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []);
    await client.close();
    expect(statuses.filter((s) => s.mgmtRole === "NONE").map((s) => s.state)).toEqual(Array(5).fill("RUNNING"));
    const controller = statuses.find((s) => s.mgmtRole === "CONTROLLER")!;
    expect(controller.port).toBe(controllerPort);
    const pids = statuses.map((s) => s.pid!).filter(Boolean);
    expect(pids.length).toBe(7);

    process.kill(up.pid, "SIGINT");
    await eventually(() => up.child.exitCode !== null, 20_000, "zmgmt up to exit");
    expect(up.child.exitCode).toBe(0);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    expect(processesUnder(env.dir)).toEqual([]);
  });

  it("refuses to start on a busy port without touching the running cluster, and starts again in the same folder", async () => {
    env = new TestEnv();
    // Both runs ask for the same ports.
    const { args, controllerPort } = await upArgs();
    const nodePids = async (): Promise<Record<string, number | undefined>> => {
      const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
      const statuses = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []);
      await client.close();
      return Object.fromEntries(statuses.map((s) => [s.node, s.pid]));
    };
    const first = env.spawnCli(args);
    await eventually(() => first.output().includes("cluster is up"), 30_000, "the first cluster to come up");
    const before = await nodePids();

    const second = env.spawnCli(args);
    const started = Date.now();
    await eventually(() => second.child.exitCode !== null, 15_000, "the second zmgmt up to give up");
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(second.child.exitCode).toBe(1);
    expect(second.output()).toContain(`zmgmt up: the controller port 127.0.0.1:${controllerPort} is in use`);
    expect(await nodePids()).toEqual(before);

    process.kill(first.pid, "SIGINT");
    await eventually(() => first.child.exitCode !== null, 20_000, "the first zmgmt up to exit");
    // State lives where it was asked to, not nested inside a daemon's own directory.
    const controllerDir = join(env.dir, "state", "nodes", `controller-${hostname()}`);
    expect(readdirSync(controllerDir)).toContain("configs.json");
    expect(existsSync(join(controllerDir, "state"))).toBe(false);

    // Again in the same folder: the controller resumes its deployment, and ours follows it.
    const again = env.spawnCli(args);
    await eventually(() => again.output().includes("cluster is up"), 40_000, "the cluster to come up again");
    expect(again.output()).not.toContain("still pending");
  });

  it("takes a controller name and can leave metrics ports unassigned, as upstream's test setups do", async () => {
    env = new TestEnv();
    const { args, controllerPort } = await upArgs(["--controller-name", "ctl-test", "--no-auto-assign-metrics-ports"]);
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 30_000, "the cluster to come up");
    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
    const statuses = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []);
    await client.close();
    expect(statuses.find((s) => s.mgmtRole === "CONTROLLER")?.node).toBe("ctl-test");
    const cluster = statuses.filter((s) => s.mgmtRole === "NONE");
    expect(cluster).toHaveLength(5);
    expect(cluster.map((s) => s.metricsPort)).toEqual(Array(5).fill(undefined));
  });

  it("its live view follows the controller's events: a node killed -9 shows its crash and revival with timestamps, without polling get-nodes", async () => {
    env = new TestEnv();
    const { args, controllerPort } = await upArgs(["--log-level", "DEBUG"]);
    const up = env.spawnCli(args);
    await eventually(() => up.output().includes("cluster is up"), 30_000, "the cluster to come up").catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}; output:\n${up.output()}`);
    });
    const controllerLog = join(env.dir, "state", "nodes", `controller-${hostname()}`, `management-controller-${hostname()}.log`);
    const getNodesSeen = (): number =>
      (readFileSync(controllerLog, "utf8").match(/rx Management::Controller::API::get_nodes_request /g) ?? []).length;
    // A quiet cluster: the view does not ask the controller anything.
    const quietFrom = getNodesSeen();
    await new Promise((r) => setTimeout(r, 3000));
    expect(getNodesSeen() - quietFrom).toBe(0);

    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
    const worker = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).find((s) => s.node === "worker-01")!;
    await client.close();
    const seenBefore = up.output().length;
    process.kill(worker.pid!, "SIGKILL");
    const stamp = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`;
    const crash = new RegExp(`^${stamp}  worker-01 on \\S+: RUNNING -> CRASHED \\(crashed\\)$`, "m");
    const killed = new RegExp(`^${stamp}  worker-01 on \\S+: node worker-01 \\(pid ${worker.pid}\\) killed by SIGKILL`, "m");
    const revived = new RegExp(`^${stamp}  worker-01 on \\S+: \\w+ -> RUNNING \\(revived\\)$`, "m");
    const newPid = new RegExp(`^${stamp}  worker-01 on \\S+: running as pid (\\d+)$`, "m");
    const after = (): string => up.output().slice(seenBefore);
    await eventually(() => revived.test(after()) && newPid.test(after()), 30_000, "the revival in up's output").catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}; output:\n${up.output()}`);
    });
    const lines = after();
    expect(lines).toMatch(crash);
    expect(lines).toMatch(killed);
    // In order: the crash, then the revival, then the new process.
    expect(lines.search(crash)).toBeLessThan(lines.search(revived));
    expect(Number(newPid.exec(lines)![1])).not.toBe(worker.pid);
  });
});
