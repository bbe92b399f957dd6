// How the agent launches Zeek nodes, without running Zeek: the generated cluster layout, argv
// and environment, the version check, node metadata and the archive naming of rotated logs.

import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ZEEK_NODE_SCRIPT, clusterLayoutScript, findZeekOnPath, probeZeek, zeekLaunch } from "../src/agent/zeek.js";
import { decodeNodeMeta, encodeNodeMeta } from "../src/agent/node-meta.js";
import { archivePlacement } from "../src/agent/log-archiver.js";
import { sameDeployment } from "../src/agent/config-equality.js";
import type { Configuration, Node } from "../src/management/types.js";

function node(name: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance: "a", role, state: "RUNNING", env: {}, ...extra };
}

const CONFIG: Configuration = {
  id: "cfg-1",
  instances: [
    { name: "a", host: "127.0.0.1" },
    { name: "b", host: "10.0.0.2", listenPort: 2151 },
  ],
  nodes: [
    node("manager", "MANAGER", { port: 2200, metricsPort: 9000 }),
    node("logger-1", "LOGGER", { port: 2201, metricsPort: 9001 }),
    node("worker-1", "WORKER", { instance: "b", interface: "eth0", metricsPort: 9002, scripts: ["site/x.zeek"], cpuAffinity: 3 }),
  ],
};

const ZEEK = { path: "/opt/zeek/bin/zeek", version: "8.2.2" };

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "zmgmt-zeek-unit-"));
  dirs.push(d);
  return d;
}

describe("cluster layout", () => {
  it("declares every node with role, address, ports and manager, and no logger duty for a manager when loggers exist", () => {
    const text = clusterLayoutScript(CONFIG);
    expect(text).toContain("redef Cluster::manager_is_logger = F;");
    expect(text).toContain('\t["manager"] = [$node_type=Cluster::MANAGER, $ip=127.0.0.1, $p=2200/tcp, $metrics_port=9000/tcp],');
    expect(text).toContain(
      '\t["logger-1"] = [$node_type=Cluster::LOGGER, $ip=127.0.0.1, $p=2201/tcp, $metrics_port=9001/tcp, $manager="manager"],',
    );
    // Workers have no cluster port (Zeek's default 0/unknown: they do not listen).
    expect(text).toContain('\t["worker-1"] = [$node_type=Cluster::WORKER, $ip=10.0.0.2, $metrics_port=9002/tcp, $manager="manager"],');
  });

  it("leaves the manager as logger without loggers, brackets IPv6 and maps unknown hosts to this host", () => {
    const text = clusterLayoutScript({
      id: "x",
      instances: [
        { name: "a", host: "::1" },
        { name: "b", host: "0.0.0.0" },
      ],
      nodes: [node("manager", "MANAGER", { port: 1 }), node('w"1', "WORKER", { instance: "b" })],
    });
    expect(text).not.toContain("manager_is_logger");
    expect(text).toContain("$ip=[::1]");
    expect(text).toContain('["w\\"1"] = [$node_type=Cluster::WORKER, $ip=127.0.0.1,');
  });
});

describe("zeek launch", () => {
  it("runs zeek with -i, the Broker backend, the node's scripts and the node script, on the agent's management port", () => {
    const worker = CONFIG.nodes[2]!;
    const launch = zeekLaunch(ZEEK, worker, CONFIG, "/state/nodes/worker-1", 40000, {});
    expect(launch.command).toEqual([ZEEK.path, "-i", "eth0", "frameworks/cluster/backend/broker", "site/x.zeek", ZEEK_NODE_SCRIPT]);
    expect(launch.env).toEqual({ CLUSTER_NODE: "worker-1", ZMGMT_NODE_MANAGEMENT_PORT: "40000" });
  });

  it("loads `local` when a node names no scripts, keeps loopback instances off the network, and puts the node directory first on an explicit ZEEKPATH", () => {
    const manager = CONFIG.nodes[0]!;
    const launch = zeekLaunch(ZEEK, manager, CONFIG, "/state/nodes/manager", 40001, { ZEEKPATH: "/z/share:/z/policy" });
    expect(launch.command).toEqual([ZEEK.path, "frameworks/cluster/backend/broker", "local", ZEEK_NODE_SCRIPT]);
    expect(launch.env["ZEEKPATH"]).toBe("/state/nodes/manager:/z/share:/z/policy");
    expect(launch.env["ZEEK_DEFAULT_LISTEN_ADDRESS"]).toBe("127.0.0.1");
    // An operator's own choice wins.
    const own = zeekLaunch(ZEEK, manager, CONFIG, "/d", 1, { ZEEK_DEFAULT_LISTEN_ADDRESS: "0.0.0.0" });
    expect(own.env["ZEEK_DEFAULT_LISTEN_ADDRESS"]).toBeUndefined();
  });
});

