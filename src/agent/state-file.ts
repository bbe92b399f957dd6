// The configuration an agent adopted, kept across agent restarts (atomic write-rename) so a
// restarted agent knows which deployment its surviving nodes belong to.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../broker/errors.js";
import { PRIVATE_FILE_MODE, ensurePrivateDir, quarantineFile, removeStaleTemps, tightenFile } from "../management/private-files.js";
import type { Configuration } from "../management/types.js";

export const AGENT_STATE_FILE = "agent-state.json";
const TEMP_MARKER = ".tmp-";

export type LoadedAgentState =
  | { kind: "none" }
  | { kind: "ok"; config: Configuration }
  /** The file could not be used; `aside` is where it went (absent if moving it failed). */
  | { kind: "corrupt"; reason: string; aside?: string; asideError?: string };

function configProblem(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "top level is not an object";
  const { version, config } = v as { version?: unknown; config?: unknown };
  if (version !== 1) return `unsupported version ${JSON.stringify(version)}`;
  if (typeof config !== "object" || config === null) return "config is missing";
  const c = config as Partial<Configuration>;
  if (typeof c.id !== "string" || !Array.isArray(c.instances) || !Array.isArray(c.nodes)) return "config lacks an id, instances or nodes";
  const nodes = c.nodes as unknown[];
  const named = (n: unknown): boolean =>
    typeof n === "object" &&
    n !== null &&
    typeof (n as { name?: unknown }).name === "string" &&
    typeof (n as { instance?: unknown }).instance === "string";
  if (!nodes.every(named)) {
    return "a node lacks a name or instance";
  }
  return undefined;
}

/**
 * Reads the adopted configuration. A file that cannot be used is moved aside as
 * `agent-state.json.corrupt-<timestamp>` (for inspection, and so the next start does not
 * trip over it again); stale temporary files of interrupted writes are removed.
 */
export function loadAgentState(directory: string): LoadedAgentState {
  removeStaleTemps(directory, AGENT_STATE_FILE, TEMP_MARKER);
  const file = join(directory, AGENT_STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "none" };
    return corrupt(file, `unreadable: ${errorMessage(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return corrupt(file, `not valid JSON: ${errorMessage(err)}`);
  }
  const problem = configProblem(parsed);
  if (problem) return corrupt(file, problem);
  tightenFile(file);
  return { kind: "ok", config: (parsed as { config: Configuration }).config };
}

function corrupt(file: string, reason: string): LoadedAgentState {
  try {
    return { kind: "corrupt", reason, aside: quarantineFile(file) };
  } catch (err) {
    return { kind: "corrupt", reason, asideError: errorMessage(err) };
  }
}

/** Throws when the state cannot be written (the temporary file is removed); the caller decides how loud that is. */
export function saveAgentState(directory: string, config: Configuration): void {
  ensurePrivateDir(directory);
  const file = join(directory, AGENT_STATE_FILE);
  const tmp = `${file}${TEMP_MARKER}${process.pid}`;
  try {
    const fd = openSync(tmp, "w", PRIVATE_FILE_MODE);
    try {
      // writeFileSync on a descriptor loops over short writes.
      writeFileSync(fd, JSON.stringify({ version: 1, config }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
}
