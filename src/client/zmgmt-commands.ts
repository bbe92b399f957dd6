// zmgmt's own day-2 commands, beyond zeek-client's: logs, status, top, stop and start. They
// speak the zmgmt-only requests (ZmgmtControllerApi), so they need a zmgmt controller.

import type { Command } from "commander";
import { Option } from "commander";
import pc from "picocolors";
import { MAX_LOG_LINES, type NodeLogs } from "../management/zmgmt-records.js";
import type { Context } from "./command-runner.js";
import { ClientFailure, type ControllerConnection } from "./connection.js";
import { resultNodeLogs } from "./controller-client.js";
import {
  errorText,
  outcomeTable,
  outcomeView,
  requestError,
  statusExitCode,
  statusJson,
  statusTable,
  statusView,
  type StatusView,
} from "./zmgmt-render.js";

interface CommandSpec {
  name: string;
  description: string;
  configure?: (cmd: Command) => Command;
  run: (ctx: Context, args: string[], options: Record<string, unknown>) => Promise<number>;
}

const DEFAULT_LOG_LINES = 20;
const FOLLOW_POLL_MS = 500;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new ClientFailure(`-n expects a number of lines, got "${text}"`);
  const n = Number(text);
  if (n > MAX_LOG_LINES) throw new ClientFailure(`-n is at most ${MAX_LOG_LINES} lines, got ${n}`);
  return n;
}

function parseInterval(text: string): number {
  const s = Number(text);
  if (!Number.isFinite(s) || s < 0.2 || s > 3600) throw new ClientFailure(`--interval expects seconds between 0.2 and 3600, got "${text}"`);
  return s * 1000;
}

async function fetchLogs(conn: ControllerConnection, node: string, stream: NodeLogs["stream"], lines: number, cursor?: string) {
  const result = await conn.client.nodeLogs({ node, stream, lines, ...(cursor !== undefined ? { cursor } : {}) });
  if (!result.success) throw new ClientFailure(errorText(requestError(result)));
  const logs = resultNodeLogs(result);
  if (!logs) throw new ClientFailure(`the controller's answer for ${node} carries no log lines`);
  return logs;
}

async function logsCommand(ctx: Context, node: string, options: Record<string, unknown>): Promise<number> {
  const lines = parseCount(typeof options["lines"] === "string" ? options["lines"] : String(DEFAULT_LOG_LINES));
  const stream = options["stderr"] === true ? "stderr" : "stdout";
  const conn = await ctx.connect();
  const print = async (logs: NodeLogs): Promise<void> => {
    if (ctx.json) {
      await ctx.print(JSON.stringify(logs) + "\n");
      return;
    }
    if (logs.truncated && !ctx.quiet) process.stderr.write(pc.dim(`[${node}: earlier output left out]\n`));
    if (logs.lines.length > 0) await ctx.print(logs.lines.join("\n") + "\n");
  };
  let logs = await fetchLogs(conn, node, stream, lines);
  await print(logs);
  if (options["follow"] !== true) return 0;
  if (ctx.human && !ctx.quiet) process.stderr.write(pc.dim(`following ${node} ${stream}; Ctrl-C to stop\n`));
  // Polling with a cursor rather than a subscription: every answer is an ordinary reply, so
  // the hub's reply routing delivers it, and nothing is left behind on the controller when
  // the client goes away. A controller that goes away fails the next poll, which ends this.
  for (;;) {
    const full = logs.truncated;
    if (!full) await sleep(FOLLOW_POLL_MS);
    logs = await fetchLogs(conn, node, stream, 0, logs.cursor);
    await print(logs);
  }
}

async function fetchStatus(conn: ControllerConnection, nodes: string[]): Promise<StatusView> {
  return statusView(await conn.client.nodeStatus(nodes));
}

async function statusCommand(ctx: Context, nodes: string[]): Promise<number> {
  const conn = await ctx.connect();
  const view = await fetchStatus(conn, [...new Set(nodes)]);
  if (ctx.json || !ctx.human) await ctx.print(statusJson(view));
  else await ctx.print(statusTable(view, ctx.tableOptions));
  return statusExitCode(view);
}

