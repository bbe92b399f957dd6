// Owns the cluster node processes of one supervisor: spawning, output capture, stopping with
// escalation and revival after crashes. It knows nothing about the network; callers turn its
// return values and events into SupervisorControl responses and notifications.
//
// Orphans: children run in their own process group (so a stop reaches wrappers such as `sh -c`
// and their children too), which also means a terminal's Ctrl-C reaches only the supervisor,
// which is expected to call shutdown(). If the supervisor dies without doing so (SIGKILL, crash),
// nothing stops the children: the kernel re-parents them and they keep running. Upstream nodes
// poll their parent once a second and exit when it is gone; to allow the same, every child gets
// the supervisor's pid (SupervisorEnv.supervisorPid) and can exit once that process no longer exists (or its ppid changes).
// killAll() is synchronous so that it can be called from a process 'exit' handler.

import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as path from "node:path";
import type { NodeOutputs } from "../management/types.js";
import { SupervisorEnv } from "./api.js";
import { LineCapture, OutputFile, runTrailer } from "./output-capture.js";
import { copySpec, isDefined, runOutputs, signalRun, type NodeRecord, type Run } from "./run.js";
import type {
  ExitEvent,
  ExitInfo,
  NodeSpec,
  NodeStatus,
  ProcessManagerEvents,
  ProcessManagerOptions,
  SpawnEvent,
  SpawnReason,
  StopReason,
} from "./process-types.js";
import { checkAffinity, describeExit, describeSpawnError, findExecutable, isDirectory } from "./process-util.js";

export type * from "./process-types.js";

export class ProcessManager extends EventEmitter<ProcessManagerEvents> {
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly liveRuns = new Map<Run, NodeRecord>();
  private readonly backgroundStops = new Set<Promise<void>>();
  private closed = false;

  private readonly termIntervalMs: number;
  private readonly maxTermAttempts: number;
  private readonly sigkill: boolean;
  private readonly outputMaxLines: number;
  private readonly outputMaxBytes: number;
  private readonly outputKeepFiles: number;
  private readonly outputGraceMs: number;
  private readonly initialDelayMs: number;
  private readonly doubleEvery: number;
  private readonly resetAfterMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAttempts: number | undefined;
  private readonly baseEnv: NodeJS.ProcessEnv;

  constructor(options: ProcessManagerOptions = {}) {
    super();
    this.termIntervalMs = options.termIntervalMs ?? 2000;
    this.maxTermAttempts = options.maxTermAttempts ?? 13;
    this.sigkill = options.sigkill ?? true;
    this.outputMaxLines = options.outputMaxLines ?? 100;
    this.outputMaxBytes = options.outputMaxBytes ?? 10 * 1024 * 1024;
    this.outputKeepFiles = options.outputKeepFiles ?? 2;
    this.outputGraceMs = options.outputGraceMs ?? 200;
    this.initialDelayMs = options.initialDelayMs ?? 1000;
    this.doubleEvery = Math.max(1, options.doubleEvery ?? 3);
    this.resetAfterMs = options.resetAfterMs ?? 30_000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.maxAttempts = options.maxAttempts;
    this.baseEnv = options.env ?? process.env;
  }

  /** "" on success, otherwise the reason (upstream's wording where upstream has one). */
  create(spec: NodeSpec): string {
    const name = spec.name;
    if (this.closed) return "supervisor is shutting down";
    if (name === "") return "node names must not be an empty string";
    if (name.includes(" ")) return `node names must not contain spaces: '${name}'`;
    if (this.nodes.has(name)) return `node with name '${name}' already exists`;
    if (spec.command.length === 0 || spec.command[0] === "") return `node '${name}' has no command`;
    if (spec.cpuAffinity !== undefined) {
      const err = checkAffinity(name, spec.cpuAffinity, this.baseEnv.PATH);
      if (err) return err;
    }
    const directory = path.resolve(spec.directory || ".");
    try {
      fs.mkdirSync(directory, { recursive: true });
    } catch {
      // The trailing newline is part of upstream's message.
      return `failed to create working directory ${spec.directory}\n`;
    }
    const rec: NodeRecord = {
      spec: copySpec(spec),
      directory,
      state: "starting",
      removed: false,
      restarts: 0,
      revivalAttempts: 0,
      revivalDelayMs: this.initialDelayMs,
      pendingSpawn: undefined,
      revivalTimer: undefined,
      nextRevivalAt: undefined,
    };
    this.nodes.set(name, rec);
    this.scheduleSpawn(rec, "create");
    return "";
  }

  /** false for an unknown name; the name is free again as soon as this returns. */
  destroy(name: string): boolean {
    if (name === "") {
      for (const n of [...this.nodes.keys()]) this.destroy(n);
      return true;
    }
    const rec = this.nodes.get(name);
    if (!rec) return false;
    this.drop(rec, "destroy");
    return true;
  }

