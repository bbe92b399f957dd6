// management.log: one structured JSON line per entry with upstream's columns (ts, node,
// level, role, message), written to `management-<node>.log` in the process's directory,
// and optionally mirrored to stderr for people watching a terminal (or a journal), either
// as the same JSON lines or as plain text.

import { mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger as PinoLogger } from "pino";

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
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Flushes buffered lines; call before exiting. */
  flush(): void;
}

export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  const buffers: LineBuffer[] = [];
  if (options.directory) {
    mkdirSync(options.directory, { recursive: true });
    buffers.push(new LineBuffer(openSync(join(options.directory, `management-${options.node}.log`), "a")));
  }
  if (options.stderr) {
    const json = (options.stderrFormat ?? processStderrFormat) === "json";
    buffers.push(new LineBuffer(2, json ? undefined : formatPretty));
  }
  for (const stream of buffers) streams.push({ level: "debug", stream });
  if (streams.length === 0) return silentLogger();

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
    pino.multistream(streams),
  );
  return {
    debug: (m) => logger.debug(m),
    info: (m) => logger.info(m),
    warning: (m) => logger.warn(m),
    error: (m) => logger.error(m),
    flush: () => {
      for (const b of buffers) b.flush();
    },
  };
}

const unflushed = new Set<LineBuffer>();
let exitHookInstalled = false;

/**
 * Lines logged in one turn of the event loop, written with one system call at its end (or
 * on flush(), or when the process exits). A fan-out to 1,000 agents logs 2,000 lines; one
 * write each made logging a large share of a request's cost. Writes stay synchronous, so
 * nothing logged is lost to a crash that lets the process exit normally.
 */
class LineBuffer {
  private lines: string[] = [];
  private scheduled = false;

  constructor(
    private readonly fd: number,
    private readonly format?: (line: string) => string,
  ) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const b of [...unflushed]) b.flush();
      });
    }
  }

  write(line: string): void {
    this.lines.push(this.format ? this.format(line) : line);
    if (this.scheduled) return;
    this.scheduled = true;
    unflushed.add(this);
    queueMicrotask(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    unflushed.delete(this);
    if (this.lines.length === 0) return;
    const text = this.lines.join("");
    this.lines = [];
    try {
      writeSync(this.fd, text);
    } catch {
      // A log that cannot be written (disk full, closed stderr) must not stop the daemon.
    }
  }
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
  return `${time} ${level} ${who}: ${entry.message ?? ""}\n`;
}

export function silentLogger(): Logger {
  const nop = (): void => undefined;
  return { debug: nop, info: nop, warning: nop, error: nop, flush: nop };
}
