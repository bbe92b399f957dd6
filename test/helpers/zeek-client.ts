// Runs the stock zeek-client (../shared/zeek-client, relative to the repository root) as a
// real process. Where it or python3 is missing, suites skip with the reason printed; with
// CI=true a missing client is a failure instead, so CI cannot go green without it.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { killGroup } from "./cluster.js";

export const ZEEK_CLIENT = resolve(import.meta.dirname, "../../../shared/zeek-client/zeek-client");

export type ZeekClientLocation = { found: true; path: string } | { found: false; reason: string };

export function locateZeekClient(): ZeekClientLocation {
  const path = process.env.ZMGMT_ZEEK_CLIENT ?? ZEEK_CLIENT;
  if (!existsSync(path)) return { found: false, reason: `stock zeek-client not found at ${path}` };
  const python = spawnSync("python3", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (python.error || python.status !== 0) {
    return {
      found: false,
      reason: `python3 is not runnable (${python.error?.message ?? `exit ${python.status}`}), and zeek-client needs it`,
    };
  }
  return { found: true, path };
}

/** True where a missing zeek-client must fail the run rather than skip it. */
export function zeekClientRequired(): boolean {
  return process.env.CI === "true";
}

export interface ZeekClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock duration of the run. */
  ms: number;
}

export interface ZeekClientOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /** The run is killed after this long; a killed run has a null code. */
  timeoutMs?: number;
}

/** A zeek-client process still running (monitor), with its output so far. */
export interface ZeekClientProcess {
  pid: number;
  stdout(): string;
  stderr(): string;
  done: Promise<ZeekClientRun>;
  signal(sig: NodeJS.Signals): void;
}

export function startZeekClient(path: string, args: string[], opts: ZeekClientOptions = {}): ZeekClientProcess {
  const started = Date.now();
  const child = spawn(path, args, {
    // No inherited client settings: every setting a test relies on is given explicitly.
    env: { ...withoutClientSettings(process.env), PYTHONUNBUFFERED: "1", ...opts.env },
    cwd: opts.cwd ?? process.cwd(),
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.on("error", () => undefined);
  child.stdin.end(opts.input ?? "");
  const timer = setTimeout(() => killGroup(child.pid!, "SIGKILL"), opts.timeoutMs ?? 60_000);
  const done = new Promise<ZeekClientRun>((res) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return {
    pid: child.pid!,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    signal: (sig) => killGroup(child.pid!, sig),
  };
}

export function runZeekClient(path: string, args: string[], opts: ZeekClientOptions = {}): Promise<ZeekClientRun> {
  return startZeekClient(path, args, opts).done;
}

function withoutClientSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !k.startsWith("ZEEK_CLIENT_CONFIG_")) out[k] = v;
  }
  return out;
}
