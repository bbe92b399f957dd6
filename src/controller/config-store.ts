import { open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

import { PRIVATE_FILE_MODE, ensurePrivateDirAsync, tightenFile } from "../management/private-files.js";

import type { Configuration } from "../management/types.js";

/**
 * The controller keeps at most one configuration per state. DEPLOYING is the configuration
 * last sent to the agents; while it differs from DEPLOYED, a deployment is under way, which
 * a restarted controller finishes instead of starting over.
 */
export const CONFIG_STATES = ["STAGED", "READY", "DEPLOYED", "DEPLOYING"] as const;
export type ConfigState = (typeof CONFIG_STATES)[number];

/** Bumped whenever the file layout changes incompatibly. */
export const CONFIG_STORE_VERSION = 1;
export const DEFAULT_CONFIG_STORE_FILE = "configs.json";

export interface ConfigStoreOptions {
  /** File name inside the directory. Default `configs.json`. */
  fileName?: string;
}

export interface ConfigStoreOpenResult {
  store: ConfigStore;
  /**
   * Set when an existing file could not be used. The store then starts empty, and the
   * message says where the old file went, for the caller to log.
   */
  error?: string;
}

interface StoreFile {
  version: number;
  configs: Partial<Record<ConfigState, Configuration>>;
}

const TEMP_MARKER = ".tmp-";
const CORRUPT_MARKER = ".corrupt-";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalNumber(v: unknown): boolean {
  return v === undefined || v === null || typeof v === "number";
}

function optionalString(v: unknown): boolean {
  return v === undefined || v === null || typeof v === "string";
}

/** Why a stored value is not a usable Configuration, or undefined if it is. */
function configProblem(v: unknown): string | undefined {
  if (!isObject(v)) return "not an object";
  if (typeof v.id !== "string") return "id is not a string";
  if (!Array.isArray(v.instances)) return "instances is not a list";
  if (!Array.isArray(v.nodes)) return "nodes is not a list";
  for (const inst of v.instances) {
    if (!isObject(inst) || typeof inst.name !== "string" || typeof inst.host !== "string") {
      return "an instance lacks a name or host";
    }
    if (!optionalNumber(inst.listenPort)) return `instance '${inst.name}' has a bad listen port`;
  }
  for (const node of v.nodes) {
    if (!isObject(node) || typeof node.name !== "string") return "a node lacks a name";
    const bad =
      typeof node.instance !== "string" ||
      typeof node.role !== "string" ||
      typeof node.state !== "string" ||
      !isObject(node.env) ||
      !Object.values(node.env).every((x) => typeof x === "string") ||
      !optionalNumber(node.port) ||
      !optionalNumber(node.metricsPort) ||
      !optionalNumber(node.cpuAffinity) ||
      !optionalString(node.interface) ||
      !(node.scripts === undefined || node.scripts === null || Array.isArray(node.scripts)) ||
      !(node.options === undefined || node.options === null || Array.isArray(node.options));
    if (bad) return `node '${node.name}' is malformed`;
  }
  return undefined;
}

function parseStoreFile(text: string): Partial<Record<ConfigState, Configuration>> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(data)) throw new Error("top level is not an object");
  if (data.version !== CONFIG_STORE_VERSION) {
    throw new Error(`unsupported version ${JSON.stringify(data.version)}`);
  }
  if (!isObject(data.configs)) throw new Error("configs is not an object");
  const out: Partial<Record<ConfigState, Configuration>> = {};
  for (const [key, value] of Object.entries(data.configs)) {
    if (!(CONFIG_STATES as readonly string[]).includes(key)) {
      throw new Error(`unknown config state '${key}'`);
    }
    const problem = configProblem(value);
    if (problem) throw new Error(`${key} config: ${problem}`);
    out[key as ConfigState] = value as Configuration;
  }
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Persists the controller's STAGED, READY and DEPLOYED configurations in one JSON file,
 * so a restarted controller can bring back the cluster it was running.
 *
 * Every change rewrites the whole file through a temporary file that is synced and then
 * renamed over the old one, followed by a sync of the directory: after a crash or power
 * loss the file holds either the old or the new contents, never a mix. Changes are applied
 * one at a time in call order; the in-memory view only changes once the new file is on
 * disk, so `get` never reports something a restart would lose.
 */
export class ConfigStore {
  readonly dir: string;
  readonly path: string;
  private configs: Map<ConfigState, Configuration>;
  private queue: Promise<void> = Promise.resolve();
  private tempCounter = 0;

  private constructor(dir: string, path: string, configs: Map<ConfigState, Configuration>) {
    this.dir = dir;
    this.path = path;
    this.configs = configs;
  }

