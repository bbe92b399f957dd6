import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { NodeOutputs } from "../management/types.js";
import { SupervisorEnv } from "./api.js";

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

export interface NodeSpec {
  name: string;
  /** argv; argv[0] is looked up in PATH (the child's PATH) unless it contains a slash. */
  command: string[];
  /** Working directory, created with its parents; "" means the supervisor's own. */
  directory: string;
  /** Added to the supervisor's environment. */
  env?: Record<string, string>;
  cpuAffinity?: number;
  /** Opaque to the manager; handed back in status(). */
  meta?: unknown;
}

export type NodeState = "starting" | "running" | "backoff" | "stopping" | "failed";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
  /** Epoch milliseconds. */
  at: number;
}

export interface NodeStatus {
  name: string;
  spec: NodeSpec;
  meta?: unknown;
  state: NodeState;
  /** Only while the process is alive. */
  pid?: number;
  /** Spawns after the first one since create(): revivals and restarts. */
  restarts: number;
  /** Revival back-off counter; reset by enough uptime or by restart(). */
  revivalAttempts: number;
  revivalDelayMs: number;
  /** Epoch milliseconds of the current run's spawn, while alive. */
  startedAt?: number;
  /** Epoch milliseconds of the next revival, while in backoff. */
  nextRevivalAt?: number;
  lastExit?: ExitInfo;
}

export type SpawnReason = "create" | "restart" | "revival";

export interface SpawnEvent {
  name: string;
  /** 0 when the process could not be started (an "exit" event with `error` follows). */
  pid: number;
  revived: boolean;
  reason: SpawnReason;
  /** Tails of the previous run, present only when that run printed at least one line. */
  previous?: NodeOutputs;
  /** Upstream's log line for a revival. */
  message?: string;
}

/** A run ended without the manager asking it to. */
export interface ExitEvent extends ExitInfo {
  name: string;
  /** 0 when the process could not be started. */
  pid: number;
  uptimeMs: number;
  outputs: NodeOutputs;
  willRevive: boolean;
  /** Wait before the revival, when willRevive. */
  delayMs?: number;
  /** Upstream's log line for a premature exit. */
  message: string;
}

export interface FailedEvent {
  name: string;
  /** Revival attempts made before giving up. */
  attempts: number;
  lastExit: ExitInfo;
  outputs: NodeOutputs;
}

export type StopReason = "destroy" | "restart" | "shutdown";

/** A run the manager stopped is gone. */
export interface StoppedEvent extends ExitInfo {
  name: string;
  pid: number;
  reason: StopReason;
  /** Signals sent, SIGTERM and SIGKILL together. */
  signalsSent: number;
  killed: boolean;
  outputs: NodeOutputs;
}

export interface WarningEvent {
  name: string;
  message: string;
}

export interface ProcessManagerEvents {
  spawn: [SpawnEvent];
  exit: [ExitEvent];
  failed: [FailedEvent];
  stopped: [StoppedEvent];
  warning: [WarningEvent];
}

export interface ProcessManagerOptions {
  /** Pause between signals while stopping a node. */
  termIntervalMs?: number;
  /** SIGTERMs sent before switching to SIGKILL. */
  maxTermAttempts?: number;
  /** false keeps sending SIGTERM forever (upstream's ZEEK_SUPERVISOR_NO_SIGKILL). */
  sigkill?: boolean;
  /** Lines kept per stream and run. */
  outputMaxLines?: number;
  /** Size at which a node's stdout or stderr file is rotated (default 10 MiB). */
  outputMaxBytes?: number;
  /** Rotated generations kept per stream (default 2: `stdout.1`, `stdout.2`). */
  outputKeepFiles?: number;
  /** How long to wait for a dead child's pipes to drain (a grandchild may hold them open). */
  outputGraceMs?: number;
  initialDelayMs?: number;
  /** The revival delay doubles whenever the attempt counter reaches a multiple of this. */
  doubleEvery?: number;
  /** Uptime after which a run resets the revival counters. */
  resetAfterMs?: number;
  maxDelayMs?: number;
  /** Revival attempts before giving up; unlimited when unset, as upstream. */
  maxAttempts?: number;
  /** Base environment of the children; also where the PATH for the pinning helper comes from. */
  env?: NodeJS.ProcessEnv;
}

// A line without a newline still has to be bounded: a child writing megabytes without one
// would otherwise grow the pending buffer without limit.
const MAX_LINE_CHARS = 64 * 1024;

