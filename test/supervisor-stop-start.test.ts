// Stopping a node on an operator's request: the process goes, the node stays (state
// "stopped"), nothing revives it, and start() or restart() bring it back. Also the /proc
// sampler behind CPU % and RSS.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessManager, type ProcessManagerEvents } from "../src/supervisor/process-manager.js";
import { UsageSampler } from "../src/supervisor/proc-usage.js";

const LONG_RUNNING = [process.execPath, "-e", `console.log("ready"); setInterval(() => {}, 1000)`];
const BUSY = [process.execPath, "-e", `for (;;) {}`];

let tmp: string;
let pm: ProcessManager;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function nextEvent<K extends keyof ProcessManagerEvents>(name: K, timeoutMs = 10_000): Promise<ProcessManagerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${name}`)), timeoutMs);
    pm.once(name, ((ev: ProcessManagerEvents[K][0]) => {
      clearTimeout(timer);
      resolve(ev);
    }) as never);
  });
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "zmgmt-stop-"));
  pm = new ProcessManager({ termIntervalMs: 200, maxTermAttempts: 3, initialDelayMs: 100, outputGraceMs: 100 });
});

afterEach(async () => {
  await pm.shutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("ProcessManager stop/start", () => {
  it("keeps a stopped node down past its revival delay and starts it again on request", async () => {
    const spawned = nextEvent("spawn");
    expect(pm.create({ name: "w", command: LONG_RUNNING, directory: path.join(tmp, "w") })).toBe("");
    const first = await spawned;
    const stopped = nextEvent("stopped");
    expect(await pm.stop("w")).toBe(true);
    expect(await stopped).toMatchObject({ name: "w", pid: first.pid, reason: "stop" });
    expect(isAlive(first.pid)).toBe(false);
    const spawns: number[] = [];
    pm.on("spawn", (ev) => spawns.push(ev.pid));
    await new Promise((r) => setTimeout(r, 600));
    expect(spawns).toEqual([]);
    const [st] = pm.status("w");
    expect(st).toMatchObject({ name: "w", state: "stopped", restarts: 0 });
    expect(st?.pid).toBeUndefined();
    expect(st?.lastExit?.signal).toBe("SIGTERM");
    expect(fs.readFileSync(path.join(tmp, "w", "stdout"), "utf8")).toContain(`pid ${first.pid} killed by SIGTERM (stop)`);

    // Starting a node that runs changes nothing; starting the stopped one spawns it.
    const again = nextEvent("spawn");
    expect(pm.start("w")).toBe(true);
    const second = await again;
    expect(second.pid).not.toBe(first.pid);
    expect(pm.status("w")[0]).toMatchObject({ state: "running", restarts: 1, pid: second.pid });
    expect(pm.start("w")).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(spawns).toEqual([second.pid]);
  });

  it("lets restart() bring back a stopped node, and knows no unknown names", async () => {
    const spawned = nextEvent("spawn");
    pm.create({ name: "r", command: LONG_RUNNING, directory: path.join(tmp, "r") });
    await spawned;
    await pm.stop("r");
    const again = nextEvent("spawn");
    expect(pm.restart("r")).toBe(true);
    expect((await again).reason).toBe("restart");
    expect(pm.status("r")[0]?.state).toBe("running");
    expect(await pm.stop("nope")).toBe(false);
    expect(pm.start("nope")).toBe(false);
  });

  it("stops a node that is waiting out its revival delay without reviving it", async () => {
    const exited = nextEvent("exit");
    pm.create({ name: "c", command: ["sh", "-c", "exit 3"], directory: path.join(tmp, "c") });
    expect(await exited).toMatchObject({ willRevive: true });
    expect(await pm.stop("c")).toBe(true);
    const spawns: number[] = [];
    pm.on("spawn", (ev) => spawns.push(ev.pid));
    await new Promise((r) => setTimeout(r, 500));
    expect(spawns).toEqual([]);
    expect(pm.status("c")[0]?.state).toBe("stopped");
  });
});

describe("UsageSampler", () => {
  it("reads RSS and a CPU rate from /proc, and leaves out processes that are gone", async () => {
    const spawned = nextEvent("spawn");
    pm.create({ name: "busy", command: BUSY, directory: path.join(tmp, "busy") });
    const { pid } = await spawned;
    const sampler = new UsageSampler();
    await new Promise((r) => setTimeout(r, 300));
    const [usage, ...rest] = await sampler.sample([
      { name: "busy", pid },
      { name: "gone", pid: 2 ** 22 + 1 },
    ]);
    expect(rest).toEqual([]);
    expect(usage).toMatchObject({ name: "busy", pid });
    expect(usage!.rssBytes).toBeGreaterThan(1024 * 1024);
    // A spinning loop uses some CPU however busy the machine is (an idle process reads 0).
    expect(usage!.cpuPercent).toBeGreaterThan(0);
    expect(usage!.cpuPercent).toBeLessThanOrEqual(400);
  });
});
