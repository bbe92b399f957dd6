import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ProcessManager,
  type ExitEvent,
  type ProcessManagerEvents,
  type ProcessManagerOptions,
  type SpawnEvent,
} from "../src/supervisor/process-manager.js";
import { SupervisorEnv } from "../src/supervisor/api.js";

const node = (script: string): string[] => [process.execPath, "-e", script];
// Stays up until killed; prints once it is ready to be signalled.
const LONG_RUNNING = node(`console.log("ready"); setInterval(() => {}, 1000)`);
const IGNORES_TERM = node(`process.on("SIGTERM", () => console.log("term")); console.log("ready"); setInterval(() => {}, 1000)`);

let tmp: string;
let managers: ProcessManager[] = [];

function manager(opts: ProcessManagerOptions = {}): ProcessManager {
  const pm = new ProcessManager({ termIntervalMs: 100, maxTermAttempts: 3, initialDelayMs: 100, outputGraceMs: 100, ...opts });
  managers.push(pm);
  return pm;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A killed orphan may stay a zombie for a while if nobody reaps it; that counts as gone.
function isRunning(pid: number): boolean {
  if (process.platform !== "linux") return isAlive(pid);
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function within<T>(p: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function nextEvent<K extends keyof ProcessManagerEvents>(
  pm: ProcessManager,
  event: K,
  timeoutMs = 5000,
): Promise<ProcessManagerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pm.off(event, listener as never);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (ev: ProcessManagerEvents[K][0]) => {
      clearTimeout(timer);
      resolve(ev);
    };
    pm.once(event, listener as never);
  });
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

function expectGaps(actual: number[], expected: number[], slack: number): void {
  expect(actual.length).toBeGreaterThanOrEqual(expected.length);
  expected.forEach((want, i) => {
    const got = actual[i]!;
    // Gaps are measured between spawn events, so a slow spawn() can shorten the next gap a little.
    if (got < want - 30 || got > want + slack) {
      throw new Error(`gap ${i}: ${got.toFixed(0)} ms, want ${want} (all: ${actual.map((g) => g.toFixed(0)).join(", ")})`);
    }
  });
}

function countLines(text: string, line: string): number {
  return text.split("\n").filter((l) => l === line).length;
}

beforeEach(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "zmgmt-pm-")));
});

