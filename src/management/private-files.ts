// State the daemons keep on disk (stored configurations with their env values, agent state,
// management logs) is readable by its owner only: directories 0700, files 0600.

import { chmodSync, mkdirSync, readdirSync, renameSync, existsSync, unlinkSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) as 0700 and tightens `dir` itself if it already
 * existed with a looser mode, as directories of earlier versions did. A directory we do
 * not own keeps its mode: we can still use it, and refusing would strand the daemon.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  try {
    chmodSync(dir, PRIVATE_DIR_MODE);
  } catch {
    // not ours to change
  }
}

export async function ensurePrivateDirAsync(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE).catch(() => undefined);
}

/** Tightens an existing file written by an earlier version with a looser mode. */
export function tightenFile(path: string): void {
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
  } catch {
    // absent, or not ours to change
  }
}

/**
 * Removes `<base><marker>…` files in `dir`: temporary files of atomic writes that died
 * before their rename, whose contents were never committed.
 */
export function removeStaleTemps(dir: string, base: string, marker: string): string[] {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const entry of entries) {
    if (!entry.startsWith(base + marker)) continue;
    try {
      unlinkSync(join(dir, entry));
      removed.push(entry);
    } catch {
      // harmless: the next write uses a fresh name
    }
  }
  return removed;
}

/**
 * Moves an unusable file aside as `<path>.corrupt-<timestamp>` so it can be inspected,
 * and returns the new name. Throws if the rename fails.
 */
export function quarantineFile(path: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  let aside = `${path}.corrupt-${stamp}`;
  for (let i = 1; existsSync(aside); i++) aside = `${path}.corrupt-${stamp}-${i}`;
  renameSync(path, aside);
  return aside;
}
