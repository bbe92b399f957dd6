// Human-oriented views for an interactive terminal. They are drawn from the same objects the
// JSON output is made of, so the table and the JSON can never disagree about a result.

import Table from "cli-table3";
import pc from "picocolors";
import { compareCodePoints } from "./cluster-config.js";
import { pyDumps, type PyDict, type PyJson } from "./pyjson.js";

type Colors = ReturnType<typeof pc.createColors>;

export interface TableOptions {
  color?: boolean;
}

export function colorsFor(options: TableOptions): Colors {
  return pc.createColors(options.color ?? false);
}

export function newTable(head: string[], options: TableOptions): Table.Table {
  const color = options.color ?? false;
  return new Table({ head, style: { head: color ? ["cyan"] : [], border: color ? ["grey"] : [] } });
}

function sortedKeys(d: PyDict): string[] {
  return Object.keys(d).sort(compareCodePoints);
}

function cell(v: PyJson | undefined): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  return pyDumps(v, null);
}

export function stateColor(c: Colors, state: string): string {
  switch (state) {
    case "RUNNING":
      return c.green(state);
    case "PENDING":
      return c.yellow(state);
    case "STOPPED":
      return c.dim(state);
    case "FAILED":
    case "CRASHED":
      return c.red(state);
    default:
      return c.magenta(state);
  }
}

function ok(c: Colors, success: boolean): string {
  return success ? c.green("ok") : c.red("failed");
}

/** The `errors` list of a zeek-client result object, one line each. */
function errorLines(c: Colors, errors: PyJson | undefined): string[] {
  if (!Array.isArray(errors)) return [];
  return errors.map((e) => {
    if (typeof e === "string") return `${c.red("error:")} ${e}`;
    const d = e as PyDict;
    const source = d["source"];
    return `${c.red("error:")} ${typeof source === "string" ? `${c.bold(source)}: ` : ""}${cell(d["error"])}`;
  });
}

function finish(parts: Array<string | undefined>): string {
  return parts.filter((p): p is string => p !== undefined && p !== "").join("\n") + "\n";
}

/** get-nodes: one row per node, grouped by instance. */
export function nodesTable(json: PyDict, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const results = (json["results"] ?? {}) as PyDict;
  const table = newTable(["instance", "node", "role", "state", "pid", "port", "metrics port"], options);
  let rows = 0;
  for (const instance of sortedKeys(results)) {
    const nodes = results[instance] as PyDict;
    for (const name of sortedKeys(nodes)) {
      const n = nodes[name] as PyDict;
      const role = n["cluster_role"] ?? n["mgmt_role"];
      table.push([
        instance,
        c.bold(name),
        typeof role === "string" ? role.toLowerCase() : "",
        stateColor(c, cell(n["state"])),
        cell(n["pid"]),
        cell(n["port"]),
        cell(n["metrics_port"]),
      ]);
      rows++;
    }
  }
  return finish([rows > 0 ? table.toString() : c.dim("no nodes"), ...errorLines(c, json["errors"])]);
}

/** get-instances: where each agent is, and who dials whom. */
export function instancesTable(json: PyDict, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const table = newTable(["instance", "host", "port", "connection"], options);
  const names = sortedKeys(json);
  for (const name of names) {
    const inst = json[name] as PyDict;
    const port = inst["port"];
    table.push([
      c.bold(name),
      cell(inst["host"]),
      cell(port),
      port === undefined ? "agent connects to controller" : "controller connects to agent",
    ]);
  }
  return finish([names.length > 0 ? table.toString() : c.dim("no instances")]);
}

/** get-id-value: each node's value in compact JSON. */
export function idValueTable(json: PyDict, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const results = (json["results"] ?? {}) as PyDict;
  const table = newTable(["node", "value"], options);
  const names = sortedKeys(results);
  for (const name of names) table.push([c.bold(name), cell(results[name])]);
  return finish([names.length > 0 ? table.toString() : undefined, ...errorLines(c, json["errors"])]);
}

/** restart: whether each node came back. */
export function restartTable(json: PyDict, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const results = (json["results"] ?? {}) as PyDict;
  const table = newTable(["node", "restart"], options);
  const names = sortedKeys(results);
  for (const name of names) table.push([c.bold(name), ok(c, results[name] === true)]);
  return finish([names.length > 0 ? table.toString() : undefined, ...errorLines(c, json["errors"])]);
}

/** deploy / deploy-config: the deployed configuration id, per-node outcome and failed nodes' output. */
export function deployTable(json: PyDict, options: TableOptions = {}): string {
  const c = colorsFor(options);
  const results = (json["results"] ?? {}) as PyDict;
  const nodes = (results["nodes"] ?? {}) as PyDict;
  const parts: Array<string | undefined> = [];
  if (typeof results["id"] === "string") parts.push(`configuration ${c.bold(results["id"])}`);
  const names = sortedKeys(nodes);
  if (names.length > 0) {
    const table = newTable(["node", "instance", "result"], options);
    for (const name of names) {
      const n = nodes[name] as PyDict;
      table.push([c.bold(name), cell(n["instance"]), ok(c, n["success"] === true)]);
    }
    parts.push(table.toString());
  }
  for (const name of names) {
    const n = nodes[name] as PyDict;
    for (const stream of ["stdout", "stderr"] as const) {
      const text = n[stream];
      if (typeof text === "string" && text.trim() !== "") {
        parts.push(c.dim(`--- ${name} ${stream} ---`) + "\n" + text.replace(/\n+$/, ""));
      }
    }
  }
  parts.push(...errorLines(c, json["errors"]));
  return finish(parts);
}
