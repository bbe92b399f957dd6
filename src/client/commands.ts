// The zeek-client compatible commands of `zmgmt`: zeek-client's global options, command
// names, arguments, JSON output and exit codes, plus tables and a progress spinner when a
// person is watching a terminal.

import { readFileSync, writeFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import pc from "picocolors";
import type { Configuration } from "../management/types.js";
import { locatedErrors, parseClusterConfig } from "./cluster-config.js";
import { USAGE_EXIT, addGlobalOptions, emit, exitNow, mergedOptions, runClient, type Context } from "./command-runner.js";
import { ClientFailure, isRegularFile, type ControllerConnection } from "./connection.js";
import { Logger } from "./log.js";
import { pyDumps, type PyDict, type PyJson } from "./pyjson.js";
import {
  formatConfig,
  renderDeploy,
  renderGetConfig,
  renderGetIdValue,
  renderGetInstances,
  renderGetNodes,
  renderRestart,
  renderStage,
  renderTestTimeout,
} from "./render.js";
import { didYouMean } from "./suggest.js";
import { resultNodeStatuses } from "./controller-client.js";
import { humanLine, jsonLine } from "./monitor.js";
import { renderSettings } from "./settings.js";
import { deployTable, idValueTable, instancesTable, nodesTable, restartTable } from "./tables.js";
import { ZMGMT_COMMANDS } from "./zmgmt-commands.js";

// ---------------------------------------------------------------------------------------------
// Commands

async function readConfigSource(file: string): Promise<string> {
  if (file !== "-") return readFileSync(file, "utf8");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

interface StageOutcome {
  code: number;
  json?: PyJson;
  conn?: ControllerConnection;
}

/** Shared by stage-config and deploy-config: parse, validate, connect, stage. */
async function stageConfig(ctx: Context, file: string): Promise<StageOutcome> {
  if (!file || (file !== "-" && !isRegularFile(file))) {
    ctx.log.error("please provide a cluster configuration file.");
    return { code: 1 };
  }
  const text = await readConfigSource(file);
  const fileName = file === "-" ? "<stdin>" : file;
  const parsed = parseClusterConfig(text, { fileName });
  for (const w of parsed.warnings) ctx.log.warning(w);
  for (const e of locatedErrors(parsed, fileName)) ctx.log.error(e);
  if (parsed.config === undefined) {
    ctx.log.error("configuration has errors, not sending");
    return { code: 1 };
  }
  const config: Configuration = parsed.config;
  const conn = await ctx.connect();
  const rendered = renderStage(await conn.client.stageConfiguration(config));
  ctx.log.all(rendered.logs);
  return { code: rendered.exitCode, conn, ...(rendered.json !== undefined ? { json: rendered.json } : {}) };
}

/**
 * Staging's answer: zeek-client's JSON, except that on a terminal the controller's
 * validation errors are printed as the same `error:` lines a locally found problem gets.
 */
async function printStaged(ctx: Context, staged: StageOutcome): Promise<void> {
  if (staged.json === undefined) return;
  const errors = (staged.json as PyDict)["errors"];
  if (ctx.human && Array.isArray(errors) && errors.length > 0) {
    for (const e of errors) ctx.log.error(typeof e === "string" ? e : pyDumps(e, null));
    ctx.log.error("configuration has errors, not staged");
    return;
  }
  await ctx.printJson(staged.json);
}

/**
 * For names the controller answered "unknown cluster node" to, a hint on stderr naming the
 * closest nodes it reported (or all of them). The JSON on stdout stays zeek-client's.
 */
async function hintUnknownNodes(ctx: Context, conn: ControllerConnection, json: PyJson | undefined): Promise<void> {
  if (ctx.quiet || json === undefined || json === null || typeof json !== "object" || Array.isArray(json)) return;
  const errors = (json as PyDict)["errors"];
  if (!Array.isArray(errors)) return;
  const unknown = errors.flatMap((e) => {
    if (e === null || typeof e !== "object" || Array.isArray(e)) return [];
    const d = e as PyDict;
    return d["error"] === "unknown cluster node" && typeof d["source"] === "string" ? [d["source"]] : [];
  });
  if (unknown.length === 0) return;
  let names: string[] = [];
  try {
    for (const result of await conn.client.getNodes()) {
      for (const status of resultNodeStatuses(result) ?? [])
        if (status.mgmtRole !== "AGENT" && status.mgmtRole !== "CONTROLLER") names.push(status.node);
    }
  } catch {
    return; // A hint is not worth a second failure.
  }
  names = [...new Set(names)].sort();
  for (const name of unknown) {
    const close = didYouMean(name, names);
    const text = close
      ? `hint: no node "${name}"${close}`
      : `hint: no node "${name}"; the cluster's nodes are ${names.length ? names.join(", ") : "none (nothing deployed?)"}`;
    ctx.spinner.clear();
    process.stderr.write(`${text}\n`);
  }
}

async function deploy(ctx: Context, conn: ControllerConnection): Promise<number> {
  ctx.spinner.start("deploying configuration");
  let results;
  try {
    results = await conn.client.deploy();
  } finally {
    ctx.spinner.stop();
  }
  return emit(ctx, renderDeploy(results), deployTable);
}

type Handler = (ctx: Context, args: string[], options: Record<string, unknown>) => Promise<number>;

interface CommandSpec {
  name: string;
  description: string;
  configure?: (cmd: Command) => Command;
  run: Handler;
}

const COMMANDS: CommandSpec[] = [
  {
    name: "deploy",
    description: "deploy the staged cluster configuration",
    run: async (ctx) => deploy(ctx, await ctx.connect()),
  },
  {
    name: "deploy-config",
    description: "stage a cluster configuration and deploy it",
    configure: (cmd) => cmd.argument("<FILE>", 'cluster configuration file, "-" for stdin'),
    run: async (ctx, [file]) => {
      const staged = await stageConfig(ctx, file!);
      if (staged.code !== 0 || staged.conn === undefined) {
        await printStaged(ctx, staged);
        return staged.code;
      }
      return deploy(ctx, staged.conn);
    },
  },
  {
    name: "get-config",
    description: "show the staged (default) or deployed cluster configuration",
    configure: (cmd) =>
      cmd
        .option("-f, --filename <FILE>", "write the configuration to FILE instead of stdout", "-")
        .option("--as-json", "JSON instead of the INI format")
        .addOption(new Option("--deployed", "the deployed configuration").conflicts("staged"))
        .addOption(new Option("--staged", "the staged configuration (default)").conflicts("deployed")),
    run: async (ctx, _args, options) => {
      const conn = await ctx.connect();
      const rendered = renderGetConfig(await conn.client.getConfiguration(options["deployed"] === true));
      ctx.log.all(rendered.logs);
      if (rendered.config === undefined) return rendered.exitCode;
      const text = formatConfig(rendered.config, options["asJson"] === true, ctx.pretty);
      const filename = options["filename"] as string;
      if (filename && filename !== "-") {
        try {
          writeFileSync(filename, text, "utf8");
        } catch (err) {
          throw new ClientFailure(`cannot write ${filename}: ${err instanceof Error ? err.message : String(err)}`);
        }
      } else {
        await ctx.print(text);
      }
      return 0;
    },
  },
  {
    name: "get-id-value",
    description: "show the value of a script identifier on cluster nodes (all nodes by default)",
    configure: (cmd) => cmd.argument("<IDENTIFIER>", "script identifier, e.g. Cluster::node").argument("[NODES...]", "node names"),
    run: async (ctx, [id, ...nodes]) => {
      const conn = await ctx.connect();
      const rendered = renderGetIdValue(await conn.client.getIdValue(id!, [...new Set(nodes)]));
      const code = await emit(ctx, rendered, idValueTable);
      await hintUnknownNodes(ctx, conn, rendered.json);
      return code;
    },
  },
  {
    name: "get-instances",
    description: "show the instances (agents) the controller knows",
    run: async (ctx) => {
      const conn = await ctx.connect();
      return emit(ctx, renderGetInstances(await conn.client.getInstances()), instancesTable);
    },
  },
  {
    name: "get-nodes",
    description: "show the running nodes of every instance",
    run: async (ctx) => {
      const conn = await ctx.connect();
      return emit(ctx, renderGetNodes(await conn.client.getNodes()), nodesTable);
    },
  },
  {
    name: "monitor",
    description: "print the cluster's state changes, logs and errors as they happen, until Ctrl-C",
    run: async (ctx) => {
      const conn = await ctx.connect();
      if (!ctx.human && !ctx.json) {
        // Piped without --json: zeek-client's output, every event's signature.
        conn.monitor((line) => void ctx.print(line + "\n"));
        return new Promise<number>(() => undefined);
      }
      if (ctx.human && !ctx.quiet) process.stderr.write(pc.dim(`watching controller ${conn.target.remote}; Ctrl-C to stop\n`));
      const color = ctx.tableOptions.color ? pc : undefined;
      return new Promise<number>((resolve) => {
        conn.watch(
          (n) => void ctx.print((ctx.json ? jsonLine(n, new Date()) : humanLine(n, new Date(), color ? { color } : {})) + "\n"),
          (message) => {
            ctx.log.error(message);
            resolve(1);
          },
        );
      });
    },
  },
  {
    name: "restart",
    description: "restart cluster nodes (all nodes by default)",
    configure: (cmd) => cmd.argument("[NODES...]", "node names"),
    run: async (ctx, nodes) => {
      const conn = await ctx.connect();
      ctx.spinner.start("restarting nodes");
      let results;
      try {
        results = await conn.client.restart([...new Set(nodes)]);
      } finally {
        ctx.spinner.stop();
      }
      const rendered = renderRestart(results);
      const code = await emit(ctx, rendered, restartTable);
      await hintUnknownNodes(ctx, conn, rendered.json);
      return code;
    },
  },
  {
    name: "stage-config",
    description: "upload a cluster configuration for a later deploy",
    configure: (cmd) => cmd.argument("<FILE>", 'cluster configuration file, "-" for stdin'),
    run: async (ctx, [file]) => {
      const staged = await stageConfig(ctx, file!);
      await printStaged(ctx, staged);
      return staged.code;
    },
  },
  {
    name: "show-settings",
    description: "show the client's effective settings",
    run: async (ctx) => {
      await ctx.print(renderSettings(ctx.settings));
      return 0;
    },
  },
  {
    name: "test-timeout",
    description: "send a request the controller lets time out",
    configure: (cmd) => cmd.option("--with-state", "make the controller keep state for it (it then answers)"),
    run: async (ctx, _args, options) => {
      const conn = await ctx.connect();
      return emit(ctx, renderTestTimeout(await conn.client.testTimeout(options["withState"] === true)));
    },
  },
  ...ZMGMT_COMMANDS,
];

/** Usage errors exit with 2 (argparse's code); help and version output exit with 0. */
function exitForCommanderError(err: CommanderError): never {
  if (err.exitCode === 0) exitNow(0);
  exitNow(USAGE_EXIT);
}

/**
 * Commander suggests only options that help shows, and the global options are hidden on
 * each command (they are listed once, on zmgmt --help); a typo in `--jsno` should still
 * point at `--json`. This replaces commander's hook with the same message over every option.
 */
function suggestHiddenOptions(cmd: Command): void {
  (cmd as unknown as { unknownOption(flag: string): void }).unknownOption = (flag: string) => {
    const longs = cmd.options.map((o) => o.long).filter((l): l is string => l !== undefined);
    const hint = flag.startsWith("--") ? didYouMean(flag, longs) : "";
    cmd.error(`error: unknown option '${flag}'${hint}`, { exitCode: USAGE_EXIT, code: "commander.unknownOption" });
  };
}

/** Adds zeek-client's global options and commands to the `zmgmt` program. */
export function registerClientCommands(program: Command): void {
  // As with zeek-client, options before the command belong to the client; this also keeps
  // the daemons' own --controller options theirs.
  program.enablePositionalOptions();
  program.exitOverride(exitForCommanderError);
  // The action below (for a missing command) would otherwise switch off `zmgmt help CMD`.
  program.helpCommand(true);
  addGlobalOptions(program, false);
  program
    .usage("[options] [command]")
    .argument("[command...]")
    .action((words: string[], _opts: unknown, cmd: Command) => {
      if (words.length > 0) {
        const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
        program.error(`error: unknown command '${words[0]}'${didYouMean(words[0]!, names)}`, {
          exitCode: USAGE_EXIT,
          code: "commander.unknownCommand",
        });
      }
      const opts = mergedOptions(cmd);
      new Logger({ quiet: opts.quiet }).error("please provide a command to execute.");
      exitNow(1);
    });

  for (const spec of COMMANDS) {
    let cmd = program.command(spec.name).description(spec.description);
    if (spec.configure) cmd = spec.configure(cmd);
    addGlobalOptions(cmd, true);
    suggestHiddenOptions(cmd);
    cmd.addHelpText("after", "\nThe global options (zmgmt --help) may also follow the command name.");
    cmd.action(async (...params: unknown[]) => {
      const self = params[params.length - 1] as Command;
      const options = params[params.length - 2] as Record<string, unknown>;
      const args = params.slice(0, -2).flatMap((a) => (Array.isArray(a) ? (a as string[]) : a === undefined ? [] : [a as string]));
      await runClient(self, (ctx) => spec.run(ctx, args, options));
    });
  }
}
