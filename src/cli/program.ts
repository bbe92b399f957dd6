import { Command } from "commander";
import { VERSION } from "../version.js";
import { registerDaemonCommands } from "./daemons.js";
import { registerUpCommand } from "./up.js";
import { registerImportZeekctlCommand } from "./import-zeekctl.js";
import { registerClientCommands } from "../client/commands.js";

export async function main(argv: string[]): Promise<void> {
  const program = new Command("zmgmt");
  program.version(VERSION, "--version", "print the version and exit");
  registerClientCommands(program);
  registerDaemonCommands(program);
  registerUpCommand(program);
  registerImportZeekctlCommand(program);
  await program.parseAsync(argv).catch((err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
