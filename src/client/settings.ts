// zeek-client's own settings (`show-settings`): built-in defaults, then the settings file,
// then ZEEK_CLIENT_CONFIG_SETTINGS, then --set, --controller and -v, each overriding the
// previous. Everything goes through a configparser-compatible store so that values, key case
// folding, `%` interpolation and the printed layout behave as in zeek-client.

import { existsSync, readFileSync } from "node:fs";
import { ConfigParser, IniError, parsePyInt } from "./ini.js";
import { didYouMean } from "./suggest.js";
import { ShlexError, shlexSplit } from "../management/shlex.js";

/** Built-in defaults in show-settings order; values are Python's str() of upstream's defaults. */
export const DEFAULT_SETTINGS: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]> = [
  [
    "client",
    [
      ["request_timeout_secs", "20"],
      ["peering_attempts", "10"],
      ["peering_retry_delay_secs", "1.0"],
      ["rich_logging_format", "False"],
      ["pretty_json", "True"],
      ["verbosity", "0"],
    ],
  ],
  [
    "controller",
    [
      ["host", "127.0.0.1"],
      ["port", "2149"],
    ],
  ],
  [
    "ssl",
    [
      ["enable", "False"],
      ["certificate", ""],
      ["keyfile", ""],
      ["cafile", ""],
      ["capath", ""],
      ["passphrase", ""],
    ],
  ],
];

export class Settings {
  /** The underlying store: no valueless keys, `%` interpolation on, as zeek-client's Config. */
  readonly parser: ConfigParser;

  constructor() {
    this.parser = new ConfigParser();
    for (const [section, entries] of DEFAULT_SETTINGS) {
      this.parser.addSection(section);
      for (const [key, value] of entries) this.parser.set(section, key, value);
    }
  }

  /** Reads settings text on top of the current values. Throws IniError on bad syntax. */
  readString(text: string, source: string): void {
    this.parser.readString(text, source);
  }

  has(section: string, key: string): boolean {
    return this.parser.hasOption(section, key);
  }

  /** Throws IniError when the section or key is missing or the value cannot be interpolated. */
  get(section: string, key: string): string {
    return this.parser.get(section, key) ?? "";
  }

  getInt(section: string, key: string): number {
    return this.parser.getInt(section, key);
  }

  getFloat(section: string, key: string): number {
    return this.parser.getFloat(section, key);
  }

  /** Python's boolean words: 1/yes/true/on and 0/no/false/off, in any case. */
  getBool(section: string, key: string): boolean {
    return this.parser.getBoolean(section, key);
  }

  /** Sets a value, creating the section if needed. Throws IniError for a `%` that can't expand. */
  set(section: string, key: string, value: string): void {
    if (!this.parser.hasSection(section)) this.parser.addSection(section);
    this.parser.set(section, key, value);
  }

  /**
   * Applies one `section.key=value` item. Throws for an item without `=` or `.`, for the
   * reserved section name DEFAULT, and for an invalid `%` in the value.
   */
  apply(item: string): void {
    const eq = item.indexOf("=");
    const dot = eq < 0 ? -1 : item.slice(0, eq).indexOf(".");
    if (eq < 0 || dot < 0) throw new Error(`config item "${item}" invalid`);
    const section = item.slice(0, dot);
    const key = item.slice(dot + 1, eq);
    const value = item.slice(eq + 1);
    if (!this.parser.hasSection(section)) this.parser.addSection(section);
    this.parser.set(section, key, value);
  }

  /** The show-settings text. */
  render(): string {
    return this.parser.write();
  }
}

export function renderSettings(settings: Settings): string {
  return settings.render();
}

/**
 * Splits a --controller value. Either part may be missing (`foo`, `foo:`, `:2222`); an IPv6
 * host is written in brackets, which stay part of the host so it can go into a URL as is.
 */
export function parseControllerArg(text: string): { host?: string; port?: string } {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close > 0) {
      const host = text.slice(0, close + 1);
      const rest = text.slice(close + 1);
      if (rest === "" || rest === ":") return { host };
      if (rest.startsWith(":")) return { host, port: rest.slice(1) };
    }
  }
  const colon = text.indexOf(":");
  if (colon < 0) return { host: text };
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (port === "") return { host };
  if (host === "") return { port };
  return { host, port };
}

/** Every `section.key` zeek-client reads (keys fold to lower case, as in configparser). */
export const KNOWN_SETTINGS: ReadonlySet<string> = new Set(
  DEFAULT_SETTINGS.flatMap(([section, entries]) => entries.map(([key]) => `${section}.${key}`)),
);

/**
 * Why a --set item names no setting zeek-client knows, or undefined when it does (or is
 * malformed, which loadSettings reports as zeek-client does). ssl.disable is deprecated,
 * not unknown: it gets its own warning.
 */
