// Reading zeekctl's node.cfg: the node keys and values zeekctl accepts, where sections and
// options sit in the text (for FILE:LINE messages), and the parsers of its compound values.

import { isIP } from "node:net";
import { IniError, optionxform, parsePyInt, pyRstrip, pyStrip } from "./ini.js";

export const NODE_TYPES = ["manager", "logger", "proxy", "worker", "standalone"] as const;
export type NodeType = (typeof NODE_TYPES)[number];

/** zeekctl's node keys (node.py) that importZeekctl does not handle one by one. */
export const AF_PACKET_KEYS = new Set(["af_packet_fanout_id", "af_packet_fanout_mode", "af_packet_buffer_size"]);
export const KNOWN_KEYS = new Set([
  "type",
  "host",
  "interface",
  "aux_scripts",
  "zone_id",
  "lb_procs",
  "lb_method",
  "lb_interfaces",
  "pin_cpus",
  "env_vars",
  ...AF_PACKET_KEYS,
]);
export const LB_METHODS = new Set(["pf_ring", "myricom", "custom", "interfaces", "af_packet"]);
const LOCAL_HOSTS = new Set(["localhost", "localhost.localdomain", "::1", "ip6-localhost"]);
export const RESERVED_SECTION = "instances";

/** Where sections and options start, for messages: configparser does not keep lines. */
export interface LineIndex {
  section: Map<string, number>;
  option: Map<string, Map<string, number>>;
}

export function indexLines(text: string): LineIndex {
  const index: LineIndex = { section: new Map(), option: new Map() };
  let current: string | undefined;
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const stripped = pyStrip(line);
    if (stripped === "" || stripped.startsWith("#") || stripped.startsWith(";")) continue;
    // Continuation lines are indented; configparser only looks at indentation relative to the
    // option, but an indented line is never a new option in a sane node.cfg.
    if (current !== undefined && pyStrip(line.slice(0, 1)) === "") continue;
    const header = /^\[([\s\S]+)\]/.exec(stripped);
    if (header) {
      current = header[1]!;
      if (!index.section.has(current)) index.section.set(current, i + 1);
      if (!index.option.has(current)) index.option.set(current, new Map());
      continue;
    }
    if (current === undefined) continue;
    const delim = stripped.search(/[=:]/);
    const name = optionxform(pyRstrip(delim < 0 ? stripped : stripped.slice(0, delim)));
    const opts = index.option.get(current)!;
    if (!opts.has(name)) opts.set(name, i + 1);
  }
  return index;
}

export class ImportError extends Error {}

/** configparser's messages name the file and quote lines Python-style; ours lead with FILE:LINE. */
export function describeSyntaxError(err: IniError, file: string): string {
  const where = err.line !== undefined ? `${file}:${err.line}` : file;
  switch (err.code) {
    case "parsing": {
      const more = err.lines.length > 1 ? ` (also line${err.lines.length > 2 ? "s" : ""} ${err.lines.slice(1).join(", ")})` : "";
      return `${where}: expected a [section] header or KEY=VALUE${more}`;
    }
    case "missing-section-header":
      return `${where}: KEY=VALUE before the first [section] header`;
    case "duplicate-section":
      return `${where}: section [${err.section}] is defined twice`;
    case "duplicate-option":
      return `${where}: [${err.section}] ${err.option} is given twice`;
    default:
      return `${where}: ${err.message.split("\n")[0]!.replace(/^While reading from .*?\]: /, "")}`;
  }
}

export function isLocalHost(host: string): boolean {
  const h = host.toLowerCase();
  if (LOCAL_HOSTS.has(h)) return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

/** zeekctl's env_vars: `K=V` pairs separated by commas, the whole value optionally quoted. */
export function parseEnvVars(text: string): Record<string, string> {
  let body = text;
  if (body.length >= 2 && ((body.startsWith('"') && body.endsWith('"')) || (body.startsWith("'") && body.endsWith("'")))) {
    body = body.slice(1, -1);
  }
  const env: Record<string, string> = {};
  if (!body) return env;
  for (const item of body.split(",")) {
    const eq = item.indexOf("=");
    if (eq < 0) throw new ImportError(`env_vars entry "${pyStrip(item)}" has no '=' (expected NAME=VALUE, comma-separated)`);
    const key = pyStrip(item.slice(0, eq));
    if (!key) throw new ImportError(`env_vars entry "${pyStrip(item)}" has no variable name`);
    env[key] = pyStrip(item.slice(eq + 1));
  }
  return env;
}

/** zeekctl's pin_cpus: comma-separated CPU numbers, none negative. */
export function parseCpuList(text: string): number[] {
  return text.split(",").map((part) => {
    const n = parsePyInt(part);
    if (n === undefined || n < 0n || n > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ImportError(`pin_cpus must list CPU numbers (0 or higher) separated by commas, not "${text}"`);
    }
    return Number(n);
  });
}
