// management.log: one structured JSON line per entry with upstream's columns (ts, node,
// level, role, message), written to `management-<node>.log` in the process's directory,
// and optionally mirrored to stderr for people watching a terminal.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger as PinoLogger } from "pino";

export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";
export type LogRole = "AGENT" | "CONTROLLER" | "NODE" | "SUPERVISOR" | "CLIENT";

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
  if (options.directory) {
    mkdirSync(options.directory, { recursive: true });
    streams.push({
      level: "debug",
      stream: pino.destination({ dest: join(options.directory, `management-${options.node}.log`), sync: true, mkdir: true }),
    });
  }
  if (options.stderr) streams.push({ level: "debug", stream: pino.destination({ dest: 2, sync: true }) });
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
    flush: () => logger.flush(),
  };
}

export function silentLogger(): Logger {
  const nop = (): void => undefined;
  return { debug: nop, info: nop, warning: nop, error: nop, flush: nop };
}
