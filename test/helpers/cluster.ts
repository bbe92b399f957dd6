// Real processes for end-to-end tests: the built CLI started as controller, agent (with its
// supervisor) and nodes, each on ephemeral loopback ports, in a temporary state directory.
// Every process is started in its own process group and killed (group-wide) at teardown.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync, readlinkSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Peer } from "../../src/broker/peer.js";
import type { ZeekEvent } from "../../src/broker/messages.js";
import { agentTopic } from "../../src/agent/api.js";
import { eventually } from "./ws.js";
import { controllerHeaders, instanceSecret, writeSecretFile } from "../../src/management/agent-auth.js";
import { resultInstances, type ControllerClient } from "../../src/client/controller-client.js";

/** The agent master secret of every controller a TestEnv starts; agents get secrets derived from it. */
export const TEST_AGENT_MASTER_SECRET = "test-agent-master-secret-0123456789abcdef";

export const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");

/** A free port for a listener; see freePortRange for why it is not a kernel-chosen one. */
export async function freePort(): Promise<number> {
  return freePortRange(1);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/**
 * A run of `count` free ports below the kernel's ephemeral range, for the controller's port
 * auto-assignment: consecutive ports inside that range get taken by outgoing connections
 * at any moment, and a random base keeps parallel test files apart.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if (!ports.every(reservePort)) continue;
    const checks = await Promise.all(ports.map(canBind));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no run of ${count} free ports found`);
}

/**
 * Test files run in parallel workers, and a port found free is bound only later; without
 * a shared claim two files could be handed the same port. A claim is a file created
 * exclusively and holds the claiming process's pid; a claim whose process is gone is taken over.
 */
const PORT_CLAIMS = join(tmpdir(), "zmgmt-test-port-claims");

function reservePort(port: number): boolean {
  mkdirSync(PORT_CLAIMS, { recursive: true });
  const file = join(PORT_CLAIMS, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    try {
      const owner = Number(readFileSync(file, "utf8"));
      if (owner === process.pid || (owner > 0 && pidAlive(owner))) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Arguments of `zmgmt up` on ports of its own (any free agent port), state in `state/` below
 * the test's directory, and the built-in node program unless `extra` says otherwise.
 */
export async function upArgs(extra: string[] = []): Promise<{ args: string[]; controllerPort: number }> {
  const controllerPort = await freePort();
  const args = [
    "up",
    ...(extra.includes("--zeek") ? [] : ["--no-zeek"]),
    "--state-dir",
    "state",
    "--controller-listen",
    `127.0.0.1:${controllerPort}`,
    "--agent-listen",
    "127.0.0.1:0",
    "--broker-start-port",
    String(await freePortRange(8)),
    "--metrics-start-port",
    String(await freePortRange(8)),
    ...extra,
  ];
  return { args, controllerPort };
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output(): string;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class TestEnv {
  readonly dir: string;
  private readonly procs: Proc[] = [];
  private readonly peers: Peer[] = [];

  constructor(prefix = "zmgmt-test-") {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  /** Runs `node dist/cli/main.js ...args` in its own process group. */
  spawnCli(args: string[], env: Record<string, string> = {}): Proc {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: this.dir,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const proc: Proc = { child, pid: child.pid!, output: () => out };
    this.procs.push(proc);
    return proc;
  }

  /** First ports the controller auto-assigns; ephemeral, so parallel tests do not collide. */
  brokerStartPort = 0;
  metricsStartPort = 0;

  async startController(
    opts: { requestTimeoutSec?: number; port?: number; name?: string; extraArgs?: string[]; env?: Record<string, string> } = {},
  ): Promise<{ proc: Proc; port: number; url: string }> {
    const port = opts.port ?? (await freePort());
    if (this.brokerStartPort === 0) {
      this.brokerStartPort = await freePortRange(16);
      this.metricsStartPort = await freePortRange(16);
    }
    const args = [
      "controller",
      "--listen",
      `127.0.0.1:${port}`,
      "--state-dir",
      join(this.dir, "state"),
      "--name",
      opts.name ?? "controller",
      "--broker-start-port",
      String(this.brokerStartPort),
      "--metrics-start-port",
      String(this.metricsStartPort),
      "--agent-master-secret-file",
      this.masterSecretFile(),
      ...(opts.extraArgs ?? []),
    ];
    if (opts.requestTimeoutSec !== undefined) args.push("--request-timeout", String(opts.requestTimeoutSec));
    const proc = this.spawnCli(args, opts.env);
    await eventually(() => this.canConnect(port), 15_000, `controller on port ${port}`);
    return { proc, port, url: `ws://127.0.0.1:${port}/v1/messages/json` };
  }

  /**
   * Starts `zmgmt agent`: the supervisor process, which starts the agent process.
   * With `controllerPort` the agent dials the controller; without it, it waits (c2a).
   */
  async startAgent(opts: {
    name: string;
    controllerPort?: number;
    port?: number;
    extraArgs?: string[];
    stateDir?: string;
    env?: Record<string, string>;
  }): Promise<{ proc: Proc; port: number; url: string; stateDir: string }> {
    const port = opts.port ?? (await freePort());
    const stateDir = opts.stateDir ?? join(this.dir, `state-${opts.name}`);
    const args = ["agent", "--name", opts.name, "--state-dir", stateDir, "--listen", `127.0.0.1:${port}`];
    if (opts.controllerPort !== undefined) args.push("--controller", `127.0.0.1:${opts.controllerPort}`);
    else args.push("--no-controller");
    const extra = opts.extraArgs ?? [];
    if (!extra.includes("--agent-secret-file") && !extra.includes("--no-controller")) {
      args.push("--agent-secret-file", this.agentSecretFile(opts.name));
    }
    // Nodes are the built-in program unless a test asks for Zeek, whatever the machine has installed.
    if (!extra.includes("--zeek")) args.push("--no-zeek");
    args.push(...extra);
    const proc = this.spawnCli(args, opts.env);
    await eventually(() => this.canConnect(port), 15_000, `agent ${opts.name} on port ${port}`);
    return { proc, port, url: `ws://127.0.0.1:${port}/v1/messages/json`, stateDir };
  }

  /** The master secret file controllers started here use. */
  masterSecretFile(): string {
    const file = join(this.dir, "agent-master-secret");
    if (!existsSync(file)) writeSecretFile(file, TEST_AGENT_MASTER_SECRET);
    return file;
  }

  /** A file holding the secret of agent `name` for controllers started here. */
  agentSecretFile(name: string): string {
    const file = join(this.dir, `agent-secret-${name}`);
    writeSecretFile(file, instanceSecret(TEST_AGENT_MASTER_SECRET, name));
    return file;
  }

  /**
   * A test-side stand-in for the controller, dialing an agent that listens (c2a); it proves
   * itself as controllers started here do.
   */
  async dialAgent(url: string, name: string, events?: ZeekEvent[]): Promise<Peer> {
    const peer = new Peer({
      url,
      topics: [agentTopic(name)],
      headers: controllerHeaders(TEST_AGENT_MASTER_SECRET, name),
      initialDelayMs: 100,
      maxDelayMs: 500,
    });
    // Record from the start: the agent greets a new controller right after the handshake.
    if (events) peer.on("event", (_t, e) => events.push(e));
    peer.start();
    this.peers.push(peer);
    await peer.waitReady(10_000);
    return peer;
  }

  canConnect(port: number): Promise<boolean> {
    return new Promise((res) => {
      const sock = createConnectionSafe(port);
      sock.once("connect", () => {
        sock.destroy();
        res(true);
      });
      sock.once("error", () => res(false));
    });
  }

  /** A file's text, or "" while it does not exist. */
  readFile(...parts: string[]): string {
    const p = join(...parts);
    return existsSync(p) ? readFileSync(p, "utf8") : "";
  }

  /** The messages of a process's management log (`<stateDir>/nodes/<name>/management-<name>.log`), a line each. */
  logMessages(stateDir: string, name: string): string {
    return this.readFile(stateDir, "nodes", name, `management-${name}.log`)
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => (JSON.parse(line) as { message: string }).message)
      .join("\n");
  }

  async cleanup(): Promise<void> {
    for (const p of this.peers) await p.close();
    // SIGTERM first so supervisors stop their nodes; then make sure the groups are gone.
    for (const p of this.procs) killGroup(p.pid, "SIGTERM");
    await eventually(
      () => this.procs.every((p) => p.child.exitCode !== null || p.child.signalCode !== null),
      15_000,
      "processes to exit",
    ).catch(() => undefined);
    for (const p of this.procs) killGroup(p.pid, "SIGKILL");
    // Nodes run in process groups of their own; anything still working inside this test's
    // directory is a leak, and is killed here rather than left behind.
    for (const pid of processesUnder(this.dir)) killGroup(pid, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Pids whose working directory lies inside `dir`. */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) out.push(Number(entry));
    } catch {
      // gone or not ours to inspect
    }
  }
  return out;
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

import { createConnection } from "node:net";
function createConnectionSafe(port: number) {
  return createConnection({ port, host: "127.0.0.1" });
}

/** The process's exit code once it has exited (null after a signal); rejects after `timeoutMs`. */
export function exitCode(proc: Proc, timeoutMs = 30_000): Promise<number | null> {
  if (proc.child.exitCode !== null) return Promise.resolve(proc.child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`process did not exit: ${proc.output()}`)), timeoutMs);
    proc.child.once("exit", (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/** The names get-instances lists, sorted. */
export async function instanceNames(client: ControllerClient): Promise<string[]> {
  return (resultInstances(await client.getInstances()) ?? []).map((i) => i.name).sort();
}
