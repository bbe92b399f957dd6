// What one end-to-end test holds: its TestEnv and whatever else it opened (clients, raw
// sockets), all closed after the test, in reverse order, before the processes go.

import { afterEach } from "vitest";
import { ControllerClient, type ControllerClientOptions } from "../../src/client/controller-client.js";
import { RawClient } from "./ws.js";
import { TestEnv } from "./cluster.js";

/** Short timeouts and restart delays for agents whose tests wait on them. */
export const QUICK_AGENT_ARGS = ["--request-timeout", "4", "--restart-delay", "0.2", "--stop-timeout", "3"];

export class TestScope {
  private current: TestEnv | undefined;
  private readonly closers: Array<() => Promise<void> | void> = [];

  /** A fresh environment for this test (one per test). */
  newEnv(prefix: string): TestEnv {
    this.current = new TestEnv(prefix);
    return this.current;
  }

  /** The environment this test made with newEnv(). */
  get env(): TestEnv {
    if (!this.current) throw new Error("no TestEnv in this test yet: call newEnv() first");
    return this.current;
  }

  onCleanup(close: () => Promise<void> | void): void {
    this.closers.push(close);
  }

  /** A client of the controller on 127.0.0.1:`port`, closed after the test. */
  async connect(port: number, options: Omit<ControllerClientOptions, "url"> = {}): Promise<ControllerClient> {
    const c = await ControllerClient.connect({ url: `127.0.0.1:${port}`, ...options });
    this.onCleanup(() => c.close());
    return c;
  }

  /** A raw WebSocket client on 127.0.0.1:`port`, closed after the test. */
  async raw(port: number, headers?: Record<string, string>): Promise<RawClient> {
    const r = await RawClient.open(`ws://127.0.0.1:${port}/v1/messages/json`, headers);
    this.onCleanup(() => r.close());
    return r;
  }

  async cleanup(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) await close();
    await this.current?.cleanup();
    this.current = undefined;
  }
}

/** A TestScope cleaned up after each test of the calling file. */
export function useTestScope(): TestScope {
  const scope = new TestScope();
  afterEach(() => scope.cleanup());
  return scope;
}
