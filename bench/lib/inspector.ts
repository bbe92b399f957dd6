// A minimal client of the V8 inspector protocol, for looking into a running process that
// was started with --inspect on loopback: forced GC, memory figures, a heap snapshot
// reduced to what takes the space.

import { get } from "node:http";
import WebSocket from "ws";
import { round, waitFor } from "./proc.js";

export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const msg = JSON.parse((data as Buffer).toString()) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: unknown;
      };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
      } else if (msg.method) {
        this.listeners.get(msg.method)?.(msg.params);
      }
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const list = await waitFor(
      () =>
        new Promise<Array<{ webSocketDebuggerUrl: string }> | undefined>((res) => {
          get({ host: "127.0.0.1", port, path: "/json/list" }, (r) => {
            let body = "";
            r.on("data", (d: Buffer) => (body += d.toString()));
            r.on("end", () => {
              try {
                res(JSON.parse(body) as Array<{ webSocketDebuggerUrl: string }>);
              } catch {
                res(undefined);
              }
            });
          }).on("error", () => res(undefined));
        }),
      10_000,
      `inspector on port ${port}`,
    );
    const ws = new WebSocket(list[0]!.webSocketDebuggerUrl, { maxPayload: 1024 * 1024 * 1024 });
    await new Promise<void>((res, rej) => {
      ws.once("open", () => res());
      ws.once("error", rej);
    });
    return new Inspector(ws);
  }

  send<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  on(method: string, listener: (params: unknown) => void): void {
    this.listeners.set(method, listener);
  }

  close(): void {
    this.ws.close();
  }
}

export interface MemoryBreakdown {
  rssMb: number;
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
  arrayBuffersMb: number;
}

/** process.memoryUsage() of the inspected process, right after a full GC. */
export async function memoryAfterGc(insp: Inspector): Promise<MemoryBreakdown> {
  await insp.send("HeapProfiler.collectGarbage");
  const r = await insp.send<{ result: { value: string } }>("Runtime.evaluate", {
    expression: "JSON.stringify(process.memoryUsage())",
    returnByValue: true,
  });
  const m = JSON.parse(r.result.value) as Record<string, number>;
  const mb = (b: number | undefined): number => round((b ?? 0) / 1024 / 1024, 1);
  return {
    rssMb: mb(m["rss"]),
    heapTotalMb: mb(m["heapTotal"]),
    heapUsedMb: mb(m["heapUsed"]),
    externalMb: mb(m["external"]),
    arrayBuffersMb: mb(m["arrayBuffers"]),
  };
}

export interface HeapTypeCost {
  type: string;
  name: string;
  count: number;
  selfMb: number;
  pct: number;
}

/** A heap snapshot, reduced to the object kinds with the largest total own size. */
export async function heapByType(insp: Inspector, topN = 15): Promise<{ totalMb: number; top: HeapTypeCost[] }> {
  const chunks: string[] = [];
  insp.on("HeapProfiler.addHeapSnapshotChunk", (p) => chunks.push((p as { chunk: string }).chunk));
  await insp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  const snap = JSON.parse(chunks.join("")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const fType = fields.indexOf("type");
  const fName = fields.indexOf("name");
  const fSize = fields.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0];
  const agg = new Map<string, { type: string; name: string; count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + fType]!] ?? "?";
    const size = snap.nodes[i + fSize]!;
    total += size;
    // Strings are named by their contents; group them by kind instead.
    const name = type.includes("string") || type === "number" ? `(${type})` : (snap.strings[snap.nodes[i + fName]!] ?? "?").slice(0, 60);
    const key = `${type}\u0000${name}`;
    const e = agg.get(key) ?? { type, name, count: 0, bytes: 0 };
    e.count++;
    e.bytes += size;
    agg.set(key, e);
  }
  const top = [...agg.values()]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, topN)
    .map((e) => ({
      type: e.type,
      name: e.name,
      count: e.count,
      selfMb: round(e.bytes / 1024 / 1024, 2),
      pct: round((e.bytes / total) * 100, 1),
    }));
  return { totalMb: round(total / 1024 / 1024, 1), top };
}