  /** false for an unknown name; true before the new process exists. */
  restart(name: string): boolean {
    if (name === "") {
      for (const n of [...this.nodes.keys()]) this.restart(n);
      return true;
    }
    const rec = this.nodes.get(name);
    if (!rec) return false;
    // An operator's restart is a fresh start, also for a node that was given up on or stopped.
    rec.held = false;
    rec.revivalAttempts = 0;
    rec.revivalDelayMs = this.initialDelayMs;
    this.clearRevival(rec);
    // A pending spawn or a restart already under way will produce a fresh process anyway.
    if (rec.pendingSpawn || rec.state === "stopping") return true;
    const run = rec.run;
    if (!run || run.finalized) {
      this.scheduleSpawn(rec, "restart");
      return true;
    }
    rec.state = "stopping";
    void this.stopRun(run, "restart").then(() => {
      if (rec.removed || rec.run !== run) return;
      this.spawnRun(rec, "restart");
    });
    return true;
  }

  /**
   * Stops a node's process and keeps the node down (state "stopped") until start() or
   * restart(); resolves once the process is gone, false for an unknown name.
   */
  async stop(name: string): Promise<boolean> {
    const rec = this.nodes.get(name);
    if (!rec) return false;
    rec.held = true;
    if (rec.pendingSpawn) clearImmediate(rec.pendingSpawn);
    rec.pendingSpawn = undefined;
    this.clearRevival(rec);
    const run = rec.run;
    if (run && !run.finalized) {
      rec.state = "stopping";
      await this.stopRun(run, "stop");
    }
    if (!rec.removed && rec.run === run) this.settleStop(rec);
    return true;
  }

  /** After a stop: stopped, unless start() or restart() came in while it was under way. */
  private settleStop(rec: NodeRecord): void {
    if (rec.held) rec.state = "stopped";
    else if (!rec.pendingSpawn) this.scheduleSpawn(rec, "restart");
  }

  /** Starts a stopped node; any other node is left as it is. false for an unknown name. */
  start(name: string): boolean {
    const rec = this.nodes.get(name);
    if (!rec) return false;
    if (!rec.held) return true;
    rec.held = false;
    this.resetRevival(rec);
    if (rec.state === "stopped") this.scheduleSpawn(rec, "restart");
    return true;
  }

  status(name = ""): NodeStatus[] {
    const recs = name === "" ? [...this.nodes.values()] : [this.nodes.get(name)].filter(isDefined);
    return recs.map((rec) => {
      this.maybeResetRevival(rec);
      const run = rec.run;
      const st: NodeStatus = {
        name: rec.spec.name,
        spec: copySpec(rec.spec),
        state: rec.state,
        restarts: rec.restarts,
        revivalAttempts: rec.revivalAttempts,
        revivalDelayMs: rec.revivalDelayMs,
      };
      if (rec.spec.meta !== undefined) st.meta = rec.spec.meta;
      if (run?.alive) {
        st.pid = run.pid;
        st.startedAt = run.startedAt;
      }
      if (rec.nextRevivalAt !== undefined) st.nextRevivalAt = rec.nextRevivalAt;
      if (rec.lastExit) st.lastExit = { ...rec.lastExit };
      return st;
    });
  }

  /** Tails of the current run (or of the last one, until the next spawn); undefined if unknown. */
  outputs(name: string): NodeOutputs | undefined {
    const rec = this.nodes.get(name);
    if (!rec) return undefined;
    return rec.run ? runOutputs(rec.run) : { stdout: "", stderr: "" };
  }

  /** Stops every node with the usual escalation; resolves once all processes are gone. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const rec of [...this.nodes.values()]) this.drop(rec, "shutdown");
    await this.settled();
  }

  /** Resolves once every stop started by destroy() or shutdown() has finished. */
  async settled(): Promise<void> {
    while (this.backgroundStops.size > 0) await Promise.all([...this.backgroundStops]);
  }

  /**
   * Sends a signal to every live child (and its process group) at once, without waiting; meant
   * for emergencies. Deaths caused this way count as crashes unless a stop was already under way.
   */
  killAll(signal: NodeJS.Signals = "SIGKILL"): void {
    for (const run of this.liveRuns.keys()) signalRun(run, signal);
  }

  private scheduleSpawn(rec: NodeRecord, reason: SpawnReason): void {
    rec.state = "starting";
    rec.pendingSpawn = setImmediate(() => {
      rec.pendingSpawn = undefined;
      if (!rec.removed) this.spawnRun(rec, reason);
    });
  }