afterEach(async () => {
  for (const pm of managers) {
    pm.killAll("SIGKILL");
    await pm.shutdown();
  }
  managers = [];
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("ProcessManager", () => {
  it("starts a node in its directory with the supervisor's environment plus its own, and destroys it", async () => {
    const pm = manager();
    const dir = path.join(tmp, "nodes", "a");
    const script = `console.log(JSON.stringify({ cwd: process.cwd(), sup: process.env[${JSON.stringify(SupervisorEnv.supervisorPid)}], x: process.env.ZM_TEST_X, path: !!process.env.PATH })); setInterval(() => {}, 1000)`;
    const spawned = nextEvent(pm, "spawn");
    expect(pm.create({ name: "a", command: node(script), directory: dir, env: { ZM_TEST_X: "42" }, meta: { role: "worker" } })).toBe("");
    const [pending] = pm.status("a");
    expect(pending?.state).toBe("starting");
    expect(pending?.pid).toBeUndefined();

    const s = await spawned;
    expect(s).toMatchObject({ name: "a", revived: false, reason: "create" });
    expect(s.previous).toBeUndefined();
    await waitFor(() => pm.outputs("a")!.stdout !== "", "output");
    expect(JSON.parse(pm.outputs("a")!.stdout)).toEqual({ cwd: dir, sup: String(process.pid), x: "42", path: true });

    const [st] = pm.status("");
    expect(st).toMatchObject({ name: "a", state: "running", pid: s.pid, restarts: 0, meta: { role: "worker" } });
    expect(st!.spec.command).toEqual(node(script));
    expect(isAlive(s.pid)).toBe(true);

    const stopped = nextEvent(pm, "stopped");
    expect(pm.destroy("a")).toBe(true);
    expect(pm.status()).toEqual([]);
    await within(pm.settled(), "the stop");
    expect(isAlive(s.pid)).toBe(false);
    expect(await stopped).toMatchObject({ name: "a", pid: s.pid, reason: "destroy", signal: "SIGTERM", killed: false, signalsSent: 1 });
  });

  it("reports upstream's error strings and rejects unknown names", () => {
    const pm = manager();
    const base = { command: LONG_RUNNING, directory: path.join(tmp, "x") };
    expect(pm.create({ ...base, name: "" })).toBe("node names must not be an empty string");
    expect(pm.create({ ...base, name: "a b" })).toBe("node names must not contain spaces: 'a b'");
    expect(pm.create({ ...base, name: "dup" })).toBe("");
    expect(pm.create({ ...base, name: "dup" })).toBe("node with name 'dup' already exists");
    fs.writeFileSync(path.join(tmp, "file"), "");
    const bad = path.join(tmp, "file", "sub");
    expect(pm.create({ ...base, name: "nodir", directory: bad })).toBe(`failed to create working directory ${bad}\n`);
    expect(pm.status("nodir")).toEqual([]);

    expect(pm.destroy("nope")).toBe(false);
    expect(pm.restart("nope")).toBe(false);
    expect(pm.status("nope")).toEqual([]);
    expect(pm.outputs("nope")).toBeUndefined();
    expect(pm.status().map((s) => s.name)).toEqual(["dup"]);
  });

  it("restart replaces the process and hands over the previous run's output", async () => {
    const pm = manager();
    const first = nextEvent(pm, "spawn");
    pm.create({
      name: "r",
      command: node(`console.log("run " + process.pid); setInterval(() => {}, 1000)`),
      directory: path.join(tmp, "r"),
    });
    const s1 = await first;
    await waitFor(() => pm.outputs("r")!.stdout !== "", "first run's output");

    const second = nextEvent(pm, "spawn");
    expect(pm.restart("r")).toBe(true);
    expect(pm.status("r")[0]).toMatchObject({ state: "stopping", pid: s1.pid });
    const s2 = await second;
    expect(s2.pid).not.toBe(s1.pid);
    expect(s2).toMatchObject({ reason: "restart", revived: false, previous: { stdout: `run ${s1.pid}`, stderr: "" } });
    expect(isAlive(s1.pid)).toBe(false);
    expect(isAlive(s2.pid)).toBe(true);
    expect(pm.status("r")[0]).toMatchObject({ state: "running", pid: s2.pid, restarts: 1 });
  });

  it("revives a crashing node with a delay that doubles on every third attempt", async () => {
    const pm = manager({ initialDelayMs: 150, doubleEvery: 3 });
    const times: number[] = [];
    const spawns: SpawnEvent[] = [];
    const exits: ExitEvent[] = [];
    const statesDuringBackoff: string[] = [];
    pm.on("spawn", (e) => {
      times.push(performance.now());
      spawns.push(e);
    });
    pm.on("exit", (e) => {
      exits.push(e);
      const [st] = pm.status("c");
      statesDuringBackoff.push(`${st?.state}:${st?.pid ?? "-"}:${st?.nextRevivalAt !== undefined}`);
    });
    pm.create({ name: "c", command: ["sh", "-c", "exit 3"], directory: path.join(tmp, "c") });
    await waitFor(() => times.length >= 8, "eight spawns", 10_000);
    pm.destroy("c");

    expectGaps(gaps(times), [150, 150, 150, 300, 300, 300, 600], 120);
    expect(exits[0]).toMatchObject({
      name: "c",
      code: 3,
      signal: null,
      willRevive: true,
      message: `Supervised node 'c' (PID ${spawns[0]!.pid}) exited prematurely with status 3`,
    });
    expect(spawns.slice(1).every((s) => s.revived && s.reason === "revival")).toBe(true);
    expect(spawns[1]!.message).toBe(`Supervised node 'c' (PID ${spawns[1]!.pid}) revived after premature exit`);
    expect(statesDuringBackoff[0]).toBe("backoff:-:true");
  });

  it("gives up after maxAttempts with the delay capped, and restart() starts it again", async () => {
    const pm = manager({ initialDelayMs: 100, doubleEvery: 1, maxDelayMs: 250, maxAttempts: 3 });
    const times: number[] = [];
    pm.on("spawn", () => times.push(performance.now()));
    const failed = nextEvent(pm, "failed");
    pm.create({ name: "g", command: ["sh", "-c", "echo boom >&2; exit 4"], directory: path.join(tmp, "g") });
    expect(await failed).toMatchObject({ name: "g", attempts: 3, lastExit: { code: 4 }, outputs: { stdout: "", stderr: "boom" } });
    expect(times.length).toBe(4);
    // Uncapped, the last gap would be 400 ms.
    expectGaps(gaps(times), [100, 200, 250], 90);

    await sleep(500);
    expect(times.length).toBe(4);
    const [st] = pm.status("g");
    expect(st).toMatchObject({ state: "failed", revivalAttempts: 3, lastExit: { code: 4 } });
    expect(st?.pid).toBeUndefined();
    expect(pm.outputs("g")).toEqual({ stdout: "", stderr: "boom" });

    const again = nextEvent(pm, "spawn");
    const exit = nextEvent(pm, "exit");
    expect(pm.restart("g")).toBe(true);
    expect(await again).toMatchObject({ reason: "restart", previous: { stderr: "boom" } });
    expect(await exit).toMatchObject({ willRevive: true });
  });

  it("resets the revival counters after enough uptime", async () => {
    const pm = manager({ initialDelayMs: 100, doubleEvery: 1, resetAfterMs: 300 });
    const times: number[] = [];
    const exits: ExitEvent[] = [];
    pm.on("spawn", () => times.push(performance.now()));
    pm.on("exit", (e) => exits.push(e));
    // Runs 1, 2 and 4 die at once, run 3 lives 0.5 s, run 5 stays up.
    const script =
      "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -eq 3 ] && sleep 0.5; [ $n -ge 5 ] && exec sleep 30; exit 1";
    pm.create({ name: "u", command: ["sh", "-c", script], directory: path.join(tmp, "u") });
    await waitFor(() => times.length >= 5, "five spawns", 10_000);

    expect(exits[2]!.uptimeMs).toBeGreaterThanOrEqual(450);
    // With the reset the wait before run 5 is 200 ms; without it, 800 ms.
    const g = gaps(times);
    expect(g[3]).toBeGreaterThanOrEqual(170);
    expect(g[3]).toBeLessThan(450);
    expect(pm.status("u")[0]).toMatchObject({ state: "running", revivalAttempts: 2, revivalDelayMs: 400 });

    // A run that is still up resets the counters too, once it has been up long enough.
    await sleep(400);
    expect(pm.status("u")[0]).toMatchObject({ state: "running", revivalAttempts: 0, revivalDelayMs: 100 });
  });

  it("captures each run's output in files and keeps the last lines of each stream", async () => {
    const pm = manager({ outputMaxLines: 5, initialDelayMs: 50 });
    const dir = path.join(tmp, "o");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "stdout"), "stale\n", { mode: 0o644 });
    const script = `
      const fs = require("fs");
      const first = !fs.existsSync("ran");
      fs.writeFileSync("ran", "");
      if (first) {
        for (let i = 1; i <= 8; i++) { console.log("out" + i); console.error("err" + i); }
        console.log("");
        process.stdout.write("partial-out");
        process.stderr.write("partial-err");
        process.exitCode = 2;
      } else {
        console.log("second run");
        setInterval(() => {}, 1000);
      }`;
    let files: { out: string; err: string; mode: number } | undefined;
    pm.once("exit", () => {
      files = {
        out: fs.readFileSync(path.join(dir, "stdout"), "utf8"),
        err: fs.readFileSync(path.join(dir, "stderr"), "utf8"),
        mode: fs.statSync(path.join(dir, "stdout")).mode & 0o777,
      };
    });
    const exit = nextEvent(pm, "exit");
    pm.create({ name: "o", command: node(script), directory: dir });

    const e = await exit;
    expect(e.code).toBe(2);
    expect(e.outputs).toEqual({
      stdout: "out5\nout6\nout7\nout8\npartial-out",
      stderr: "err5\nerr6\nerr7\nerr8\npartial-err",
    });
    const all = (prefix: string) => [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `${prefix}${i}`).join("\n");
    // Runs append: what was there stays, and each run ends with a line saying how it ended.
    const trailer = new RegExp(`^--- \\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z pid ${e.pid} exited with code 2 ---$`);
    const [outBody, outTrailer] = splitTrailer(files!.out);
    const [errBody, errTrailer] = splitTrailer(files!.err);
    expect({ out: outBody, err: errBody, mode: files!.mode }).toEqual({
      out: `stale\n${all("out")}\npartial-out\n`,
      err: `${all("err")}\npartial-err\n`,
      mode: 0o600,
    });
    expect(outTrailer).toMatch(trailer);
    expect(errTrailer).toBe(outTrailer);

    const revival = await nextEvent(pm, "spawn");
    expect(revival).toMatchObject({ revived: true, previous: e.outputs });
    await waitFor(() => pm.outputs("o")!.stdout === "second run", "second run's output");
    expect(pm.outputs("o")!.stderr).toBe("");
    // The crashed run's evidence survives its revival.
    expect(fs.readFileSync(path.join(dir, "stdout"), "utf8")).toBe(`${files!.out}second run\n`);
    expect(fs.readFileSync(path.join(dir, "stderr"), "utf8")).toBe(files!.err);
  });

  it("rotates a node's output files by size, keeping a bounded number of generations", async () => {
    const pm = manager({ outputMaxBytes: 1000, outputKeepFiles: 2 });
    const dir = path.join(tmp, "rot");
    const script = `for (let i = 0; i < 100; i++) console.log("line " + String(i).padStart(3, "0") + " " + "x".repeat(40)); setInterval(() => {}, 1000);`;
    pm.create({ name: "rot", command: node(script), directory: dir });
    await waitFor(() => pm.outputs("rot")!.stdout.endsWith("line 099 " + "x".repeat(40)), "all output");
    const size = (f: string) => fs.statSync(path.join(dir, f)).size;
    expect(size("stdout")).toBeLessThanOrEqual(1000);
    expect(size("stdout.1")).toBeLessThanOrEqual(1000);
    expect(size("stdout.2")).toBeLessThanOrEqual(1000);
    expect(fs.existsSync(path.join(dir, "stdout.3"))).toBe(false);
    expect(fs.readFileSync(path.join(dir, "stdout"), "utf8")).toContain("line 099");
    expect(fs.readFileSync(path.join(dir, "stdout.1"), "utf8")).not.toContain("line 099");
    // The tail reported to the agent does not depend on the files.
    expect(pm.outputs("rot")!.stdout.split("\n")).toHaveLength(100);
  });

  it("SIGKILLs a node that ignores SIGTERM after maxTermAttempts", async () => {
    const pm = manager({ termIntervalMs: 100, maxTermAttempts: 3 });
    pm.create({ name: "t", command: IGNORES_TERM, directory: path.join(tmp, "t") });
    await waitFor(() => pm.outputs("t")!.stdout === "ready", "readiness");
    const pid = pm.status("t")[0]!.pid!;

    const stopped = nextEvent(pm, "stopped");
    const t0 = performance.now();
    pm.destroy("t");
    const ev = await stopped;
    const elapsed = performance.now() - t0;
    expect(ev).toMatchObject({ pid, reason: "destroy", signal: "SIGKILL", killed: true, signalsSent: 4 });
    expect(ev.outputs.stdout).toBe("ready\nterm\nterm\nterm");
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(3000);
    expect(isAlive(pid)).toBe(false);
  });

  it("stops the children a node started too", async () => {
    const pm = manager();
    pm.create({ name: "w", command: ["sh", "-c", "sleep 30 & echo $!; wait"], directory: path.join(tmp, "w") });
    await waitFor(() => pm.outputs("w")!.stdout !== "", "the grandchild's pid");
    const grandchild = Number(pm.outputs("w")!.stdout);
    try {
      expect(isRunning(grandchild)).toBe(true);
      pm.destroy("w");
      await within(pm.settled(), "the stop");
      await waitFor(() => !isRunning(grandchild), "the grandchild to go", 2000);
    } finally {
      try {
        process.kill(grandchild, "SIGKILL");
      } catch {
        // already gone, as it should be
      }
    }
  });

  it("keeps sending SIGTERM when SIGKILL is disabled", async () => {
    const pm = manager({ termIntervalMs: 100, maxTermAttempts: 2, sigkill: false });
    pm.create({ name: "k", command: IGNORES_TERM, directory: path.join(tmp, "k") });
    await waitFor(() => pm.outputs("k")!.stdout === "ready", "readiness");
    const pid = pm.status("k")[0]!.pid!;

    pm.restart("k");
    await waitFor(() => countLines(pm.outputs("k")!.stdout, "term") >= 5, "five SIGTERMs");
    expect(isAlive(pid)).toBe(true);
    expect(pm.status("k")[0]).toMatchObject({ state: "stopping", pid });

    const respawn = nextEvent(pm, "spawn");
    pm.killAll("SIGKILL");
    expect((await respawn).pid).not.toBe(pid);
    expect(isAlive(pid)).toBe(false);
  });

  it("frees a destroyed name at once, while the old process is still being stopped", async () => {
    const pm = manager({ termIntervalMs: 200, maxTermAttempts: 2 });
    const spec = { name: "d", command: IGNORES_TERM, directory: path.join(tmp, "d") };
    pm.create(spec);
    await waitFor(() => pm.outputs("d")!.stdout === "ready", "readiness");
    const oldPid = pm.status("d")[0]!.pid!;

    expect(pm.destroy("d")).toBe(true);
    const spawned = nextEvent(pm, "spawn");
    expect(pm.create(spec)).toBe("");
    expect(pm.status("d")[0]).toMatchObject({ state: "starting", restarts: 0 });
    const s = await spawned;
    expect(s.pid).not.toBe(oldPid);
    expect(s.previous).toBeUndefined();
    expect(isAlive(oldPid)).toBe(true);

    await within(pm.settled(), "the stop");
    expect(isAlive(oldPid)).toBe(false);
    expect(pm.status("d")[0]).toMatchObject({ state: "running", pid: s.pid });
    expect(isAlive(s.pid)).toBe(true);
  });

  it("shutdown stops every node with the same escalation and refuses new nodes", async () => {
    const pm = manager({ termIntervalMs: 100, maxTermAttempts: 2 });
    const stopped: string[] = [];
    pm.on("stopped", (e) => stopped.push(`${e.name}:${e.reason}:${e.killed}`));
    pm.create({ name: "s1", command: LONG_RUNNING, directory: path.join(tmp, "s1") });
    pm.create({ name: "s2", command: IGNORES_TERM, directory: path.join(tmp, "s2") });
    await waitFor(() => pm.outputs("s1")!.stdout === "ready" && pm.outputs("s2")!.stdout === "ready", "readiness");
    const pids = pm.status().map((s) => s.pid!);

    await within(pm.shutdown(), "shutdown");
    expect(pids.map(isAlive)).toEqual([false, false]);
    expect(stopped.sort()).toEqual(["s1:shutdown:false", "s2:shutdown:true"]);
    expect(pm.status()).toEqual([]);
    expect(pm.create({ name: "late", command: LONG_RUNNING, directory: path.join(tmp, "late") })).toBe("supervisor is shutting down");
  });

  it("treats a command that cannot be started as a crash with the reason in stderr", async () => {
    const pm = manager({ initialDelayMs: 50, maxAttempts: 1 });
    const spawns: SpawnEvent[] = [];
    const exits: ExitEvent[] = [];
    pm.on("spawn", (e) => spawns.push(e));
    pm.on("exit", (e) => exits.push(e));
    const dir = path.join(tmp, "x");
    const failed = nextEvent(pm, "failed");
    pm.create({ name: "x", command: ["zmgmt-no-such-command"], directory: dir });
    await failed;

    const msg = "command not found: zmgmt-no-such-command";
    expect(spawns.map((s) => s.pid)).toEqual([0, 0]);
    expect(exits[0]).toMatchObject({
      code: null,
      error: msg,
      willRevive: true,
      outputs: { stdout: "", stderr: msg },
      message: `Supervised node 'x' could not be started: ${msg}`,
    });
    expect(spawns[1]!.previous).toEqual({ stdout: "", stderr: msg });
    expect(exits[1]).toMatchObject({ willRevive: false });
    const lines = fs.readFileSync(path.join(dir, "stderr"), "utf8").split("\n");
    expect(lines.filter((l) => l === msg)).toHaveLength(2);
    expect(lines.filter((l) => l.endsWith(` could not be started: ${msg} ---`))).toHaveLength(2);
  });

  it("rejects CPUs that do not exist or cannot be used", () => {
    const pm = manager();
    const n = os.cpus().length;
    const dir = path.join(tmp, "p");
    const err = pm.create({ name: "p", command: LONG_RUNNING, directory: dir, cpuAffinity: n });
    expect(err).toBe(`cannot pin node 'p' to CPU ${n}: this machine has ${n} CPU${n === 1 ? "" : "s"} (0-${n - 1})`);
    expect(pm.create({ name: "p", command: LONG_RUNNING, directory: dir, cpuAffinity: -1 })).toMatch(
      /^invalid cpu_affinity for node 'p': -1/,
    );
    expect(pm.status("p")).toEqual([]);
    expect(fs.existsSync(dir)).toBe(false);

    const emptyPath = path.join(tmp, "empty-bin");
    fs.mkdirSync(emptyPath);
    const noTool = manager({ env: { PATH: emptyPath } });
    const why = noTool.create({ name: "p", command: LONG_RUNNING, directory: dir, cpuAffinity: 0 });
    expect(why).toMatch(/^cannot pin node 'p' to CPU 0: /);
    expect(why).toMatch(process.platform === "linux" ? /taskset .*not found/ : /only supported on Linux/);
  });

  it("pins a node to its CPU", async (ctx) => {
    const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
    const usable = allowed.split(",").flatMap((part) => {
      const [lo, hi] = part.split("-").map(Number);
      return Array.from({ length: (hi ?? lo!) - lo! + 1 }, (_, i) => lo! + i);
    });
    const hasTaskset = spawnSync("taskset", ["--version"]).error === undefined;
    if (usable.length < 2 || !hasTaskset) {
      console.log(`skipping CPU pinning: ${usable.length} usable CPU(s), taskset ${hasTaskset ? "present" : "missing"}`);
      ctx.skip();
      return;
    }
    const cpu = usable[usable.length - 1]!;
    const pm = manager({ maxAttempts: 0 });
    const spawned = nextEvent(pm, "spawn");
    expect(pm.create({ name: "pin", command: LONG_RUNNING, directory: path.join(tmp, "pin"), cpuAffinity: cpu })).toBe("");
    const s = await spawned;
    // "ready" comes from the node itself, so the pinning helper has done its work by then.
    await waitFor(() => pm.outputs("pin")!.stdout === "ready", "readiness");
    expect(pm.status("pin")[0]!.pid).toBe(s.pid);
    const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${s.pid}/status`, "utf8"))?.[1];
    expect(list).toBe(String(cpu));

    const failed = nextEvent(pm, "failed");
    pm.create({ name: "pin-missing", command: ["zmgmt-no-such-command"], directory: path.join(tmp, "pm"), cpuAffinity: cpu });
    expect((await failed).outputs.stderr).toBe("command not found: zmgmt-no-such-command");
  });
});

/** A file's body and its last line (the run's trailer). */
function splitTrailer(text: string): [string, string] {
  const lines = text.split("\n");
  lines.pop();
  const trailer = lines.pop() ?? "";
  return [lines.length ? lines.join("\n") + "\n" : "", trailer];
}
