// How `zmgmt status`, `top`, `stop` and `start` read: the table a person sees, the exit codes
// scripts rely on, and the errors for names nobody runs.

import { describe, expect, it } from "vitest";
import { B } from "../src/broker/data.js";
import { makeResult } from "../src/management/records.js";
import { NodeProcessStatusVecCodec, UNKNOWN_NODE, type NodeProcessStatus } from "../src/management/zmgmt-records.js";
import {
  formatBytes,
  formatDuration,
  outcomeTable,
  outcomeView,
  statusExitCode,
  statusTable,
  statusView,
} from "../src/client/zmgmt-render.js";

const NOW = Date.parse("2026-11-30T10:00:00Z");

const running: NodeProcessStatus = {
  node: "worker-01",
  instance: "agent-a",
  state: "RUNNING",
  role: "WORKER",
  pid: 4242,
  startedAt: NOW - 3_723_000,
  uptimeMs: 3_723_000,
  restarts: 2,
  lastExitSignal: "SIGKILL",
  lastExitAt: NOW - 3_725_000,
  cpuPercent: 12.345,
  rssBytes: 52_428_800,
};
const stopped: NodeProcessStatus = { node: "manager", instance: "agent-a", state: "STOPPED", role: "MANAGER", restarts: 0 };

const statusResult = (nodes: NodeProcessStatus[]) =>
  makeResult("r", { instance: "agent-a", data: NodeProcessStatusVecCodec.encode(nodes) });

describe("zmgmt status rendering", () => {
  it("shows one row per node, sorted, with human units", () => {
    const view = statusView([statusResult([running, stopped])]);
    expect(view.nodes.map((n) => n.node)).toEqual(["manager", "worker-01"]);
    const lines = statusTable(view, {}, NOW).split("\n");
    expect(lines[1]).toMatch(/node\s+│ instance\s+│ role\s+│ state\s+│ pid\s+│ uptime\s+│ restarts │ last exit\s+│ cpu\s+│ rss/);
    const worker = lines.find((l) => l.includes("worker-01"))!;
    for (const cell of ["agent-a", "worker", "RUNNING", "4242", "1h02m", "2", "SIGKILL, 1h02m ago", "12.3%", "50 MiB"]) {
      expect(worker).toContain(cell);
    }
    expect(lines.find((l) => l.includes("manager"))).toContain("STOPPED");
  });

  it("exits 0 only when every node runs, 3 when one does not, 1 on errors", () => {
    expect(statusExitCode(statusView([statusResult([running])]))).toBe(0);
    expect(statusExitCode(statusView([statusResult([running, stopped])]))).toBe(3);
    expect(statusExitCode(statusView([statusResult([])]))).toBe(3);
    const timedOut = makeResult("r", { success: false, error: "request timed out" });
    expect(statusExitCode(statusView([statusResult([running]), timedOut]))).toBe(1);
  });

  it("turns an unknown node into a suggestion, or the list of nodes when nothing is close", () => {
    const names = B.vec([B.str("manager"), B.str("worker-01")]);
    const close = makeResult("r", { success: false, node: "worker-1", error: UNKNOWN_NODE, data: names });
    const far = makeResult("r", { success: false, node: "zzz", error: UNKNOWN_NODE, data: names });
    const view = statusView([close, far]);
    expect(view.errors).toEqual([
      { node: "worker-1", error: 'unknown node "worker-1" (did you mean worker-01?)' },
      { node: "zzz", error: 'unknown node "zzz"; the cluster\'s nodes are manager, worker-01' },
    ]);
    expect(statusTable(view)).toBe(
      'error: unknown node "worker-1" (did you mean worker-01?)\n' +
        'error: unknown node "zzz"; the cluster\'s nodes are manager, worker-01\n',
    );
  });

  it("formats durations and sizes compactly", () => {
    expect([0, 59_999, 60_000, 3_599_000, 3_600_000, 86_400_000 + 7_200_000].map(formatDuration)).toEqual([
      "0s",
      "59s",
      "1m00s",
      "59m59s",
      "1h00m",
      "1d02h",
    ]);
    expect([512, 2048, 10 * 1024 * 1024, 3 * 1024 ** 3].map(formatBytes)).toEqual(["512 B", "2.0 KiB", "10 MiB", "3.0 GiB"]);
  });
});

describe("zmgmt stop/start rendering", () => {
  it("lists each node's outcome and keeps request-level failures as errors", () => {
    const view = outcomeView([
      makeResult("r", { instance: "agent-a", node: "worker-01" }),
      makeResult("r", { instance: "agent-a", node: "manager", data: B.str("not stopped (RUNNING)") }),
      makeResult("r", { success: false, node: "proxy", instance: "agent-b", error: "instance agent-b is not connected" }),
      makeResult("r", { success: false, error: "request timed out" }),
    ]);
    expect(view.nodes).toEqual([
      { node: "manager", instance: "agent-a", success: true, detail: "not stopped (RUNNING)" },
      { node: "proxy", instance: "agent-b", success: false, detail: "instance agent-b is not connected" },
      { node: "worker-01", instance: "agent-a", success: true },
    ]);
    expect(view.errors).toEqual([{ error: "request timed out" }]);
    const text = outcomeTable(view, "start");
    expect(text).toMatch(/proxy\s+│ agent-b\s+│ failed │ instance agent-b is not connected/);
    expect(text.trimEnd().split("\n").pop()).toBe("error: request timed out");
  });
});
