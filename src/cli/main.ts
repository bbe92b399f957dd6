#!/usr/bin/env node
// zmgmt: daemons (controller, agent, node, up) and zeek-client compatible client commands.

import { Command } from "commander";
import { VERSION } from "../version.js";
import { registerDaemonCommands } from "./daemons.js";
import { registerUpCommand } from "./up.js";
import { registerClientCommands } from "../client/commands.js";

const program = new Command("zmgmt");
program.version(VERSION, "--version", "print the version and exit");
registerClientCommands(program);
registerDaemonCommands(program);
registerUpCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
