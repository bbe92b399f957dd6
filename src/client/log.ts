// The client's stderr log, in zeek-client's layout (`level: message`, or timestamped with
// client.rich_logging_format) and with its verbosity ladder, so scripts that grep zeek-client's
// stderr keep working.

export type LogLevel = "error" | "warning" | "info" | "debug";

export interface LogRecord {
  level: LogLevel;
  message: string;
}

const RANK: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3 };

export interface LoggerOptions {
  /** client.verbosity: 0 errors, 1 +warnings, 2 +info, 3 +debug, 4 also frame traces. */
  verbosity?: number;
  /** -q: nothing at all. */
  quiet?: boolean;
  rich?: boolean;
  write?: (text: string) => void;
  now?: () => Date;
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

export class Logger {
  readonly verbosity: number;
  readonly quiet: boolean;
  private readonly rich: boolean;
  private readonly write: (text: string) => void;
  private readonly now: () => Date;
  /** Called before each line, e.g. to wipe a progress spinner off the terminal line. */
  beforeWrite: (() => void) | undefined;

  constructor(options: LoggerOptions = {}) {
    this.verbosity = options.verbosity ?? 0;
    this.quiet = options.quiet ?? false;
    this.rich = options.rich ?? false;
    this.write = options.write ?? ((text) => process.stderr.write(text));
    this.now = options.now ?? (() => new Date());
  }

  enabled(level: LogLevel): boolean {
    return !this.quiet && RANK[level] <= Math.max(0, this.verbosity);
  }

  /** Whether websocket frames are traced (verbosity 4 and up). */
  get tracing(): boolean {
    return !this.quiet && this.verbosity >= 4;
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.beforeWrite?.();
    if (this.rich) {
      const d = this.now();
      const stamp = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
      this.write(`${stamp} ${level.padEnd(8)} ${message}\n`);
    } else {
      this.write(`${level}: ${message}\n`);
    }
  }

  error(message: string): void {
    this.log("error", message);
  }

  warning(message: string): void {
    this.log("warning", message);
  }

  info(message: string): void {
    this.log("info", message);
  }

  debug(message: string): void {
    this.log("debug", message);
  }

  all(records: readonly LogRecord[]): void {
    for (const r of records) this.log(r.level, r.message);
  }
}
