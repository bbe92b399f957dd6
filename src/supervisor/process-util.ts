// Operating-system helpers of the process manager: executable lookup, CPU pinning checks
// and the wording of spawn failures and premature exits.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ExitInfo } from "./process-types.js";

/** "" when `cpu` can be pinned to, else why not; `searchPath` is where taskset is looked up. */
export function checkAffinity(name: string, cpu: number, searchPath: string | undefined): string {
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
  if (!findExecutable("taskset", searchPath, process.cwd())) {
    return `${prefix}: taskset (util-linux) was not found in PATH`;
  }
  return "";
}

export function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function describeExit(name: string, pid: number, exit: ExitInfo): string {
  if (exit.error !== undefined) return `Supervised node '${name}' could not be started: ${exit.error}`;
  if (exit.signal) {
    // Not every platform defines every signal Node.js knows by name.
    const num = (os.constants.signals as Partial<Record<NodeJS.Signals, number>>)[exit.signal] ?? exit.signal;
    return `Supervised node '${name}' (PID ${pid}) terminated prematurely by signal ${num}`;
  }
  return `Supervised node '${name}' (PID ${pid}) exited prematurely with status ${exit.code}`;
}

export function describeSpawnError(err: NodeJS.ErrnoException, command: string): string {
  if (err.code === "ENOENT") return `command not found: ${command}`;
  if (err.code === "EACCES") return `permission denied: ${command}`;
  return `failed to start ${command}: ${err.message}`;
}

/** The PATH search execvp() would do; relative names with a slash are taken from `cwd`. */
export function findExecutable(command: string, searchPath: string | undefined, cwd: string): string | undefined {
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
