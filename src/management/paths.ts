// Where the zmgmt program's entry point lives, so daemons can start their children with the
// same program (the agent, a co-located controller and the default node program). It lives
// here rather than with the CLI so that roles never import the CLI.

import { fileURLToPath } from "node:url";

export const CLI_ENTRY = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/** argv prefix that runs a zmgmt subcommand in a fresh Node.js process. */
export function zmgmtCommand(...args: string[]): string[] {
  return [process.execPath, CLI_ENTRY, ...args];
}