describe("finding and checking Zeek", () => {
  function fakeZeek(dir: string, versionLine: string): string {
    const file = join(dir, "zeek");
    writeFileSync(file, `#!/bin/sh\necho "${versionLine}"\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it("finds zeek on PATH and accepts 8.x", () => {
    const dir = tempDir();
    const file = fakeZeek(dir, "zeek version 8.1.0-dev.42");
    expect(findZeekOnPath(`/nonexistent:${dir}`)).toBe(file);
    expect(probeZeek(file)).toEqual({ path: file, version: "8.1.0-dev.42" });
  });

  it("refuses what is not Zeek, is too old or is not executable, saying why", () => {
    const dir = tempDir();
    expect(() => probeZeek(fakeZeek(dir, "zeek version 7.2.1"))).toThrow(/Zeek 7\.2\.1; zmgmt needs Zeek 8\.0 or newer/);
    const other = tempDir();
    expect(() => probeZeek(fakeZeek(other, "something else"))).toThrow(/does not look like Zeek/);
    expect(() => probeZeek(join(other, "missing"))).toThrow(/not an executable file/);
  });
});

describe("node metadata", () => {
  it("round-trips a node and its management port", () => {
    const meta = { node: CONFIG.nodes[2]!, managementPort: 40000 };
    expect(decodeNodeMeta(encodeNodeMeta(meta))).toEqual(meta);
    expect(decodeNodeMeta(encodeNodeMeta({ node: CONFIG.nodes[0]! }))).toEqual({ node: CONFIG.nodes[0] });
  });

  it("rejects anything else without throwing", () => {
    expect(decodeNodeMeta(JSON.stringify(CONFIG.nodes[0]))).toBeUndefined();
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        expect(decodeNodeMeta(text)).toBeUndefined();
      }),
    );
  });
});

describe("archive placement of rotated logs", () => {
  it("maps archiver-style names to a day folder and zeek-archiver's file names", () => {
    expect(archivePlacement("conn__2026-11-29-10-00-00__2026-11-29-11-00-00__.log")).toEqual({
      path: "conn",
      day: "2026-11-29",
      archiveName: "conn.10:00:00-11:00:00.log.gz",
    });
    expect(archivePlacement("known_hosts__2026-11-29-23-00-00__2026-11-30-00-00-00__log_suffix=logger-2__.log")).toEqual({
      path: "known_hosts",
      day: "2026-11-29",
      archiveName: "known_hosts.23:00:00-00:00:00-logger-2.log.gz",
    });
  });

  it("ignores files that are not rotated logs", () => {
    for (const name of ["conn.log", "conn__2026-11-29__.log", ".conn__2026-11-29-10-00-00__2026-11-29-11-00-00__.log", "x.gz"]) {
      expect(archivePlacement(name)).toBeUndefined();
    }
  });
});

describe("identical deployments", () => {
  it("ignore ids, node states and ordering, but not anything a node is launched with", () => {
    const reordered: Configuration = {
      ...CONFIG,
      id: "cfg-2",
      instances: [...CONFIG.instances].reverse(),
      nodes: [...CONFIG.nodes].reverse().map((n) => ({ ...n, state: "PENDING" as const, env: { ...n.env } })),
    };
    expect(sameDeployment(CONFIG, reordered)).toBe(true);
    const changes: Array<(c: Configuration) => void> = [
      (c) => (c.nodes[0]!.port = 2299),
      (c) => (c.nodes[2]!.env = { A: "1" }),
      (c) => (c.nodes[2]!.scripts = ["other.zeek"]),
      (c) => (c.nodes[2]!.cpuAffinity = 1),
      (c) => (c.instances[1]!.host = "10.0.0.3"),
      (c) => c.nodes.push(node("proxy-1", "PROXY")),
    ];
    for (const change of changes) {
      const next = structuredClone(CONFIG);
      change(next);
      expect(sameDeployment(CONFIG, next)).toBe(false);
    }
  });
});
