// The management log itself: files rotate by size within a bounded total, messages quoting
// client input are capped, files are owner-only, and a stderr nobody reads never stalls
// the process that logs.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { clip, createLogger, formatPretty } from "../src/management/log.js";
import { eventually } from "./helpers/ws.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "zmgmt-log-"));
  dirs.push(d);
  return d;
}

function logFiles(dir: string): Map<string, number> {
  return new Map(
    readdirSync(dir)
      .filter((f) => f.startsWith("management-"))
      .map((f) => [f, statSync(join(dir, f)).size]),
  );
}

describe("management log", () => {
  it("rotates by size: the live file and each kept file stay within the limit, older ones are removed", async () => {
    const dir = join(tempDir(), "nodes", "c1");
    const log = createLogger({ node: "c1", role: "CONTROLLER", directory: dir, rotation: { maxBytes: 20_000, keep: 2 } });
    const total = 2000;
    for (let i = 0; i < total; i++) log.info(`line ${i} ${"x".repeat(100)}`);
    // Lines are written in the background; the last one shows up in the live file.
    await eventually(() => readFileSync(join(dir, "management-c1.log"), "utf8").includes(`line ${total - 1} `), 10_000, "last line");
    const files = logFiles(dir);
    expect([...files.keys()].sort()).toEqual(["management-c1.log", "management-c1.log.1", "management-c1.log.2"]);
    for (const size of files.values()) expect(size).toBeLessThanOrEqual(20_000);
    // Every line that was kept is whole JSON, and the newest ones are contiguous across the rotation.
    const kept = ["management-c1.log.2", "management-c1.log.1", "management-c1.log"]
      .flatMap((f) => readFileSync(join(dir, f), "utf8").trim().split("\n"))
      .map((l) => Number(/^line (\d+) /.exec((JSON.parse(l) as { message: string }).message)![1]));
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => total - kept.length + i));
    expect(kept.length).toBeGreaterThan(200);
    // Owner only, directory and file.
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "management-c1.log")).mode & 0o777).toBe(0o600);
  });

  it("caps each message: a 3 MB client string is not logged in full", async () => {
    const dir = tempDir();
    const log = createLogger({ node: "c1", role: "CONTROLLER", directory: dir });
    const reqid = "r".repeat(3 * 1024 * 1024);
    log.info(`rx Management::Controller::API::get_nodes_request ${reqid}`);
    log.info("after");
    await eventually(() => readFileSync(join(dir, "management-c1.log"), "utf8").includes('"after"'), 10_000, "second line");
    const lines = readFileSync(join(dir, "management-c1.log"), "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    const message = (JSON.parse(lines[0]!) as { message: string }).message;
    expect(message.length).toBeLessThan(5000);
    expect(message).toMatch(/^rx Management::Controller::API::get_nodes_request r+… \[\d+ more characters\]$/);
    expect(clip("abc", 2)).toBe("ab… [1 more characters]");
    expect(clip("abc", 3)).toBe("abc");
  });

  it("shows control characters escaped on the pretty stderr copy, so one entry stays one line", () => {
    const line = JSON.stringify({ node: "a", level: "INFO", role: "AGENT", ts: 1, message: "x\nFAKE ENTRY\r\u001b[31m" });
    expect(formatPretty(line)).toBe("1970-01-01T00:00:01.000Z INFO    agent a: x\\x0aFAKE ENTRY\\x0d\\x1b[31m\n");
  });

  it("never blocks the event loop on a stderr pipe nobody reads", async () => {
    const logModule = resolve(import.meta.dirname, "../dist/management/log.js");
    // The child logs far more than a pipe holds to a stderr that is never read, then checks
    // that its timers still run and says so on stdout.
    const script = `
      const { createLogger } = await import(${JSON.stringify(logModule)});
      const log = createLogger({ node: "n", role: "AGENT", stderr: true, stderrFormat: "json" });
      for (let i = 0; i < 20000; i++) log.info("filler " + "y".repeat(200));
      const start = Date.now();
      setTimeout(() => { process.stdout.write("timer after " + (Date.now() - start) + " ms\\n"); process.exit(0); }, 10);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    // stderr is deliberately left unread (paused) so the pipe fills up.
    child.stderr.pause();
    try {
      await eventually(() => out.includes("timer after"), 15_000, "the child's timer");
      expect(Number(/timer after (\d+) ms/.exec(out)![1])).toBeLessThan(5000);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