  private spawnRun(rec: NodeRecord, reason: SpawnReason): void {
    const { spec, directory } = rec;
    const name = spec.name;
    const previousRun = rec.run;
    const previous = previousRun && previousRun.stdout.captured + previousRun.stderr.captured > 0 ? runOutputs(previousRun) : undefined;
    if (previousRun) rec.restarts++;

    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const warn = (stream: string) => (err: Error) =>
      this.emit("warning", { name, message: `cannot write ${stream} file of node '${name}': ${err.message}` });
    const run: Run = {
      pid: 0,
      alive: false,
      startMono: 0,
      startedAt: 0,
      stdout: new LineCapture(this.outputMaxLines, this.openOutputFile(name, directory, "stdout"), warn("stdout")),
      stderr: new LineCapture(this.outputMaxLines, this.openOutputFile(name, directory, "stderr"), warn("stderr")),
      pipesClosed: false,
      finalized: false,
      done,
      resolveDone,
    };
    rec.run = run;
    rec.state = "starting";

    const env: NodeJS.ProcessEnv = { ...this.baseEnv, ...spec.env, [SupervisorEnv.supervisorPid]: String(process.pid) };
    let argv = spec.command;
    let failure: string | undefined;
    if (!isDirectory(directory)) {
      failure = `node '${name}' failed to set working directory ${directory}`;
    } else if (spec.cpuAffinity !== undefined) {
      // taskset reports a missing command only as its own exit status; look it up here so the
      // operator gets the same message as without pinning.
      if (!findExecutable(spec.command[0]!, env.PATH, directory)) failure = `command not found: ${spec.command[0]}`;
      argv = ["taskset", "-c", String(spec.cpuAffinity), ...spec.command];
    }

    if (failure === undefined) {
      try {
        const child = spawn(argv[0]!, argv.slice(1), {
          cwd: directory,
          env,
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        run.child = child;
        child.stdout.on("data", (chunk: Buffer) => run.stdout.push(chunk));
        child.stderr.on("data", (chunk: Buffer) => run.stderr.push(chunk));
        // A read error on a pipe only ends the capture; unhandled it would take the supervisor down.
        child.stdout.on("error", () => {});
        child.stderr.on("error", () => {});
        child.once("exit", (code, signal) => this.onExit(rec, run, code, signal));
        child.once("close", () => {
          run.pipesClosed = true;
          if (!run.alive && run.exit) this.finalize(rec, run);
        });
        child.on("error", (err: NodeJS.ErrnoException) => {
          // Signals go through process.kill(), so once there is a pid nothing else reports here.
          if (run.pid === 0 && !run.exit) this.failRun(rec, run, describeSpawnError(err, spec.command[0]!));
        });
        if (child.pid !== undefined) {
          run.pid = child.pid;
          run.alive = true;
          this.liveRuns.set(run, rec);
          rec.state = "running";
        }
      } catch (err) {
        failure = describeSpawnError(err as NodeJS.ErrnoException, spec.command[0]!);
      }
    }

    // Taken once spawn() has returned: forking a large supervisor can take a while under load,
    // and the revival delay is meant to separate the runs, not the fork calls.
    run.startMono = performance.now();
    run.startedAt = Date.now();
    const ev: SpawnEvent = { name, pid: run.pid, revived: reason === "revival", reason };
    if (previous) ev.previous = previous;
    if (reason === "revival" && run.pid !== 0) {
      ev.message = `Supervised node '${name}' (PID ${run.pid}) revived after premature exit`;
    }
    this.emit("spawn", ev);
    if (failure !== undefined) {
      const msg = failure;
      // Deferred so that the run looks the same to listeners as an asynchronous spawn error.
      setImmediate(() => this.failRun(rec, run, msg));
    }
  }

  private openOutputFile(name: string, directory: string, stream: "stdout" | "stderr"): OutputFile | undefined {
    const file = path.join(directory, stream);
    try {
      return OutputFile.open(file, this.outputMaxBytes, this.outputKeepFiles);
    } catch (err) {
      this.emit("warning", { name, message: `cannot open ${file}: ${(err as Error).message}` });
      return undefined;
    }
  }

  private failRun(rec: NodeRecord, run: Run, message: string): void {
    if (run.exit) return;
    run.stderr.push(message + "\n");
    run.exit = { code: null, signal: null, error: message, at: Date.now() };
    run.exitMono = performance.now();
    this.finalize(rec, run);
  }

  private onExit(rec: NodeRecord, run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (run.exit) return;
    run.alive = false;
    run.exit = { code, signal, at: Date.now() };
    run.exitMono = performance.now();
    this.liveRuns.delete(run);
    if (run.stop?.timer) clearTimeout(run.stop.timer);
    // Whether this is a crash is settled in finalize(); until then the node is not running.
    if (!run.stopReason && !rec.removed && rec.run === run) rec.state = "backoff";
    if (run.pipesClosed) {
      this.finalize(rec, run);
    } else {
      run.graceTimer = setTimeout(() => this.finalize(rec, run), this.outputGraceMs);
    }
  }

  private finalize(rec: NodeRecord, run: Run): void {
    if (run.finalized || !run.exit) return;
    run.finalized = true;
    if (run.graceTimer) clearTimeout(run.graceTimer);
    // Anything still arriving (from a grandchild holding the pipes) must not leak into the next run.
    run.child?.stdout?.destroy();
    run.child?.stderr?.destroy();
    const exit = run.exit;
    // Each run ends with a line saying how, so the files read as a history of runs.
    const trailer = runTrailer(run.pid, exit, run.stopReason);
    run.stdout.end(trailer);
    run.stderr.end(trailer);
    if (rec.run === run) rec.lastExit = exit;
    const outputs = runOutputs(run);

    if (run.stopReason) {
      this.emit("stopped", {
        ...exit,
        name: rec.spec.name,
        pid: run.pid,
        reason: run.stopReason,
        signalsSent: run.stop?.sent ?? 0,
        killed: run.stop?.killed ?? false,
        outputs,
      });
    } else if (!rec.removed && rec.run === run) {
      this.onCrash(rec, run, exit, outputs);
    }
    run.resolveDone();
  }

  private onCrash(rec: NodeRecord, run: Run, exit: ExitInfo, outputs: NodeOutputs): void {
    const name = rec.spec.name;
    const uptimeMs = (run.exitMono ?? performance.now()) - run.startMono;
    if (uptimeMs > this.resetAfterMs) this.resetRevival(rec);
    const base: Omit<ExitEvent, "willRevive"> = {
      ...exit,
      name,
      pid: run.pid,
      uptimeMs,
      outputs,
      message: describeExit(name, run.pid, exit),
    };
    if (this.maxAttempts !== undefined && rec.revivalAttempts >= this.maxAttempts) {
      rec.state = "failed";
      this.emit("exit", { ...base, willRevive: false });
      this.emit("failed", { name, attempts: rec.revivalAttempts, lastExit: exit, outputs });
      return;
    }
    // Counted from the last spawn, so a run that lived longer than the delay comes back at once.
    const delayMs = Math.max(0, run.startMono + rec.revivalDelayMs - performance.now());
    rec.state = "backoff";
    rec.nextRevivalAt = Date.now() + delayMs;
    rec.revivalTimer = setTimeout(() => {
      this.clearRevival(rec);
      if (rec.removed) return;
      rec.revivalAttempts++;
      if (rec.revivalAttempts % this.doubleEvery === 0) {
        rec.revivalDelayMs = Math.min(rec.revivalDelayMs * 2, this.maxDelayMs);
      }
      this.spawnRun(rec, "revival");
    }, delayMs);
    this.emit("exit", { ...base, willRevive: true, delayMs });
  }

  private stopRun(run: Run, reason: StopReason): Promise<void> {
    run.stopReason ??= reason;
    if (!run.alive || run.stop) return run.done;
    const stop: NonNullable<Run["stop"]> = { sent: 0, killed: false };
    run.stop = stop;
    const send = () => {
      if (!run.alive) return;
      stop.sent++;
      // Upstream's count: SIGTERM up to maxTermAttempts times, SIGKILL from then on.
      const kill = this.sigkill && stop.sent > this.maxTermAttempts;
      if (kill) stop.killed = true;
      signalRun(run, kill ? "SIGKILL" : "SIGTERM");
      stop.timer = setTimeout(send, this.termIntervalMs);
    };
    send();
    return run.done;
  }

  /** Takes a node out of the table at once and stops its process in the background. */
  private drop(rec: NodeRecord, reason: StopReason): void {
    this.nodes.delete(rec.spec.name);
    rec.removed = true;
    if (rec.pendingSpawn) clearImmediate(rec.pendingSpawn);
    rec.pendingSpawn = undefined;
    this.clearRevival(rec);
    if (rec.run && !rec.run.finalized) {
      const stop = this.stopRun(rec.run, reason);
      this.backgroundStops.add(stop);
      void stop.finally(() => this.backgroundStops.delete(stop));
    }
  }

  private clearRevival(rec: NodeRecord): void {
    if (rec.revivalTimer) clearTimeout(rec.revivalTimer);
    rec.revivalTimer = undefined;
    rec.nextRevivalAt = undefined;
  }

  private resetRevival(rec: NodeRecord): void {
    rec.revivalAttempts = 0;
    rec.revivalDelayMs = this.initialDelayMs;
  }

  private maybeResetRevival(rec: NodeRecord): void {
    const run = rec.run;
    if (run?.alive && performance.now() - run.startMono > this.resetAfterMs) this.resetRevival(rec);
  }
}
