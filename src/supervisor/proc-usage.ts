// CPU and memory of node processes, read from /proc (Linux). CPU use is a rate, so it needs
// two readings: the previous reading of the same pid when there is a recent one, otherwise
// a second reading after a short pause.

import { readFile } from "node:fs/promises";
import type { ProcessUsage } from "./api.js";

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux ABI Node runs on. */
const CLOCK_TICKS_PER_SEC = 100;
/** Shortest interval a CPU rate is computed over. */
const MIN_INTERVAL_MS = 250;
/** A reading older than this says little about the present; sample afresh. */
const MAX_AGE_MS = 60_000;

interface Reading {
  ticks: number;
  at: number;
}

async function readTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
  } catch {
    return undefined;
  }
}

async function readRssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return undefined;
  }
}

export class UsageSampler {
  private readonly last = new Map<number, Reading>();

  /** Usage of each live process; processes that vanished meanwhile are left out. */
  async sample(targets: Array<{ name: string; pid: number }>): Promise<ProcessUsage[]> {
    if (targets.length === 0) return [];
    const now = Date.now();
    const fresh = targets.filter((t) => {
      const prev = this.last.get(t.pid);
      return !prev || now - prev.at > MAX_AGE_MS;
    });
    if (fresh.length > 0) {
      await Promise.all(fresh.map(async (t) => this.remember(t.pid, await readTicks(t.pid), Date.now())));
      await new Promise((r) => setTimeout(r, MIN_INTERVAL_MS));
    } else {
      const oldest = Math.min(...targets.map((t) => this.last.get(t.pid)?.at ?? now));
      const wait = MIN_INTERVAL_MS - (now - oldest);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const out: ProcessUsage[] = [];
    await Promise.all(
      targets.map(async ({ name, pid }) => {
        const [ticks, rssBytes] = await Promise.all([readTicks(pid), readRssBytes(pid)]);
        const at = Date.now();
        const prev = this.last.get(pid);
        if (ticks === undefined || rssBytes === undefined) {
          this.last.delete(pid);
          return;
        }
        const seconds = prev ? (at - prev.at) / 1000 : 0;
        const cpuPercent = prev && seconds > 0 ? Math.max(0, ((ticks - prev.ticks) / CLOCK_TICKS_PER_SEC / seconds) * 100) : 0;
        this.remember(pid, ticks, at);
        out.push({ name, pid, cpuPercent: Math.round(cpuPercent * 10) / 10, rssBytes });
      }),
    );
    // Readings of processes that are gone would otherwise pile up.
    const live = new Set(targets.map((t) => t.pid));
    for (const pid of this.last.keys()) if (!live.has(pid) && now - (this.last.get(pid)?.at ?? 0) > MAX_AGE_MS) this.last.delete(pid);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private remember(pid: number, ticks: number | undefined, at: number): void {
    if (ticks === undefined) this.last.delete(pid);
    else this.last.set(pid, { ticks, at });
  }
}