export function unknownSetting(item: string): string | undefined {
  const eq = item.indexOf("=");
  const dot = eq < 0 ? -1 : item.slice(0, eq).indexOf(".");
  if (eq < 0 || dot < 0) return undefined;
  const name = `${item.slice(0, dot)}.${item.slice(dot + 1, eq).toLowerCase()}`;
  if (KNOWN_SETTINGS.has(name) || name === "ssl.disable") return undefined;
  return `unknown setting "${name}" in --set ${item}${didYouMean(name, KNOWN_SETTINGS)}; show-settings lists them all`;
}

/** The global options that feed the settings. */
export interface SettingsArgs {
  /** -c/--configfile */
  configFile?: string;
  /** --set items, in command-line order. */
  set?: readonly string[];
  /** --controller HOST:PORT */
  controller?: string;
  /** Number of -v flags. */
  verbose?: number;
}

export interface SettingsEnv {
  ZEEK_CLIENT_CONFIG_FILE?: string;
  ZEEK_CLIENT_CONFIG_SETTINGS?: string;
  [name: string]: string | undefined;
}

export interface LoadSettingsOptions {
  /** Settings file used when neither -c nor ZEEK_CLIENT_CONFIG_FILE names one. */
  defaultConfigFile?: string;
  /** Returns a file's text, or undefined when it can't be read (such files are skipped). */
  readFile?: (path: string) => string | undefined;
}

export interface LoadedSettings {
  settings: Settings;
  /** The settings file that was looked for, if any. */
  configFile?: string;
  /** Problems zeek-client logs as errors and then carries on. */
  errors: string[];
  /**
   * Mistakes on the command line that zeek-client lets pass silently or with a traceback
   * (an unknown --set key, a -c file that is not there, a --controller port that is not a
   * number); the CLI stops on them before doing anything.
   */
  fatal: string[];
  warnings: string[];
}

function readFileIfPossible(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Effective settings for the given options and environment. A settings file that can't be
 * opened is skipped silently; one with INI syntax errors makes this throw IniError (zeek-client
 * stops there too). Bad override items are reported in `errors` and otherwise ignored.
 */
export function loadSettings(args: SettingsArgs = {}, env: SettingsEnv = {}, options: LoadSettingsOptions = {}): LoadedSettings {
  const settings = new Settings();
  const errors: string[] = [];
  const warnings: string[] = [];
  const fatal: string[] = [];
  const readFile = options.readFile ?? readFileIfPossible;

  const configFile = args.configFile ?? (env.ZEEK_CLIENT_CONFIG_FILE || options.defaultConfigFile);
  if (configFile !== undefined) {
    const text = readFile(configFile);
    if (text !== undefined) settings.readString(text, configFile);
    else if (args.configFile !== undefined) {
      fatal.push(`client settings file "${configFile}" ${existsSync(configFile) ? "cannot be read" : "not found"}`);
    }
  }

  let envItems: string[] = [];
  try {
    envItems = shlexSplit(env.ZEEK_CLIENT_CONFIG_SETTINGS ?? "");
  } catch (err) {
    if (!(err instanceof ShlexError)) throw err;
    errors.push(`cannot parse ZEEK_CLIENT_CONFIG_SETTINGS: ${err.message}`);
  }
  for (const item of envItems) {
    try {
      settings.apply(item);
    } catch {
      errors.push(`config item "${item}" in ZEEK_CLIENT_CONFIG_SETTINGS invalid. Please use <section.key>=<val>.`);
    }
  }

  for (const item of args.set ?? []) {
    const unknown = unknownSetting(item);
    if (unknown !== undefined) fatal.push(unknown);
    try {
      settings.apply(item);
    } catch {
      errors.push(`config item "${item}" invalid. Please use <section.key>=<val>.`);
    }
  }

  if (args.controller) {
    const { host, port } = parseControllerArg(args.controller);
    const number = port === undefined ? undefined : parsePyInt(port);
    if (port !== undefined && number === undefined) {
      fatal.push(`invalid --controller value "${args.controller}": port "${port}" is not a number (use HOST:PORT, e.g. 127.0.0.1:2149)`);
    }
    try {
      if (host !== undefined) settings.set("controller", "host", host);
      if (port !== undefined) settings.set("controller", "port", port);
    } catch (err) {
      if (!(err instanceof IniError)) throw err;
      errors.push(`invalid --controller value "${args.controller}": ${err.message}`);
    }
  }

  if (args.verbose) settings.set("client", "verbosity", String(args.verbose));

  if (settings.has("ssl", "disable")) {
    warnings.push("the ssl.disable setting is deprecated and has no effect, use ssl.enable instead");
  }

  return configFile === undefined ? { settings, errors, warnings, fatal } : { settings, configFile, errors, warnings, fatal };
}
