// The controller's configurations (STAGED, READY, DEPLOYED) in memory, written through to
// the config store. Writes run in the background; close() waits for them.

import { errorMessage } from "../broker/errors.js";
import { CONFIG_STATES, type ConfigState, type ConfigStore } from "./config-store.js";
import type { Logger } from "../management/log.js";
import type { Configuration } from "../management/types.js";

export class StoredConfigs {
  private readonly configs = new Map<ConfigState, Configuration>();
  private readonly writes = new Set<Promise<string | undefined>>();

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

  /** Puts back what `state` held before a change that could not be stored (undefined: nothing). */
  restore(state: ConfigState, config: Configuration | undefined): void {
    if (config === undefined) this.configs.delete(state);
    else this.configs.set(state, config);
  }

  /**
   * Stores the given states. The promise never rejects: it resolves once they are on disk,
   * to undefined, or to why they are not (a full or read-only disk), for the request that
   * asked for the change to fail with.
   */
  persist(changes: Partial<Record<ConfigState, Configuration>>): Promise<string | undefined> {
    if (!this.store) return Promise.resolve(undefined);
    const write: Promise<string | undefined> = this.store
      .setMany(changes)
      .then(
        () => undefined,
        (err: unknown) => {
          const reason = `could not store the configuration: ${errorMessage(err)}`;
          this.log.error(reason);
          return reason;
        },
      )
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
    return write;
  }

  /** Settles once every write started so far has. */
  async settled(): Promise<void> {
    await Promise.all([...this.writes]);
  }
}
