// Where the CLI entry point lives, so daemons can start their children with the same
// program (the agent, a co-located controller and the default node program).

import { fileURLToPath } from "node:url";

export const CLI_ENTRY = fileURLToPath(new URL("./main.js", import.meta.url));

/** argv prefix that runs a zmgmt subcommand in a fresh Node.js process. */
export function zmgmtCommand(...args: string[]): string[] {
  return [process.execPath, CLI_ENTRY, ...args];
}
