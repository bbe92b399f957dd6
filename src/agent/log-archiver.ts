// Archival of the logs Zeek loggers rotate. As in upstream's supervised clusters, a logger
// rotates into ./log-queue under names that carry the log's path and its open and close
// times (`conn__2026-11-29-10-00-00__2026-11-29-11-00-00__.log`, see zeek/zmgmt/node.zeek);
// the agent moves each finished file into the archive, compressed, one folder per day:
// `<archive>/2026-11-29/conn.10:00:00-11:00:00.log.gz` (zeek-archiver's layout). A log
// suffix from the rotation metadata (several loggers) is kept: `conn.10:00:00-11:00:00-logger-2.log.gz`.

import { createReadStream, createWriteStream, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

const TIME = String.raw`(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})`;
const QUEUED = new RegExp(String.raw`^([A-Za-z0-9][\w.-]*?)__${TIME}__${TIME}__(?:(.*)__)?\.log$`);

export interface QueuedLog {
  path: string;
  /** YYYY-MM-DD of the open time: the archive folder. */
  day: string;
  /** Archive file name within that folder. */
  archiveName: string;
}

/** How a rotated file's name maps into the archive; undefined for names that are not rotated logs. */
export function archivePlacement(fileName: string): QueuedLog | undefined {
  const m = QUEUED.exec(fileName);
  if (!m) return undefined;
  const [, path, oy, omo, od, oh, omi, os, , , , ch, cmi, cs, metadata] = m;
  const suffix = /(?:^|,)log_suffix=([^,]+)/.exec(metadata ?? "")?.[1];
  return {
    path: path!,
    day: `${oy}-${omo}-${od}`,
    archiveName: `${path}.${oh}:${omi}:${os}-${ch}:${cmi}:${cs}${suffix ? `-${suffix}` : ""}.log.gz`,
  };
}

/**
 * Moves every rotated log in `queueDir` into `archiveDir`. Returns the archive paths
 * written; a file that cannot be archived stays queued for the next pass.
 */
export async function archiveQueuedLogs(queueDir: string, archiveDir: string, onError: (msg: string) => void): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(queueDir);
  } catch {
    return [];
  }
  const written: string[] = [];
  for (const name of names.sort()) {
    const placement = archivePlacement(name);
    if (!placement) continue;
    const folder = join(archiveDir, placement.day);
    const target = join(folder, placement.archiveName);
    const partial = `${target}.partial`;
    try {
      mkdirSync(folder, { recursive: true });
      await pipeline(createReadStream(join(queueDir, name)), createGzip(), createWriteStream(partial));
      renameSync(partial, target);
      rmSync(join(queueDir, name));
      written.push(target);
    } catch (err) {
      rmSync(partial, { force: true });
      onError(`cannot archive ${join(queueDir, name)}: ${(err as Error).message}`);
    }
  }
  return written;
}
