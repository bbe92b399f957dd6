// `zmgmt import-zeekctl`: reads the files, prints the converted INI and the warnings; the
// conversion itself is in ../client/zeekctl-import.ts.

import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import { importZeekctl } from "../client/zeekctl-import.js";

interface ImportOptions {
  networks?: string;
  networksScript?: string;
  output?: string;
  localInstance: string;
}

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${what} ${path}${code ? ` (${code})` : ""}`);
  }
}

export function registerImportZeekctlCommand(program: Command): void {
  program
    .command("import-zeekctl")
    .description("convert zeekctl's node.cfg (and networks.cfg) into a cluster configuration INI")
    .argument("<node.cfg>", "zeekctl's node.cfg")
    .option("--networks <networks.cfg>", "zeekctl's networks.cfg, for Site::local_nets")
    .option("--networks-script <file>", "write Site::local_nets to this Zeek script and have every node load it (with local)")
    .option("-o, --output <file>", "write the INI here instead of to stdout")
    .option("--local-instance <name>", "instance for nodes on localhost", `agent-${hostname()}`)
    .action((nodeCfgPath: string, opts: ImportOptions) => {
      if (opts.networksScript !== undefined && opts.networks === undefined) {
        throw new Error("--networks-script needs --networks");
      }
      const nodeCfg = readInput(nodeCfgPath, "node.cfg");
      const networksCfg = opts.networks !== undefined ? readInput(opts.networks, "networks.cfg") : undefined;
      const result = importZeekctl(nodeCfg, {
        nodeCfgName: nodeCfgPath,
        localInstance: opts.localInstance,
        ...(networksCfg !== undefined ? { networksCfg, networksCfgName: opts.networks } : {}),
        ...(opts.networksScript !== undefined ? { networksScriptPath: resolve(opts.networksScript) } : {}),
      });
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      if (result.ini === undefined) {
        for (const e of result.errors) process.stderr.write(`error: ${e}\n`);
        process.exit(1);
      }
      if (opts.networksScript !== undefined && result.networksScript !== undefined) {
        writeFileSync(opts.networksScript, result.networksScript);
      }
      if (opts.output !== undefined) writeFileSync(opts.output, result.ini);
      else process.stdout.write(result.ini);
    });
}
