// The agent's links to Zeek nodes against real listeners: a node's word that it listens
// (the file zeek/zmgmt/node.zeek writes) makes the agent dial at once. The retry schedule
// is set far beyond each test's wait here, so a link that comes up can only have been
// dialled because of that file.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Hub } from "../src/broker/hub.js";
import { HubServer } from "../src/broker/server.js";
import { ZeekNodeLinks } from "../src/agent/zeek-links.js";
import { MANAGEMENT_LISTENING_FILE } from "../src/agent/zeek.js";
import { NodeApi } from "../src/node/api.js";
import { freePort } from "./helpers/cluster.js";

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const NEVER = { initialDelayMs: 600_000, maxDelayMs: 600_000 };

function nodeDir(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "zmgmt-links-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, file: join(dir, MANAGEMENT_LISTENING_FILE) };
}

async function nodeEndpoint(port: number): Promise<HubServer> {
  const server = await HubServer.listen(new Hub({ endpointId: "zeek-node", version: "8.2.2" }), { host: "127.0.0.1", port });
  cleanups.push(() => server.close());
  return server;
}

function links(): ZeekNodeLinks {
  const l = new ZeekNodeLinks(() => undefined, NEVER);
  cleanups.push(() => l.closeAll());
  return l;
}

const probe = NodeApi.node_dispatch_request.make("r1", ["get_id_value", "x"], ["worker-1"]);

describe("ZeekNodeLinks", () => {
  it("dials a node when it writes that it listens, without waiting for a retry", async () => {
    const { file } = nodeDir();
    const port = await freePort();
    const l = links();
    l.open("worker-1", port, file);
    // The first attempt finds nobody listening; the next retry is ten minutes away.
    await new Promise((r) => setTimeout(r, 300));
    expect(l.send("worker-1", probe)).toBe(false);
    await nodeEndpoint(port);
    writeFileSync(file, "4242\n");
    await vi.waitFor(() => expect(l.send("worker-1", probe)).toBe(true), { timeout: 10_000, interval: 20 });
  });

  it("watches again while the link is down, so a replaced node is dialled as soon as it listens", async () => {
    const { file } = nodeDir();
    const port = await freePort();
    const l = links();
    let server = await nodeEndpoint(port);
    writeFileSync(file, "1\n");
    l.open("worker-1", port, file);
    await vi.waitFor(() => expect(l.send("worker-1", probe)).toBe(true), { timeout: 10_000, interval: 20 });
    // The node dies; its replacement starts later and says so by rewriting the file.
    await server.close();
    await vi.waitFor(() => expect(l.send("worker-1", probe)).toBe(false), { timeout: 10_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 300));
    server = await nodeEndpoint(port);
    writeFileSync(file, "2\n");
    await vi.waitFor(() => expect(l.send("worker-1", probe)).toBe(true), { timeout: 10_000, interval: 20 });
  });

  it("ignores other files in the node's directory", async () => {
    const { dir, file } = nodeDir();
    const port = await freePort();
    const l = links();
    l.open("worker-1", port, file);
    await new Promise((r) => setTimeout(r, 300));
    await nodeEndpoint(port);
    writeFileSync(join(dir, "conn.log"), "x\n");
    await new Promise((r) => setTimeout(r, 1000));
    expect(l.send("worker-1", probe)).toBe(false);
  });

  it("without a file to watch, retries on a short schedule and finds the node", async () => {
    const port = await freePort();
    const l = new ZeekNodeLinks(() => undefined, NEVER);
    cleanups.push(() => l.closeAll());
    l.open("worker-1", port);
    await new Promise((r) => setTimeout(r, 300));
    await nodeEndpoint(port);
    await vi.waitFor(() => expect(l.send("worker-1", probe)).toBe(true), { timeout: 10_000, interval: 20 });
  });
});
