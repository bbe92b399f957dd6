// Locating the real peers the Zeek-backed tests need: a Zeek 8 build and the stock
// zeek-client. Where one is missing the tests skip with the reason printed, except in CI
// (CI=true), where a missing peer is a failure: those tests must really run there.

import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { findZeekOnPath } from "../../src/agent/zeek.js";

const SHARED = resolve(import.meta.dirname, "../../../shared");

export interface Located {
  path?: string;
  /** Why it is missing. */
  missing?: string;
}

function located(path: string | undefined, what: string): Located {
  if (path) return { path };
  const missing = `${what} not found`;
  if (process.env["CI"] === "true") throw new Error(`${missing}, and CI must run the tests that need it`);
  process.stderr.write(`skipping: ${missing}\n`);
  return { missing };
}

/** ZEEK, then the shared build beside the repository, then zeek on PATH. */
export function locateZeek(): Located {
  const candidates = [process.env["ZEEK"], resolve(SHARED, "zeek/bin/zeek")].filter((p): p is string => !!p && existsSync(p));
  return located(candidates[0] ?? findZeekOnPath(process.env["PATH"]), "zeek (set ZEEK=/path/to/zeek)");
}

/** The stock zeek-client beside the repository (ZEEK_CLIENT overrides), if python3 can run it. */
export function locateZeekClient(): Located {
  const path = process.env["ZEEK_CLIENT"] ?? resolve(SHARED, "zeek-client/zeek-client");
  let python = false;
  try {
    execFileSync("python3", ["--version"], { stdio: "ignore" });
    python = true;
  } catch {
    // no python3
  }
  return located(existsSync(path) && python ? path : undefined, "the stock zeek-client (with python3)");
}

export interface ClientRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is. */
  json?: unknown;
}

/** Runs the stock zeek-client (a launcher script that calls python3) against 127.0.0.1:`port`. */
export function zeekClient(client: string, port: number, args: string[], timeoutMs = 60_000): Promise<ClientRun> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(client, ["--controller", `127.0.0.1:${port}`, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "/dev/null" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`zeek-client ${args.join(" ")} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolveRun({ code, stdout, stderr, ...(json !== undefined ? { json } : {}) });
    });
  });
}