/**
 * A node's stdout or stderr file. Runs append to it, so the output of a run that crashed is
 * still there after its revival; past `maxBytes` the file moves to `<name>.1` (older ones to
 * `.2` … up to `keep`), which bounds the disk a node can fill.
 */
export class OutputFile {
  private size: number;

  private constructor(
    private readonly file: string,
    private fd: number,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    this.size = fs.fstatSync(fd).size;
  }

  static open(file: string, maxBytes: number, keep: number): OutputFile {
    const fd = fs.openSync(file, "a", 0o600);
    // The mode given to open() only applies to new files; an older file keeps its mode otherwise.
    fs.fchmodSync(fd, 0o600);
    return new OutputFile(file, fd, maxBytes, keep);
  }

  /**
   * Writes whole lines, rotating between them, so no file grows past `maxBytes` unless a
   * single line does. Synchronous, so the file is complete and ordered whenever someone reads it.
   */
  write(text: string): void {
    let batch = "";
    let batchBytes = 0;
    for (const line of text.split(/(?<=\n)/)) {
      const bytes = Buffer.byteLength(line);
      if (this.size + batchBytes > 0 && this.size + batchBytes + bytes > this.maxBytes) {
        if (batch) fs.writeSync(this.fd, batch);
        this.size += batchBytes;
        if (this.size > 0) this.rotate();
        batch = "";
        batchBytes = 0;
      }
      batch += line;
      batchBytes += bytes;
    }
    if (batch) fs.writeSync(this.fd, batch);
    this.size += batchBytes;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already unusable; nothing left to flush
    }
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    if (this.keep > 0) {
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      }
      fs.renameSync(this.file, `${this.file}.1`);
    } else {
      fs.truncateSync(this.file);
    }
    this.fd = fs.openSync(this.file, "a", 0o600);
    this.size = 0;
  }
}

/** Last lines of one stream of one run, mirrored line by line into a file. */
class LineCapture {
  private readonly ring: string[] = [];
  private next = 0;
  private pending = "";
  private readonly decoder = new StringDecoder("utf8");
  private lines = 0;

  constructor(
    private readonly max: number,
    private file: OutputFile | undefined,
    private readonly onWriteError: (err: Error) => void,
  ) {}

  get captured(): number {
    return this.lines;
  }

  push(chunk: Buffer | string): void {
    const text = this.pending + (typeof chunk === "string" ? chunk : this.decoder.write(chunk));
    const parts = text.split("\n");
    this.pending = parts.pop() ?? "";
    if (this.pending.length > MAX_LINE_CHARS) {
      parts.push(this.pending);
      this.pending = "";
    }
    this.record(parts);
  }

  /** Flushes a last line without a newline, appends `trailer` to the file only, and closes it. */
  end(trailer?: string): void {
    const rest = this.pending + this.decoder.end();
    this.pending = "";
    if (rest) this.record([rest]);
    if (trailer !== undefined) this.writeFile(trailer + "\n");
    this.file?.close();
    this.file = undefined;
  }

  text(): string {
    if (this.ring.length < this.max) return this.ring.join("\n");
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)].join("\n");
  }

  private record(parts: string[]): void {
    // Upstream drops empty lines before they reach the files and the buffers.
    const lines = parts.filter((l) => l.length > 0);
    if (lines.length === 0) return;
    this.lines += lines.length;
    for (const line of lines) {
      if (this.ring.length < this.max) {
        this.ring.push(line);
      } else if (this.max > 0) {
        this.ring[this.next] = line;
        this.next = (this.next + 1) % this.max;
      }
    }
    this.writeFile(lines.join("\n") + "\n");
  }

  private writeFile(text: string): void {
    if (this.file === undefined) return;
    try {
      this.file.write(text);
    } catch (err) {
      this.file.close();
      this.file = undefined;
      this.onWriteError(err as Error);
    }
  }
}

interface Run {
  child?: ChildProcess;
  pid: number;
  alive: boolean;
  startMono: number;
  startedAt: number;
  stdout: LineCapture;
  stderr: LineCapture;
  exit?: ExitInfo;
  exitMono?: number;
  pipesClosed: boolean;
  graceTimer?: NodeJS.Timeout;
  finalized: boolean;
  done: Promise<void>;
  resolveDone: () => void;
  stopReason?: StopReason;
  stop?: { timer?: NodeJS.Timeout; sent: number; killed: boolean };
}

