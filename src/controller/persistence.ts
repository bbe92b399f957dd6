// The controller's configurations (STAGED, READY, DEPLOYED) in memory, written through to
// the config store. Writes run in the background; close() waits for them.

import { errorMessage } from "../broker/errors.js";
import { CONFIG_STATES, type ConfigState, type ConfigStore } from "./config-store.js";
import type { Logger } from "../management/log.js";
import type { Configuration } from "../management/types.js";

export class StoredConfigs {
  private readonly configs = new Map<ConfigState, Configuration>();
  private readonly writes = new Set<Promise<void>>();

  constructor(
    private readonly store: ConfigStore | undefined,
    private readonly log: Logger,
  ) {
    if (!store) return;
    for (const state of CONFIG_STATES) {
      const config = store.get(state);
      if (config) this.configs.set(state, config);
    }
  }

  get(state: ConfigState): Configuration | undefined {
    return this.configs.get(state);
  }

  set(state: ConfigState, config: Configuration): void {
    this.configs.set(state, config);
  }

  /** Stores the given states; the promise settles (never rejects) once they are on disk. */
  persist(changes: Partial<Record<ConfigState, Configuration>>): Promise<void> {
    if (!this.store) return Promise.resolve();
    const write = this.store
      .setMany(changes)
      .catch((err: unknown) => this.log.error(`could not store configurations: ${errorMessage(err)}`))
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
    return write;
  }

  /** Settles once every write started so far has. */
  async settled(): Promise<void> {
    await Promise.all([...this.writes]);
  }
}
