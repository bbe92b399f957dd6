// The configuration an agent adopted, kept across agent restarts (atomic write-rename) so a
// restarted agent knows which deployment its surviving nodes belong to.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Configuration } from "../management/types.js";

const STATE_FILE = "agent-state.json";

export function loadAgentState(directory: string): Configuration | undefined {
  try {
    const text = readFileSync(join(directory, STATE_FILE), "utf8");
    const parsed = JSON.parse(text) as { config?: Configuration };
    return parsed.config;
  } catch {
    return undefined;
  }
}

/** Throws when the state cannot be written; the caller decides how loud that is. */
export function saveAgentState(directory: string, config: Configuration): void {
  mkdirSync(directory, { recursive: true });
  const file = join(directory, STATE_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ version: 1, config }), { mode: 0o600 });
  renameSync(tmp, file);
}
