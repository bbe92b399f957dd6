// Capture of a node's stdout and stderr: the last lines of each run in memory (for crash
// reports) and every line appended to a file per stream, rotated by size.

import * as fs from "node:fs";
import { StringDecoder } from "node:string_decoder";
import type { ExitInfo, StopReason } from "./process-types.js";

// A line without a newline still has to be bounded: a child writing megabytes without one
// would otherwise grow the pending buffer without limit.
const MAX_LINE_CHARS = 64 * 1024;

/**
 * A node's stdout or stderr file. Runs append to it, so the output of a run that crashed is
 * still there after its revival; past `maxBytes` the file moves to `<name>.1` (older ones to
 * `.2` … up to `keep`), which bounds the disk a node can fill.
 */
export class OutputFile {
  private size: number;

  private constructor(
    private readonly file: string,
    private fd: number,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    this.size = fs.fstatSync(fd).size;
  }

  static open(file: string, maxBytes: number, keep: number): OutputFile {
    const fd = fs.openSync(file, "a", 0o600);
    // The mode given to open() only applies to new files; an older file keeps its mode otherwise.
    fs.fchmodSync(fd, 0o600);
    return new OutputFile(file, fd, maxBytes, keep);
  }

  /**
   * Writes whole lines, rotating between them, so no file grows past `maxBytes` unless a
   * single line does. Synchronous, so the file is complete and ordered whenever someone reads it.
   */
  write(text: string): void {
    let batch = "";
    let batchBytes = 0;
    for (const line of text.split(/(?<=\n)/)) {
      const bytes = Buffer.byteLength(line);
      if (this.size + batchBytes > 0 && this.size + batchBytes + bytes > this.maxBytes) {
        if (batch) fs.writeSync(this.fd, batch);
        this.size += batchBytes;
        if (this.size > 0) this.rotate();
        batch = "";
        batchBytes = 0;
      }
      batch += line;
      batchBytes += bytes;
    }
    if (batch) fs.writeSync(this.fd, batch);
    this.size += batchBytes;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already unusable; nothing left to flush
    }
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    if (this.keep > 0) {
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      }
      fs.renameSync(this.file, `${this.file}.1`);
    } else {
      fs.truncateSync(this.file);
    }
    this.fd = fs.openSync(this.file, "a", 0o600);
    this.size = 0;
  }
}

/** Last lines of one stream of one run, mirrored line by line into a file. */
export class LineCapture {
  private readonly ring: string[] = [];
  private next = 0;
  private pending = "";
  private readonly decoder = new StringDecoder("utf8");
  private lines = 0;

  constructor(
    private readonly max: number,
    private file: OutputFile | undefined,
    private readonly onWriteError: (err: Error) => void,
  ) {}

  get captured(): number {
    return this.lines;
  }

  push(chunk: Buffer | string): void {
    const text = this.pending + (typeof chunk === "string" ? chunk : this.decoder.write(chunk));
    const parts = text.split("\n");
    this.pending = parts.pop() ?? "";
    if (this.pending.length > MAX_LINE_CHARS) {
      parts.push(this.pending);
      this.pending = "";
    }
    this.record(parts);
  }

  /** Flushes a last line without a newline, appends `trailer` to the file only, and closes it. */
  end(trailer?: string): void {
    const rest = this.pending + this.decoder.end();
    this.pending = "";
    if (rest) this.record([rest]);
    if (trailer !== undefined) this.writeFile(trailer + "\n");
    this.file?.close();
    this.file = undefined;
  }

  text(): string {
    if (this.ring.length < this.max) return this.ring.join("\n");
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)].join("\n");
  }

  private record(parts: string[]): void {
    // Upstream drops empty lines before they reach the files and the buffers.
    const lines = parts.filter((l) => l.length > 0);
    if (lines.length === 0) return;
    this.lines += lines.length;
    for (const line of lines) {
      if (this.ring.length < this.max) {
        this.ring.push(line);
      } else if (this.max > 0) {
        this.ring[this.next] = line;
        this.next = (this.next + 1) % this.max;
      }
    }
    this.writeFile(lines.join("\n") + "\n");
  }

  private writeFile(text: string): void {
    if (this.file === undefined) return;
    try {
      this.file.write(text);
    } catch (err) {
      this.file.close();
      this.file = undefined;
      this.onWriteError(err as Error);
    }
  }
}

/** The line that closes a run in its output files, so the files read as a history of runs. */
export function runTrailer(pid: number, exit: ExitInfo, stopReason: StopReason | undefined): string {
  const how =
    exit.error !== undefined
      ? `could not be started: ${exit.error}`
      : `pid ${pid} ${exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? "?"}`}${stopReason ? ` (${stopReason})` : ""}`;
  return `--- ${new Date(exit.at).toISOString()} ${how} ---`;
}
