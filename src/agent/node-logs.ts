// Reads a node's stdout/stderr files for `zmgmt logs`: the last lines (across the current
// file and its newest rotated generation), or what was appended after a cursor. The files
// are written by the supervisor (see ../supervisor/output-capture.ts): `<stream>` is the
// current one, `<stream>.1` the one before it.

import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { MAX_LOG_BYTES, MAX_LOG_LINES, type LogStream } from "../management/zmgmt-records.js";

export interface LogChunk {
  lines: string[];
  cursor: string;
  truncated: boolean;
}

interface FileState {
  ino: number;
  size: number;
}

async function fileState(file: string): Promise<FileState | undefined> {
  try {
    const s = await stat(file);
    return { ino: s.ino, size: s.size };
  } catch {
    return undefined;
  }
}

async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0);
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function splitLines(buf: Buffer): string[] {
  const text = buf.toString("utf8");
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The cursor names the current file (by inode) and how far into it the reader got. */
function cursorOf(state: FileState | undefined, offset: number): string {
  return `${state?.ino ?? 0}:${offset}`;
}

function parseCursor(cursor: string): { ino: number; offset: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(cursor);
  return m ? { ino: Number(m[1]), offset: Number(m[2]) } : undefined;
}

/** The last `wanted` lines, bounded by MAX_LOG_BYTES, and a cursor at the current end. */
export async function tailLines(directory: string, stream: LogStream, wanted: number): Promise<LogChunk> {
  const file = join(directory, stream);
  const current = await fileState(file);
  const want = Math.min(wanted, MAX_LOG_LINES);
  const end = current?.size ?? 0;
  let lines: string[] = [];
  let truncated = false;
  if (want > 0 && current) {
    const start = Math.max(0, end - MAX_LOG_BYTES);
    lines = splitLines(await readRange(file, start, end));
    // A line cut by the byte bound is not shown in part.
    if (start > 0 && lines.length > 0) {
      lines.shift();
      truncated = lines.length < want;
    }
    if (lines.length < want && start === 0) {
      const older = join(directory, `${stream}.1`);
      const prev = await fileState(older);
      if (prev) {
        const budget = MAX_LOG_BYTES - end;
        const from = Math.max(0, prev.size - budget);
        const before = splitLines(await readRange(older, from, prev.size));
        if (from > 0 && before.length > 0) before.shift();
        lines = [...before, ...lines];
        if (from > 0 && lines.length < want) truncated = true;
      }
    }
    if (lines.length > want) lines = lines.slice(lines.length - want);
  }
  return { lines, cursor: cursorOf(current, end), truncated };
}

/**
 * What was written after `cursor` (complete lines only), at most MAX_LOG_BYTES per call.
 * After a rotation the rest of the old file (now `<stream>.1`) comes first.
 */
export async function linesAfter(directory: string, stream: LogStream, cursor: string): Promise<LogChunk> {
  const file = join(directory, stream);
  const current = await fileState(file);
  const at = parseCursor(cursor);
  if (!current) return { lines: [], cursor: cursorOf(undefined, 0), truncated: false };
  let lines: string[] = [];
  let truncated = false;
  let offset = 0;
  if (at && at.ino === current.ino && at.offset <= current.size) {
    offset = at.offset;
  } else if (at) {
    // Rotated since: finish the previous file if it is still the one the cursor named.
    const older = join(directory, `${stream}.1`);
    const prev = await fileState(older);
    if (prev && prev.ino === at.ino && at.offset <= prev.size) {
      lines = splitLines(await readRange(older, at.offset, Math.min(prev.size, at.offset + MAX_LOG_BYTES)));
    } else {
      truncated = true;
    }
  } else {
    truncated = true;
  }
  const budget = Math.max(0, MAX_LOG_BYTES - Buffer.byteLength(lines.join("\n")));
  const end = Math.min(current.size, offset + budget);
  const chunk = await readRange(file, offset, end);
  // Only whole lines: a line still being written is read next time, complete.
  const lastNewline = chunk.lastIndexOf(0x0a);
  const whole = lastNewline < 0 ? (chunk.length >= MAX_LOG_BYTES ? chunk.length : 0) : lastNewline + 1;
  lines.push(...splitLines(chunk.subarray(0, whole)));
  if (lines.length > MAX_LOG_LINES) {
    lines = lines.slice(lines.length - MAX_LOG_LINES);
    truncated = true;
  }
  return { lines, cursor: cursorOf(current, offset + whole), truncated };
}