async function topCommand(ctx: Context, nodes: string[], intervalMs: number): Promise<number> {
  const conn = await ctx.connect();
  const wanted = [...new Set(nodes)];
  const live = ctx.human && process.stdin.isTTY;
  if (!live) {
    // Not a terminal (or --json): one snapshot per interval, until interrupted.
    for (;;) {
      const view = await fetchStatus(conn, wanted);
      if (ctx.json) await ctx.print(JSON.stringify({ at: new Date().toISOString(), ...view }) + "\n");
      else await ctx.print(`${new Date().toISOString()}\n${statusTable(view, {})}\n`);
      await sleep(intervalMs);
    }
  }
  const out = process.stdout;
  const restore = (): void => {
    out.write("\x1b[?25h\x1b[?1049l");
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
  };
  out.write("\x1b[?1049h\x1b[?25l");
  process.once("exit", restore);
  process.stdin.setRawMode(true);
  process.stdin.resume();
  let quit: (() => void) | undefined;
  const quitting = new Promise<void>((r) => (quit = r));
  process.stdin.on("data", (key: Buffer) => {
    const k = key.toString();
    if (k === "q" || k === "Q" || k === "\x03" || k === "\x1b") quit?.();
  });
  try {
    for (;;) {
      const view = await fetchStatus(conn, wanted);
      const head = `${pc.bold("zmgmt top")}  ${conn.target.remote}  ${new Date().toLocaleTimeString()}  ${pc.dim("q to quit")}`;
      out.write(`\x1b[H\x1b[2J${head}\n${statusTable(view, ctx.tableOptions)}`);
      const stop = await Promise.race([quitting.then(() => true), sleep(intervalMs).then(() => false)]);
      if (stop) return 0;
    }
  } finally {
    restore();
    process.stdin.pause();
  }
}

async function stopStartCommand(ctx: Context, verb: "stop" | "start", nodes: string[]): Promise<number> {
  const conn = await ctx.connect();
  const wanted = [...new Set(nodes)];
  ctx.spinner.start(`${verb === "stop" ? "stopping" : "starting"} ${wanted.length ? wanted.join(", ") : "all nodes"}`);
  let results;
  try {
    results = verb === "stop" ? await conn.client.stopNodes(wanted) : await conn.client.startNodes(wanted);
  } finally {
    ctx.spinner.stop();
  }
  const view = outcomeView(results);
  if (ctx.json || !ctx.human) await ctx.print(JSON.stringify(view, null, 2) + "\n");
  else await ctx.print(outcomeTable(view, verb, ctx.tableOptions));
  return view.errors.length === 0 && view.nodes.every((n) => n.success) ? 0 : 1;
}

export const ZMGMT_COMMANDS: CommandSpec[] = [
  {
    name: "logs",
    description: "show a node's output from any host (stdout; --stderr for stderr), -f to follow it",
    configure: (cmd) =>
      cmd
        .argument("<NODE>", "node name")
        .option("-n, --lines <N>", `how many of the last lines (at most ${MAX_LOG_LINES})`, String(DEFAULT_LOG_LINES))
        .option("-f, --follow", "keep printing new lines until Ctrl-C")
        .option("--stderr", "the node's stderr instead of its stdout"),
    run: (ctx, [node], options) => logsCommand(ctx, node!, options),
  },
  {
    name: "status",
    description: "per node state, pid, uptime, restarts, last exit, CPU and memory; exits non-zero unless every node is RUNNING",
    configure: (cmd) => cmd.argument("[NODES...]", "node names (default: all)"),
    run: (ctx, nodes) => statusCommand(ctx, nodes),
  },
  {
    name: "top",
    description: "status, refreshed live (q or Ctrl-C to quit); one snapshot per interval when not on a terminal",
    configure: (cmd) =>
      cmd
        .argument("[NODES...]", "node names (default: all)")
        .addOption(new Option("--interval <SECS>", "seconds between refreshes").default("2")),
    run: (ctx, nodes, options) => topCommand(ctx, nodes, parseInterval(String(options["interval"]))),
  },
  {
    name: "stop",
    description: "stop nodes (default: all) without a redeploy; they stay STOPPED until started, restarted or redeployed",
    configure: (cmd) => cmd.argument("[NODES...]", "node names"),
    run: (ctx, nodes) => stopStartCommand(ctx, "stop", nodes),
  },
  {
    name: "start",
    description: "start stopped nodes (default: all stopped nodes)",
    configure: (cmd) => cmd.argument("[NODES...]", "node names"),
    run: (ctx, nodes) => stopStartCommand(ctx, "start", nodes),
  },
];
