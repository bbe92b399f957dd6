// State on disk under faults: a full disk (a small tmpfs) and a read-only one make
// stage-config fail with the reason instead of answering success for a configuration a
// restart would lose; state is owner-only and stale temporary files go away; a corrupt
// agent-state.json is quarantined and the agent that finds it keeps every node running.
// The disk scenarios mount file systems, so they need root (CI runs as root).

import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ControllerClient } from "../../src/client/controller-client.js";
import { resultConfiguration } from "../../src/client/controller-client.js";
import type { Configuration } from "../../src/management/types.js";
import {
  TestEnv,
  agentPid,
  allRunning,
  chaosNode,
  config,
  connectClient,
  eventually,
  expectOneProcessEach,
  kill9,
  startCluster,
  starts,
  waitInstances,
} from "./helpers.js";
import { killGroup } from "../helpers/cluster.js";

const isRoot = process.getuid?.() === 0;

let env: TestEnv | undefined;
const clients: ControllerClient[] = [];
const mounts: string[] = [];
const tmpfsDirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
  env = undefined;
  for (const m of mounts.splice(0).reverse()) {
    execFileSync("umount", ["-l", m]);
  }
  for (const d of tmpfsDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh tmpfs of `size` bytes, unmounted after the test. */
function tmpfs(size: number): string {
  const dir = mkdtempSync(join(tmpdir(), "zmgmt-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
  mounts.push(dir);
  tmpfsDirs.push(dir);
  return dir;
}

/** Writes until the file system holding `dir` is full. */
function fill(dir: string): string {
  const file = join(dir, "filler");
  try {
    writeFileSync(file, Buffer.alloc(64 * 1024 * 1024));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  }
  return file;
}

function stagedConfig(id: string): Configuration {
  // A configuration of a few kilobytes, in an env value as a password would be.
  const cfg = config([chaosNode("manager", "inst-1", "MANAGER", { SECRET: "s".repeat(4096) })], ["inst-1"]);
  return { ...cfg, id };
}

async function startController(stateDir: string): Promise<{ client: ControllerClient; pid: number }> {
  const c = await env!.startController({ requestTimeoutSec: 5, extraArgs: ["--state-dir", stateDir] });
  return { client: await connectClient(c.port, clients, 15_000), pid: c.proc.pid };
}

async function stopController(pid: number): Promise<void> {
  killGroup(pid, "SIGTERM");
  await eventually(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    15_000,
    "controller exit",
  );
}

async function stagedId(client: ControllerClient): Promise<string | undefined> {
  return resultConfiguration(await client.getConfiguration(false))?.id;
}

describe("state on disk: full, read-only, private, corrupt", () => {
  it.skipIf(!isRoot)(
    "a full disk fails stage-config with the reason; nothing is claimed, nothing lingers, a restart keeps the last stored config",
    async () => {
      env = new TestEnv("zmgmt-chaos-disk-");
      const stateDir = tmpfs(1024 * 1024);
      const first = await startController(stateDir);
      expect((await first.client.stageConfiguration(stagedConfig("cfg-a"))).map((r) => r.success)).toEqual([true]);

      const filler = fill(stateDir);
      const failed = await first.client.stageConfiguration(stagedConfig("cfg-b"));
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ success: false });
      expect(failed[0]!.error).toMatch(/could not store the configuration: .*(ENOSPC|no space left)/i);
      // The answer and the controller's view agree with the disk.
      expect(await stagedId(first.client)).toBe("cfg-a");
      const controllerDir = join(stateDir, "nodes", "controller");
      expect(readdirSync(controllerDir).filter((f) => f.includes(".tmp-"))).toEqual([]);

      await first.client.close();
      await stopController(first.pid);
      rmSync(filler);
      const second = await startController(stateDir);
      expect(await stagedId(second.client)).toBe("cfg-a");
      // With space again, staging works and survives a restart.
      expect((await second.client.stageConfiguration(stagedConfig("cfg-b"))).map((r) => r.success)).toEqual([true]);
      await second.client.close();
      await stopController(second.pid);
      const third = await startController(stateDir);
      expect(await stagedId(third.client)).toBe("cfg-b");
    },
  );

  it.skipIf(!isRoot)("a read-only state directory fails stage-config with the reason, even for root", async () => {
    env = new TestEnv("zmgmt-chaos-disk-");
    const stateDir = tmpfs(4 * 1024 * 1024);
    const ctl = await startController(stateDir);
    expect((await ctl.client.stageConfiguration(stagedConfig("cfg-a"))).map((r) => r.success)).toEqual([true]);
    // chmod does not stop root; a read-only bind mount over the controller's directory does
    // (the log file, opened before, stays writable through the original mount).
    const controllerDir = join(stateDir, "nodes", "controller");
    execFileSync("mount", ["--bind", controllerDir, controllerDir]);
    mounts.push(controllerDir);
    execFileSync("mount", ["-o", "remount,bind,ro", controllerDir]);

    const failed = await ctl.client.stageConfiguration(stagedConfig("cfg-b"));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ success: false });
    expect(failed[0]!.error).toMatch(/could not store the configuration: .*(EROFS|read-only)/i);
    expect(await stagedId(ctl.client)).toBe("cfg-a");

    execFileSync("umount", [controllerDir]);
    mounts.pop();
    expect((await ctl.client.stageConfiguration(stagedConfig("cfg-b"))).map((r) => r.success)).toEqual([true]);
    expect(await stagedId(ctl.client)).toBe("cfg-b");
  });

  it("stored configurations are owner-only, directories included, and stale temporary files are removed at start", async () => {
    env = new TestEnv("zmgmt-chaos-disk-");
    const stateDir = join(env.dir, "state");
    const controllerDir = join(stateDir, "nodes", "controller");
    // What an earlier version left: a world-readable file in open directories, and the
    // temporary file of a write that died before its rename.
    mkdirSync(controllerDir, { recursive: true, mode: 0o755 });
    chmodSync(controllerDir, 0o755);
    const stale = join(controllerDir, "configs.json.tmp-4242-1");
    writeFileSync(stale, "{half a write");
    const ctl = await startController(stateDir);
    expect((await ctl.client.stageConfiguration(stagedConfig("cfg-a"))).map((r) => r.success)).toEqual([true]);
    const file = join(controllerDir, "configs.json");
    expect(readFileSync(file, "utf8")).toContain("cfg-a");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(controllerDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(controllerDir, "management-controller.log")).mode & 0o777).toBe(0o600);
    expect(existsSync(stale)).toBe(false);
  });

  it("a corrupt agent-state.json is logged and quarantined, and the restarted agent keeps every node (same pids)", async () => {
    env = new TestEnv("zmgmt-chaos-disk-");
    const cluster = await startCluster(env, ["inst-1"], { controllerTimeoutSec: 15 });
    const client = await connectClient(cluster.controllerPort, clients, 20_000);
    await waitInstances(client, ["inst-1"]);
    const names = ["manager", "worker-01", "worker-02"];
    const cfg = config(
      [chaosNode("manager", "inst-1", "MANAGER"), chaosNode("worker-01", "inst-1", "WORKER"), chaosNode("worker-02", "inst-1", "WORKER")],
      ["inst-1"],
    );
    expect((await client.stageConfiguration(cfg)).filter((r) => !r.success)).toEqual([]);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    await allRunning(client, names);
    const before = expectOneProcessEach(env.dir, names);

    const agentDir = join(cluster.agents.get("inst-1")!.stateDir, "nodes", "inst-1");
    const stateFile = join(agentDir, "agent-state.json");
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(statSync(agentDir).mode & 0o777).toBe(0o700);
    writeFileSync(stateFile, '{"version":1,"config":{"id":"trunc');
    writeFileSync(join(agentDir, "agent-state.json.tmp-4242"), "{half a write");

    const oldAgent = agentPid(env.dir, "inst-1")!;
    kill9(oldAgent);
    await eventually(
      () => {
        const a = agentPid(env!.dir, "inst-1");
        return a !== undefined && a !== oldAgent;
      },
      15_000,
      "a new agent process",
    );
    await waitInstances(client, ["inst-1"]);
    // The controller brings the returning agent in line with the deployed configuration;
    // wait until the agent has adopted it (its state file is written again).
    await eventually(() => existsSync(stateFile) && readFileSync(stateFile, "utf8").includes(cfg.id), 20_000, "agent state rewritten");
    const after = await allRunning(client, names);
    expect(new Map([...after].map(([n, s]) => [n, s.pid]))).toEqual(before);
    expect(expectOneProcessEach(env.dir, names)).toEqual(before);
    // Each node was started exactly once.
    for (const n of names) expect(starts(cluster.agents.get("inst-1")!.stateDir, n)).toEqual([before.get(n)]);

    const quarantined = readdirSync(agentDir).filter((f) => f.startsWith("agent-state.json.corrupt-"));
    expect(quarantined).toHaveLength(1);
    expect(readFileSync(join(agentDir, quarantined[0]!), "utf8")).toBe('{"version":1,"config":{"id":"trunc');
    expect(existsSync(join(agentDir, "agent-state.json.tmp-4242"))).toBe(false);
    const log = readFileSync(join(agentDir, "management-inst-1.log"), "utf8");
    expect(log).toMatch(/agent state in \S+agent-state\.json could not be used \(not valid JSON: [^)]*\); moved it to \S+\.corrupt-/);
  });
});
