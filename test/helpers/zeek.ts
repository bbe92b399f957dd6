// Locating a real Zeek for the Zeek-backed tests, and running the stock zeek-client against
// a controller with its JSON output parsed. Where Zeek or zeek-client is missing the tests
// skip with the reason printed, except in CI (CI=true), where that is a failure: those
// tests must really run there.

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { findZeekOnPath } from "../../src/agent/zeek.js";
import { locateZeekClient, runZeekClient, zeekClientRequired, type ZeekClientRun } from "./zeek-client.js";

/** A path, or undefined after printing why it is missing (throwing instead in CI). */
function found(path: string | undefined, missing: string): string | undefined {
  if (path) return path;
  if (zeekClientRequired()) throw new Error(`${missing}, and CI must run the tests that need it`);
  process.stderr.write(`skipping: ${missing}\n`);
  return undefined;
}

/** ZEEK, then the shared build beside the repository, then zeek on PATH. */
export function locateZeek(): string | undefined {
  const shared = resolve(import.meta.dirname, "../../../shared/zeek/bin/zeek");
  const candidates = [process.env["ZEEK"], shared].filter((p): p is string => !!p && existsSync(p));
  return found(candidates[0] ?? findZeekOnPath(process.env["PATH"]), "zeek not found (set ZEEK=/path/to/zeek)");
}

export function locateZeekClientOrSkip(): string | undefined {
  const where = locateZeekClient();
  return found(where.found ? where.path : undefined, where.found ? "" : where.reason);
}

export interface ClientRun extends ZeekClientRun {
  /** stdout parsed as JSON, when it is. */
  json?: unknown;
}

/** Runs the stock zeek-client against a controller on 127.0.0.1:`port`. */
export async function zeekClient(client: string, port: number, args: string[], timeoutMs = 60_000): Promise<ClientRun> {
  const run = await runZeekClient(client, ["--controller", `127.0.0.1:${port}`, ...args], { timeoutMs });
  try {
    return { ...run, json: JSON.parse(run.stdout) as unknown };
  } catch {
    return run;
  }
}
