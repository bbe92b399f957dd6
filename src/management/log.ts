// management.log: one structured JSON line per entry with upstream's columns (ts, node,
// level, role, message), written to `management-<node>.log` in the process's directory,
// and optionally mirrored to stderr for people watching a terminal (or a journal), either
// as the same JSON lines or as plain text. Files rotate by size; writes never block the
// event loop (log-sink.ts); messages are capped, since they quote what clients send.

import { join } from "node:path";
import pino, { type Logger as PinoLogger } from "pino";
import { LogSink } from "./log-sink.js";
import { ensurePrivateDir } from "./private-files.js";

export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";
export type LogRole = "AGENT" | "CONTROLLER" | "NODE" | "SUPERVISOR" | "CLIENT";
/** How the stderr copy reads; the file is always JSON lines. */
export type LogFormat = "pretty" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

let processStderrFormat: LogFormat = "pretty";
/**
 * The stderr format of loggers created later in this process that do not name one: the
 * format is a property of the process's stderr (set once by its command line), and
 * some loggers are created by code that does not know about it.
 */
export function setStderrLogFormat(format: LogFormat): void {
  processStderrFormat = format;
}

const PINO_LEVEL: Record<LogLevel, string> = { DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error" };
const LEVEL_NAME: Record<string, LogLevel> = { debug: "DEBUG", info: "INFO", warn: "WARNING", error: "ERROR" };

export interface LoggerOptions {
  node: string;
  role: LogRole;
  /** Directory for management-<node>.log; no file when absent. */
  directory?: string;
  level?: LogLevel;
  /** Also write each line to stderr. */
  stderr?: boolean;
  /** Format of the stderr copy (default pretty). */
  stderrFormat?: LogFormat;
  /** Size-based rotation of the file (defaults: LogEnv, then DEFAULT_LOG_ROTATION). */
  rotation?: LogRotation;
  /** Longest message logged in full (default DEFAULT_MAX_MESSAGE_CHARS). */
  maxMessageChars?: number;
}

export interface LogRotation {
  /** The file is rotated before it would grow beyond this; 0 never rotates. */
  maxBytes: number;
  /** Rotated files kept (`.1` newest); disk use stays below (keep + 1) × maxBytes. */
  keep: number;
}

export const DEFAULT_LOG_ROTATION: LogRotation = { maxBytes: 10 * 1024 * 1024, keep: 5 };
export const DEFAULT_MAX_MESSAGE_CHARS = 4096;
/** Lines waiting for a slow disk or pipe, at most; beyond it they are dropped and counted. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** Environment variables that configure rotation for every management process at once. */
export const LogEnv = {
  maxBytes: "ZMGMT_LOG_MAX_BYTES",
  keep: "ZMGMT_LOG_KEEP",
} as const;

export function rotationFromEnv(env: NodeJS.ProcessEnv = process.env): LogRotation {
  const num = (v: string | undefined, fallback: number): number => {
    if (v === undefined || v.trim() === "") return fallback;
    const n = Number(v);
    return Number.isSafeInteger(n) && n >= 0 ? n : fallback;
  };
  return {
    maxBytes: num(env[LogEnv.maxBytes], DEFAULT_LOG_ROTATION.maxBytes),
    keep: num(env[LogEnv.keep], DEFAULT_LOG_ROTATION.keep),
  };
}

/**
 * At most `max` characters of a value a client or peer chose (a reqid, a name, a payload
 * excerpt), marked when cut, for quoting in log lines and error messages.
 */
export function clip(value: string, max = 256): string {
  return value.length <= max ? value : `${value.slice(0, max)}… [${value.length - max} more characters]`;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Writes queued lines synchronously; call before exiting. */
  flush(): void;
}

export function createLogger(options: LoggerOptions): Logger {
  const sinks: Array<{ sink: LogSink; pretty: boolean }> = [];
  if (options.directory) {
    ensurePrivateDir(options.directory);
    const file = join(options.directory, `management-${options.node}.log`);
    const rotation = options.rotation ?? rotationFromEnv();
    const notice = (message: string): string =>
      `${JSON.stringify({ node: options.node, level: "WARNING", role: options.role, ts: Date.now() / 1000, message })}\n`;
    sinks.push({ sink: new LogSink({ file, options: { ...rotation, maxQueuedBytes: MAX_QUEUED_BYTES } }, notice), pretty: false });
  }
  if (options.stderr) {
    const pretty = (options.stderrFormat ?? processStderrFormat) !== "json";
    const notice = (message: string): string => {
      const json = JSON.stringify({ node: options.node, level: "WARNING", role: options.role, ts: Date.now() / 1000, message });
      return pretty ? formatPretty(json) : `${json}\n`;
    };
    sinks.push({ sink: new LogSink({ fd: 2, maxQueuedBytes: MAX_QUEUED_BYTES }, notice), pretty });
  }
  if (sinks.length === 0) return silentLogger();

  const logger: PinoLogger = pino(
    {
      level: PINO_LEVEL[options.level ?? "INFO"],
      base: null,
      messageKey: "message",
      // Upstream's `ts` is a Zeek time: seconds since the epoch as a number.
      timestamp: () => `,"ts":${(Date.now() / 1000).toFixed(6)}`,
      formatters: {
        level: (label) => ({ node: options.node, level: LEVEL_NAME[label] ?? label.toUpperCase(), role: options.role }),
      },
    },
    {
      write(line: string): void {
        for (const { sink, pretty } of sinks) sink.write(pretty ? formatPretty(line) : line);
      },
    },
  );
  const max = options.maxMessageChars ?? DEFAULT_MAX_MESSAGE_CHARS;
  return {
    debug: (m) => logger.debug(clip(m, max)),
    info: (m) => logger.info(clip(m, max)),
    warning: (m) => logger.warn(clip(m, max)),
    error: (m) => logger.error(clip(m, max)),
    flush: () => {
      for (const { sink } of sinks) sink.flushSync();
    },
  };
}

/** One readable line per entry: `2026-11-29T10:00:00.000Z INFO    controller c1: message`. */
export function formatPretty(jsonLine: string): string {
  let entry: { ts?: number; node?: string; level?: string; role?: string; message?: string };
  try {
    entry = JSON.parse(jsonLine) as typeof entry;
  } catch {
    return jsonLine.endsWith("\n") ? jsonLine : `${jsonLine}\n`;
  }
  const time = typeof entry.ts === "number" ? new Date(entry.ts * 1000).toISOString() : "-";
  const level = (entry.level ?? "INFO").padEnd(7);
  const who = `${(entry.role ?? "").toLowerCase()} ${entry.node ?? ""}`.trim();
  // A message with a line break would read as two entries: show control characters escaped.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const message = (entry.message ?? "").replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `${time} ${level} ${who}: ${message}\n`;
}

export function silentLogger(): Logger {
  const nop = (): void => undefined;
  return { debug: nop, info: nop, warning: nop, error: nop, flush: nop };
}