interface NodeRecord {
  spec: NodeSpec;
  directory: string;
  state: NodeState;
  removed: boolean;
  run?: Run;
  pendingSpawn?: NodeJS.Immediate;
  revivalTimer?: NodeJS.Timeout;
  nextRevivalAt?: number;
  restarts: number;
  revivalAttempts: number;
  revivalDelayMs: number;
  lastExit?: ExitInfo;
}

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
      const err = this.checkAffinity(name, spec.cpuAffinity);
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
    // An operator's restart is a fresh start, also for a node that was given up on.
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

  private checkAffinity(name: string, cpu: number): string {
    if (!Number.isInteger(cpu) || cpu < 0) {
      return `invalid cpu_affinity for node '${name}': ${cpu} (must be a CPU index >= 0)`;
    }
    const prefix = `cannot pin node '${name}' to CPU ${cpu}`;
    const count = os.cpus().length;
    if (cpu >= count) return `${prefix}: this machine has ${count} CPU${count === 1 ? "" : "s"} (0-${count - 1})`;
    if (process.platform !== "linux") return `${prefix}: CPU pinning is only supported on Linux`;
    const allowed = ownAllowedCpus();
    if (allowed && !cpuListIncludes(allowed, cpu)) {
      return `${prefix}: the supervisor itself may only use CPUs ${allowed}`;
    }
    if (!findExecutable("taskset", this.baseEnv.PATH, process.cwd())) {
      return `${prefix}: taskset (util-linux) was not found in PATH`;
    }
    return "";
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
    const previous =
      previousRun && previousRun.stdout.captured + previousRun.stderr.captured > 0
        ? runOutputs(previousRun)
        : undefined;
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
        child.stdout?.on("data", (chunk: Buffer) => run.stdout.push(chunk));
        child.stderr?.on("data", (chunk: Buffer) => run.stderr.push(chunk));
        // A read error on a pipe only ends the capture; unhandled it would take the supervisor down.
        child.stdout?.on("error", () => {});
        child.stderr?.on("error", () => {});
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

function runTrailer(pid: number, exit: ExitInfo, stopReason: StopReason | undefined): string {
  const how =
    exit.error !== undefined
      ? `could not be started: ${exit.error}`
      : `pid ${pid} ${exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? "?"}`}${stopReason ? ` (${stopReason})` : ""}`;
  return `--- ${new Date(exit.at).toISOString()} ${how} ---`;
}

function signalRun(run: Run, signal: NodeJS.Signals): void {
  if (run.pid === 0) return;
  try {
    process.kill(-run.pid, signal);
  } catch {
    try {
      process.kill(run.pid, signal);
    } catch {
      // already gone; the exit event will follow
    }
  }
}

function runOutputs(run: Run): NodeOutputs {
  return { stdout: run.stdout.text(), stderr: run.stderr.text() };
}

function copySpec(spec: NodeSpec): NodeSpec {
  const copy: NodeSpec = { ...spec, command: [...spec.command] };
  if (spec.env) copy.env = { ...spec.env };
  return copy;
}

function isDefined<T>(v: T | undefined): v is T {
  return v !== undefined;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function describeExit(name: string, pid: number, exit: ExitInfo): string {
  if (exit.error !== undefined) return `Supervised node '${name}' could not be started: ${exit.error}`;
  if (exit.signal) {
    const num = os.constants.signals[exit.signal] ?? exit.signal;
    return `Supervised node '${name}' (PID ${pid}) terminated prematurely by signal ${num}`;
  }
  return `Supervised node '${name}' (PID ${pid}) exited prematurely with status ${exit.code}`;
}

function describeSpawnError(err: NodeJS.ErrnoException, command: string): string {
  if (err.code === "ENOENT") return `command not found: ${command}`;
  if (err.code === "EACCES") return `permission denied: ${command}`;
  return `failed to start ${command}: ${err.message}`;
}

/** The PATH search execvp() would do; relative names with a slash are taken from `cwd`. */
function findExecutable(command: string, searchPath: string | undefined, cwd: string): string | undefined {
  const candidates = command.includes("/")
    ? [path.resolve(cwd, command)]
    : (searchPath ?? "").split(path.delimiter).map((dir) => path.resolve(cwd, dir || ".", command));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

function ownAllowedCpus(): string | undefined {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m?.[1];
  } catch {
    return undefined;
  }
}

function cpuListIncludes(list: string, cpu: number): boolean {
  return list.split(",").some((part) => {
    const [lo, hi] = part.split("-").map(Number);
    return lo !== undefined && cpu >= lo && cpu <= (hi ?? lo);
  });
}
