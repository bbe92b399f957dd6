// The daemons' V8 heap flags are stated twice, in the launcher's shebang (a shell starts
// zmgmt) and in DAEMON_NODE_FLAGS (a daemon starts its children): the two must agree, and
// this Node.js must accept them, since an unknown flag stops every daemon from starting.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAEMON_NODE_FLAGS, zmgmtCommand } from "../src/management/paths.js";

describe("daemon heap flags", () => {
  it("the launcher's shebang carries exactly DAEMON_NODE_FLAGS", () => {
    const shebang = readFileSync(join(import.meta.dirname, "../bin/zmgmt.js"), "utf8").split("\n")[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(" ")}`);
  });

  it("daemons start their children with them, cluster nodes with Node's defaults", () => {
    expect(zmgmtCommand("agent-process").slice(1, 1 + DAEMON_NODE_FLAGS.length)).toEqual([...DAEMON_NODE_FLAGS]);
    expect(zmgmtCommand("node")[1]).not.toMatch(/^--/);
  });

  it("this Node.js accepts them (an unknown V8 flag exits with 'bad option')", () => {
    expect(execFileSync(process.execPath, [...DAEMON_NODE_FLAGS, "-p", "'ok'"], { encoding: "utf8" })).toBe("ok\n");
  });
});
