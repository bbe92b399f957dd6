// Where the zmgmt program's entry point lives, so daemons can start their children with the
// same program (the agent, a co-located controller and the default node program). It lives
// here rather than with the CLI so that roles never import the CLI.

import { fileURLToPath } from "node:url";

export const CLI_ENTRY = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/**
 * V8 heap settings for zmgmt's long-running processes (the same as bin/zmgmt.js sets). Under
 * steady request load V8 grows the young generation to its default maximum (3 × 16 MB) and
 * keeps it, which showed up as tens of MB of RSS per daemon that no live object needed; a
 * smaller young generation costs more but shorter scavenges, which these processes, with a
 * few MB of live heap, can afford. Likewise the old generation: by default V8 lets it grow to
 * up to four times what survived the last full GC before collecting again. A controller
 * serving queries to 1,000 agents held 36 MB live and 120 MB of heap (about 200 MB RSS);
 * collecting at 1.5 times the live size kept it at 50 MB of heap and 127 MB RSS, at no
 * measurable cost in throughput.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2", "--heap-growing-percent=50"];

/**
 * argv prefix that runs a zmgmt subcommand in a fresh Node.js process; daemons get
 * DAEMON_NODE_FLAGS, cluster nodes (`node`) the defaults, as when started directly.
 */
export function zmgmtCommand(...args: string[]): string[] {
  return [process.execPath, ...(args[0] === "node" ? [] : DAEMON_NODE_FLAGS), CLI_ENTRY, ...args];
}
