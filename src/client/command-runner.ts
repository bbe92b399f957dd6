// How a zeek-client compatible command runs: zeek-client's global options, the settings
// they select, the one controller connection, the spinner on a terminal, and the exit code.

import { Command, Option } from "commander";
import pc from "picocolors";
import { ClientFailure, connectController, resolveTarget, type ControllerConnection } from "./connection.js";
import { IniError, parsePyFloat, parsePyInt } from "./ini.js";
import { Logger } from "./log.js";
import { pyDumps, type PyDict, type PyJson } from "./pyjson.js";
import type { Rendered } from "./render.js";
import { loadSettings, type Settings } from "./settings.js";
import type { TableOptions } from "./tables.js";

/** argparse's exit code for usage errors, which zeek-client users' scripts may test for. */
export const USAGE_EXIT = 2;

export interface GlobalOptions {
  configfile?: string;
  controller?: string;
  set: string[];
  quiet: boolean;
  verbose: number;
  json: boolean;
}

function globalOptionList(hidden: boolean): Option[] {
  const options = [
    new Option("-c, --configfile <FILE>", "client settings file (default: $ZEEK_CLIENT_CONFIG_FILE)"),
    new Option("--controller <HOST:PORT>", "controller address; either part may be left out"),
    new Option("--set <SECTION.KEY=VALUE>", "override a client setting (repeatable, see show-settings)").argParser(
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    ),
    new Option("-q, --quiet", "no log output on stderr"),
    new Option("-v, --verbose", "more log output on stderr (repeatable, e.g. -vvv)").argParser(
      (_value: string | undefined, previous: number | undefined) => (previous ?? 0) + 1,
    ),
    new Option("--json", "print zeek-client's JSON even on a terminal"),
  ];
  if (hidden) for (const o of options) o.hideHelp();
  return options;
}

export function addGlobalOptions(cmd: Command, hidden: boolean): Command {
  for (const o of globalOptionList(hidden)) cmd.addOption(o);
  return cmd;
}

/** Global options may come before the command (as in zeek-client) or after it. */
export function mergedOptions(cmd: Command): GlobalOptions {
  const outer = cmd.parent?.opts<Partial<GlobalOptions>>() ?? {};
  const inner = cmd.opts<Partial<GlobalOptions>>();
  const merged: GlobalOptions = {
    set: [...(outer.set ?? []), ...(inner.set ?? [])],
    quiet: Boolean(outer.quiet || inner.quiet),
    verbose: (outer.verbose ?? 0) + (inner.verbose ?? 0),
    json: Boolean(outer.json || inner.json),
  };
  const configfile = inner.configfile ?? outer.configfile;
  const controller = inner.controller ?? outer.controller;
  if (configfile !== undefined) merged.configfile = configfile;
  if (controller !== undefined) merged.controller = controller;
  if (merged.quiet && merged.verbose > 0) {
    cmd.error("error: option '-q, --quiet' cannot be used with option '-v, --verbose'", {
      exitCode: USAGE_EXIT,
      code: "commander.conflictingOption",
    });
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Terminal helpers

const SPINNER_FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * A one-line spinner on stderr, only when stderr is a terminal (never in pipes or logs).
 * Not ora or nanospinner: neither shows the elapsed time, and this is all that is needed.
 */
export class Spinner {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly enabled: boolean,
  ) {}

  start(text: string): void {
    if (!this.enabled || !this.stream.isTTY || this.timer) return;
    const started = Date.now();
    let frame = 0;
    this.timer = setInterval(() => {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      this.stream.write(`\r${pc.cyan(SPINNER_FRAMES[frame++ % SPINNER_FRAMES.length])} ${text} ${pc.dim(`${secs}s`)}\x1b[K`);
      this.shown = true;
    }, 100);
  }

  clear(): void {
    if (this.shown) this.stream.write("\r\x1b[K");
    this.shown = false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }
}

function writeStdout(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (text === "") {
      resolve();
      return;
    }
    process.stdout.write(text, () => resolve());
  });
}

// ---------------------------------------------------------------------------------------------
// Running a command

export interface Context {
  settings: Settings;
  log: Logger;
  pretty: boolean;
  /** Tables instead of JSON: stdout is a terminal and --json was not given. */
  human: boolean;
  /** --json was given. */
  json: boolean;
  quiet: boolean;
  tableOptions: TableOptions;
  spinner: Spinner;
  connect(): Promise<ControllerConnection>;
  print(text: string): Promise<void>;
  printJson(json: PyJson): Promise<void>;
}