  /**
   * Opens (creating if needed) the store in `dir` and loads what it holds. A file that
   * cannot be read or parsed never stops the controller: it is renamed to
   * `<file>.corrupt-<timestamp>` for later inspection, the store starts empty, and the
   * reason comes back in `error`. Only an unusable directory throws.
   */
  static async open(dir: string, options: ConfigStoreOptions = {}): Promise<ConfigStoreOpenResult> {
    const fileName = options.fileName ?? DEFAULT_CONFIG_STORE_FILE;
    const path = join(dir, fileName);
    // The file holds node env values (passwords, keys): owner only.
    await ensurePrivateDirAsync(dir);
    tightenFile(path);

    // A temp file can only be left behind by a write that died before its rename, so its
    // contents were never committed.
    try {
      for (const entry of await readdir(dir)) {
        if (entry.startsWith(fileName + TEMP_MARKER)) {
          await unlink(join(dir, entry)).catch(() => undefined);
        }
      }
    } catch {
      // Leftovers are harmless; the next write will still succeed.
    }

    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        return { store: new ConfigStore(dir, path, new Map()) };
      }
      return ConfigStore.startOver(dir, path, `unreadable: ${errorText(err)}`);
    }

    try {
      const loaded = parseStoreFile(text);
      return { store: new ConfigStore(dir, path, new Map(Object.entries(loaded) as [ConfigState, Configuration][])) };
    } catch (err) {
      return ConfigStore.startOver(dir, path, errorText(err));
    }
  }

  private static async startOver(dir: string, path: string, reason: string): Promise<ConfigStoreOpenResult> {
    const store = new ConfigStore(dir, path, new Map());
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    let aside = `${path}${CORRUPT_MARKER}${stamp}`;
    for (let i = 1; await exists(aside); i++) aside = `${path}${CORRUPT_MARKER}${stamp}-${i}`;
    try {
      await rename(path, aside);
    } catch (err) {
      return {
        store,
        error:
          `stored configurations in ${path} could not be loaded (${reason}) and moving the ` +
          `file aside failed (${errorText(err)}); starting without stored configurations, ` +
          `the file will be replaced on the next change`,
      };
    }
    return {
      store,
      error:
        `stored configurations in ${path} could not be loaded (${reason}); moved the file ` +
        `to ${aside} and starting without stored configurations`,
    };
  }

  /** A copy of the config stored for `state`, so callers cannot alter the store by accident. */
  get(state: ConfigState): Configuration | undefined {
    const config = this.configs.get(state);
    return config === undefined ? undefined : structuredClone(config);
  }

  has(state: ConfigState): boolean {
    return this.configs.has(state);
  }

  set(state: ConfigState, config: Configuration): Promise<void> {
    return this.setMany({ [state]: config });
  }

  delete(state: ConfigState): Promise<void> {
    return this.setMany({ [state]: null });
  }

  /**
   * Changes several states in one atomic write, e.g. STAGED and READY together when a
   * config is staged. `null` removes a state; states not mentioned are kept. Rejects if
   * the file could not be written, in which case nothing changed.
   */
  setMany(changes: Partial<Record<ConfigState, Configuration | null>>): Promise<void> {
    // Snapshot now, so later mutation of the caller's objects cannot leak into the write.
    let snapshot: Partial<Record<ConfigState, Configuration | null>>;
    try {
      snapshot = structuredClone(changes);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.queue.then(async () => {
      const next = new Map(this.configs);
      for (const state of CONFIG_STATES) {
        if (!(state in snapshot)) continue;
        const value = snapshot[state];
        if (value === null || value === undefined) next.delete(state);
        else next.set(state, value);
      }
      await this.write(next);
      // The rename is what makes the change visible to a restart, so memory follows it
      // even if syncing the directory afterwards fails.
      this.configs = next;
      await this.syncDir();
    });
    // A failed write must not wedge every later one.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(configs: Map<ConfigState, Configuration>): Promise<void> {
    const body: StoreFile = { version: CONFIG_STORE_VERSION, configs: {} };
    for (const state of CONFIG_STATES) {
      const config = configs.get(state);
      if (config !== undefined) body.configs[state] = config;
    }
    const text = JSON.stringify(body, null, 2) + "\n";

    const temp = `${this.path}${TEMP_MARKER}${process.pid}-${++this.tempCounter}`;
    try {
      const fh = await open(temp, "wx", PRIVATE_FILE_MODE);
      try {
        await fh.writeFile(text, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, this.path);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /** Makes the rename itself durable. */
  private async syncDir(): Promise<void> {
    let dh;
    try {
      dh = await open(this.dir, "r");
      await dh.sync();
    } catch (err) {
      // Some platforms and file systems cannot sync a directory; the rename still happened.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw err;
    } finally {
      await dh?.close();
    }
  }
}
