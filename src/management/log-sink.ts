// Where management log lines go: a file rotated by size, or a descriptor (stderr). Lines
// are queued and written by libuv's thread pool, one write at a time, so a slow disk, a
// full disk or a stderr pipe nobody reads never stalls the event loop; the queue is
// bounded, and what does not fit is counted and reported once writing works again.

import { close, fstat, open, openSync, rename, unlink, write, writeSync } from "node:fs";
import { promisify } from "node:util";
import { PRIVATE_FILE_MODE } from "./private-files.js";

const writeAsync = promisify(write);
const openAsync = promisify(open);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);
const renameAsync = promisify(rename);
const unlinkAsync = promisify(unlink);

export interface FileSinkOptions {
  /** Rotate once the file would grow beyond this many bytes; 0 never rotates. */
  maxBytes: number;
  /** How many rotated files (`<file>.1` newest … `<file>.<keep>`) are kept. */
  keep: number;
  /** Bytes queued at most while writes lag behind; later lines are dropped and counted. */
  maxQueuedBytes: number;
}

export type SinkTarget = { file: string; options: FileSinkOptions } | { fd: number; maxQueuedBytes: number };

/** Renders the sink's own notice (lines dropped) in the format of the lines around it. */
export type NoticeFormat = (message: string) => string;

export class LogSink {
  private queue: string[] = [];
  private queuedBytes = 0;
  private writing = false;
  private dropped = 0;
  private lastError: string | undefined;
  private fd: number | undefined;
  private size = 0;

  constructor(
    private readonly target: SinkTarget,
    private readonly notice: NoticeFormat,
  ) {
    if ("fd" in target) this.fd = target.fd;
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    const limit = "fd" in this.target ? this.target.maxQueuedBytes : this.target.options.maxQueuedBytes;
    if (this.queuedBytes + bytes > limit) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.queuedBytes += bytes;
    if (!this.writing) void this.pump();
  }

  /** Writes what is queued synchronously, for the last lines before an exit; never throws. */
  flushSync(): void {
    const { chunk } = this.take();
    if (chunk === "") return;
    try {
      if (this.fd === undefined && "file" in this.target) this.fd = openSync(this.target.file, "a", PRIVATE_FILE_MODE);
      if (this.fd !== undefined) writeSync(this.fd, chunk);
    } catch {
      // nowhere left to report it
    }
  }

  /** Resolves once everything queued so far is written (or dropped). */
  async drained(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
  }

  /** Queued lines (all, or about `limit` bytes of them but at least one) plus any drop notice. */
  private take(limit = Infinity): { chunk: string; lines: number } {
    let lines = this.queue.length;
    let bytes = 0;
    if (limit !== Infinity) {
      lines = 0;
      while (lines < this.queue.length && (lines === 0 || bytes + Buffer.byteLength(this.queue[lines]!) <= limit)) {
        bytes += Buffer.byteLength(this.queue[lines]!);
        lines++;
      }
    }
    const taken = this.queue.splice(0, lines);
    let chunk = taken.join("");
    this.queuedBytes = Math.max(0, this.queuedBytes - Buffer.byteLength(chunk));
    if (this.dropped > 0) {
      const why = this.lastError ? ` (${this.lastError})` : " (writing fell behind)";
      chunk = this.notice(`${this.dropped} log line(s) dropped${why}`) + chunk;
      this.dropped = 0;
      this.lastError = undefined;
    }
    return { chunk, lines };
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        // Chunks no larger than a file may grow, so rotation keeps every file within bounds.
        const maxBytes = "file" in this.target ? this.target.options.maxBytes : 0;
        const { chunk, lines } = this.take(maxBytes > 0 ? maxBytes : Infinity);
        try {
          await this.writeChunk(Buffer.from(chunk));
        } catch (err) {
          // A full or failing disk loses these lines, not the process; the count shows up
          // in the file once writing works again.
          this.dropped += lines;
          this.lastError = (err as Error).message;
          if ("file" in this.target) await this.closeFile();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async writeChunk(buf: Buffer): Promise<void> {
    if ("file" in this.target) {
      const { maxBytes } = this.target.options;
      if (this.fd !== undefined && maxBytes > 0 && this.size > 0 && this.size + buf.length > maxBytes) await this.rotate();
      if (this.fd === undefined) {
        this.fd = await openAsync(this.target.file, "a", PRIVATE_FILE_MODE);
        this.size = (await fstatAsync(this.fd)).size;
      }
    }
    let offset = 0;
    while (offset < buf.length) {
      try {
        const { bytesWritten } = await writeAsync(this.fd!, buf, offset, buf.length - offset);
        offset += bytesWritten;
        this.size += bytesWritten;
      } catch (err) {
        // A non-blocking pipe that is full: wait for the reader rather than spin.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private async rotate(): Promise<void> {
    if (!("file" in this.target)) return;
    const { file, options } = this.target;
    await this.closeFile();
    for (let i = options.keep - 1; i >= 1; i--) await renameAsync(`${file}.${i}`, `${file}.${i + 1}`).catch(() => undefined);
    if (options.keep > 0) await renameAsync(file, `${file}.1`).catch(() => undefined);
    else await unlinkAsync(file).catch(() => undefined);
    this.size = 0;
  }

  private async closeFile(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await closeAsync(fd).catch(() => undefined);
  }
}
