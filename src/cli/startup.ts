// What a daemon says when it starts in the foreground: one line on stdout naming what it is,
// where it listens and where its state lives; everything else goes to the management log
// (and, with --log-stderr, to stderr in the --log-format chosen).

import { Option } from "commander";
import { createConnection } from "node:net";
import { loopbackFor } from "../management/hosts.js";
import { LOG_FORMATS, setStderrLogFormat, type LogFormat } from "../management/log.js";

export function logFormatOption(): Option {
  return new Option("--log-format <format>", "format of the management log lines on stderr (with --log-stderr)")
    .choices([...LOG_FORMATS])
    .default("pretty");
}

/** Applies --log-format to every logger this process creates from now on. */
export function applyLogFormat(format: LogFormat | undefined): LogFormat {
  const f = format ?? "pretty";
  setStderrLogFormat(f);
  return f;
}

export function listenUrl(host: string, port: number, tls: boolean): string {
  return `${tls ? "wss" : "ws"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export function printStartupLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * Resolves true once something accepts TCP connections on host:port, false at the deadline.
 * The agent listens in a child of the foreground process, so this is how the foreground
 * learns that it is up.
 */
export async function waitForListener(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const target = loopbackFor(host);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: target, port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