function settingNumber(settings: Settings, section: string, key: string, kind: "int" | "float"): number {
  const text = settings.get(section, key);
  const n = kind === "int" ? parsePyInt(text) : parsePyFloat(text);
  if (n === undefined) {
    const what = kind === "int" ? `invalid literal for int() with base 10: '${text}'` : `could not convert string to float: '${text}'`;
    throw new ClientFailure(`invalid setting ${section}.${key}: ${what}`);
  }
  return Number(n);
}

function settingBool(settings: Settings, section: string, key: string): boolean {
  try {
    return settings.getBool(section, key);
  } catch (err) {
    throw new ClientFailure(`invalid setting ${section}.${key}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A command's one connection, once it has connected. */
let openConnection: ControllerConnection | undefined;

async function closeConnection(): Promise<void> {
  const closing = openConnection?.close().catch(() => undefined);
  openConnection = undefined;
  await Promise.race([closing, new Promise((r) => setTimeout(r, 1000).unref())]);
}

export function exitNow(code: number): never {
  process.exit(code);
}

export async function runClient(cmd: Command, handler: (ctx: Context) => Promise<number>): Promise<void> {
  const opts = mergedOptions(cmd);
  let loaded;
  try {
    loaded = loadSettings(
      {
        ...(opts.configfile !== undefined ? { configFile: opts.configfile } : {}),
        set: opts.set,
        ...(opts.controller !== undefined ? { controller: opts.controller } : {}),
        verbose: opts.verbose,
      },
      process.env,
    );
  } catch (err) {
    if (!(err instanceof IniError)) throw err;
    if (!opts.quiet) process.stderr.write(`error: ${err.message}\n`);
    return exitNow(1);
  }
  if (loaded.fatal.length > 0) {
    const log = new Logger({ quiet: opts.quiet });
    for (const e of loaded.fatal) log.error(e);
    return exitNow(1);
  }
  const settings = loaded.settings;

  let verbosity = 0;
  let rich = false;
  let pretty = true;
  const early = new Logger({ quiet: opts.quiet });
  try {
    verbosity = settingNumber(settings, "client", "verbosity", "int");
    rich = settingBool(settings, "client", "rich_logging_format");
    pretty = settingBool(settings, "client", "pretty_json");
  } catch (err) {
    early.error(err instanceof Error ? err.message : String(err));
    return exitNow(1);
  }
  const log = new Logger({ verbosity, quiet: opts.quiet, rich });
  for (const e of loaded.errors) log.error(e);
  for (const w of loaded.warnings) log.warning(w);

  const spinner = new Spinner(process.stderr, !opts.quiet);
  log.beforeWrite = () => spinner.clear();
  const color = pc.isColorSupported && process.stdout.isTTY;

  const ctx: Context = {
    settings,
    log,
    pretty,
    human: process.stdout.isTTY && !opts.json,
    json: opts.json,
    quiet: opts.quiet,
    tableOptions: { color },
    spinner,
    async connect() {
      if (openConnection) return openConnection;
      const target = resolveTarget(settings);
      const conn = await connectController(target, {
        attempts: settingNumber(settings, "client", "peering_attempts", "int"),
        retryDelayMs: settingNumber(settings, "client", "peering_retry_delay_secs", "float") * 1000,
        requestTimeoutMs: settingNumber(settings, "client", "request_timeout_secs", "float") * 1000,
        log,
      });
      openConnection = conn;
      return conn;
    },
    print: writeStdout,
    printJson: (json) => writeStdout(pyDumps(json, pretty ? 2 : null) + "\n"),
  };

  // Ctrl-C is how monitor ends, and zeek-client treats it as success everywhere.
  process.once("SIGINT", () => {
    spinner.stop();
    exitNow(0);
  });
  process.stdout.on("error", () => exitNow(0));

  let code: number;
  try {
    code = await handler(ctx);
  } catch (thrown) {
    spinner.stop();
    const err = openConnection ? await openConnection.failure(thrown) : thrown;
    if (!(err instanceof ClientFailure)) throw err;
    log.error(err.message);
    code = 1;
  }
  spinner.stop();
  await closeConnection();
  exitNow(code);
}

/** Prints a command's result: a table on a terminal, zeek-client's JSON otherwise. */
export async function emit(ctx: Context, rendered: Rendered, table?: (json: PyDict, options: TableOptions) => string): Promise<number> {
  ctx.log.all(rendered.logs);
  if (rendered.json !== undefined) {
    if (ctx.human && table) await ctx.print(table(rendered.json as PyDict, ctx.tableOptions));
    else await ctx.printJson(rendered.json);
  }
  return rendered.exitCode;
}
