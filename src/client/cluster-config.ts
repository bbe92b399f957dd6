// The cluster configuration INI that `stage-config`/`deploy-config` read and `get-config`
// writes, with zeek-client's rules and messages, so the same file is accepted or rejected
// (and reported) the same way by both clients.

import { isIP, isIPv6 } from "node:net";
import { randomUUID } from "node:crypto";
import { hostname as osHostname } from "node:os";
import { CLUSTER_ROLES, type ClusterRole, type Configuration, type Instance, type Node } from "../management/types.js";
import { ConfigParser, IniError, parsePyInt, pyRepr, pyStrip, pySplitWhitespace } from "./ini.js";
import { ShlexError, shlexSplit } from "../management/shlex.js";

export interface ParseClusterConfigOptions {
  /** Name used in INI syntax errors; zeek-client says `<stdin>` when reading `-`. */
  fileName?: string;
  /** For the default instance `agent-<hostname>` of nodes that name none; this host's name by default. */
  hostname?: string;
  /** Configuration id; a fresh random UUID by default. */
  makeId?: () => string;
}

export interface ParseClusterConfigResult {
  /** Absent when there are errors; zeek-client then sends nothing. */
  config?: Configuration;
  /** Messages as zeek-client logs them at level error (without the `error: ` prefix). */
  errors: string[];
  /** Messages as zeek-client logs them at level warning. */
  warnings: string[];
  /**
   * The line (1-based) each of `errors` is about, where one line is to blame; kept apart so
   * the messages stay zeek-client's.
   */
  errorLines: (number | undefined)[];
}

/**
 * Where each section header and key sits in the text, for pointing errors found after
 * parsing at a line. Keys fold to lower case, as configparser stores them.
 */
function lineIndex(text: string): (section: string, key?: string) => number | undefined {
  const lines = new Map<string, number>();
  let section: string | undefined;
  text.split(/\r\n|\r|\n/).forEach((line, i) => {
    if (/^\s/.test(line) || /^[#;]/.test(line) || line.trim() === "") return;
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      section = header[1]!;
      if (!lines.has(section)) lines.set(section, i + 1);
      return;
    }
    const key = /^([^=:]*?)\s*(?:[=:]|$)/.exec(line)?.[1];
    if (section !== undefined && key) {
      const name = `${section}\u0000${key.toLowerCase()}`;
      if (!lines.has(name)) lines.set(name, i + 1);
    }
  });
  return (sec, key) => (key === undefined ? lines.get(sec) : (lines.get(`${sec}\u0000${key.toLowerCase()}`) ?? lines.get(sec)));
}

const INSTANCES_SECTION = "instances";
const NODE_KEYS = new Set(["instance", "role", "scripts", "port", "interface", "cpu_affinity", "env", "metrics_port"]);

/** Python's default string order (by code point), which zeek-client's sorted() uses. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** What Python's ipaddress.ip_address() accepts as text. */
export function isPythonIpAddress(text: string): boolean {
  const pct = text.indexOf("%");
  if (pct < 0) return isIP(text) !== 0;
  // Python allows any non-empty zone id after an IPv6 address, as long as it has no second `%`.
  const zone = text.slice(pct + 1);
  return zone.length > 0 && !zone.includes("%") && isIPv6(text.slice(0, pct));
}

/** Python's str.strip(chars) for an explicit character set. */
function stripChars(s: string, chars: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && chars.includes(s[start]!)) start++;
  while (end > start && chars.includes(s[end - 1]!)) end--;
  return s.slice(start, end);
}

function lookupRole(text: string): ClusterRole | undefined {
  // zeek-client drops any `Module::` or `Module.` qualification and ignores case.
  const bare = text.split("::").at(-1)!.split(".").at(-1)!.toUpperCase();
  return (CLUSTER_ROLES as readonly string[]).includes(bare) ? (bare as ClusterRole) : undefined;
}

/** A ValueError inside node parsing: ends the whole parse with `invalid node "S" configuration: …`. */
class NodeError extends Error {
  /** The key at fault, when one is. */
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

function parseInstanceSpec(name: string, spec: string): Instance | string {
  const colon = spec.lastIndexOf(":");
  const hostPart = colon < 0 ? "" : spec.slice(0, colon);
  const portPart = colon < 0 ? spec : spec.slice(colon + 1);
  if (hostPart === "" || portPart === "") {
    return `invalid spec for instance "${name}": "${spec}" should be <host>:<port>`;
  }
  // Brackets are what make `[v6addr]:port` work.
  const host = stripChars(hostPart, "[] ");
  const portText = pyStrip(portPart);
  // zeek-client crashes on the next two; we say what is wrong instead.
  if (!isPythonIpAddress(host)) {
    return `invalid spec for instance "${name}": ${pyRepr(host)} does not appear to be an IPv4 or IPv6 address`;
  }
  const port = parsePyInt(portText);
  if (port === undefined) return `invalid spec for instance "${name}": cannot convert port "${portText}" to int`;
  if (port < 1n || port > 65535n) return `invalid spec for instance "${name}": port ${port} outside valid range`;
  return { name, host, listenPort: Number(port) };
}

function parseNode(cfp: ConfigParser, section: string, hostname: string, warnings: string[]): Node {
  const getStr = (...keys: string[]): string | undefined => {
    for (const key of keys) {
      const value = cfp.getOptional(section, key);
      if (value !== undefined && value !== null) return value;
    }
    return undefined;
  };
  const getInt = (key: string): bigint | undefined => {
    const value = getStr(key);
    if (value === undefined) return undefined;
    const n = parsePyInt(value);
    if (n === undefined) throw new NodeError(`cannot convert "${section}.${key}" value "${value}" to int`, key);
    return n;
  };

  let instance = getStr("instance");
  const roleText = getStr("role", "type");
  const state = getStr("state");
  if (state) warnings.push(`ignoring node "${section}" state "${state}" in configuration`);
  const port = getInt("port");
  const iface = getStr("interface");
  const cpuAffinity = getInt("cpu_affinity");
  const metricsPort = getInt("metrics_port");

  if (!instance) instance = `agent-${hostname}`;
  const roleKey = cfp.getOptional(section, "role") ? "role" : "type";
  if (!roleText) throw new NodeError("node requires a role", cfp.hasOption(section, roleKey) ? roleKey : undefined);
  const role = lookupRole(roleText);
  if (role === undefined) throw new NodeError(`role "${roleText}" is invalid`, roleKey);
  if (port !== undefined && (port < 1n || port > 65535n)) throw new NodeError(`port ${port} outside valid range`, "port");
  if (metricsPort !== undefined && (metricsPort < 1n || metricsPort > 65535n)) {
    throw new NodeError(`metrics port ${metricsPort} outside valid range`, "metrics_port");
  }
  if (cpuAffinity !== undefined && (cpuAffinity > BigInt(Number.MAX_SAFE_INTEGER) || cpuAffinity < BigInt(Number.MIN_SAFE_INTEGER))) {
    throw new NodeError(`cpu_affinity ${cpuAffinity} outside valid range`, "cpu_affinity");
  }

  let scripts: string[] | undefined;
  const scriptsText = getStr("scripts");
  if (scriptsText) {
    try {
      scripts = shlexSplit(scriptsText).sort(compareCodePoints);
    } catch (err) {
      // zeek-client lets shlex's own message through here.
      if (err instanceof ShlexError) throw new NodeError(err.message, "scripts");
      throw err;
    }
  }

  const env: Record<string, string> = {};
  const envText = getStr("env");
  if (envText) {
    let items: string[];
    try {
      items = shlexSplit(envText);
    } catch (err) {
      if (err instanceof ShlexError) throw new NodeError(`env value "${envText}" is invalid`, "env");
      throw err;
    }
    for (const item of items) {
      const eq = item.indexOf("=");
      if (eq < 0) throw new NodeError(`env value "${envText}" is invalid`, "env");
      env[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }

  const unexpected = cfp.options(section).filter((key) => !NODE_KEYS.has(key));
  if (unexpected.length > 0) {
    warnings.push(`ignoring unexpected keys: ${[...new Set(unexpected)].sort(compareCodePoints).join(", ")}`);
  }

  const node: Node = { name: section, instance, role, state: "RUNNING", env };
  if (port !== undefined) node.port = Number(port);
  if (scripts !== undefined) node.scripts = scripts;
  if (iface !== undefined) node.interface = iface;
  if (cpuAffinity !== undefined) node.cpuAffinity = Number(cpuAffinity);
  if (metricsPort !== undefined) node.metricsPort = Number(metricsPort);
  return node;
}

type Located = (message: string, section?: string, key?: string) => void;

function buildConfiguration(cfp: ConfigParser, hostname: string, id: string, fail: Located, warnings: string[]): Configuration | undefined {
  const instances: Instance[] = [];
  const nodes: Node[] = [];
  const instanceFree = new Set<string>();
  const sections = cfp.sections();

  for (const section of sections) {
    if (section === INSTANCES_SECTION) {
      for (const [name, spec] of cfp.items(section)) {
        if (!spec) {
          instances.push({ name, host: "0.0.0.0" });
          continue;
        }
        const parsed = parseInstanceSpec(name, spec);
        if (typeof parsed === "string") {
          fail(parsed, section, name);
          return undefined;
        }
        instances.push(parsed);
      }
      continue;
    }

    for (const [key, value] of cfp.items(section, { raw: true })) {
      if (value === null) {
        fail(`config item ${section}.${key} needs a value`, section, key);
        return undefined;
      }
    }
    // Surfaces interpolation errors at the same point zeek-client meets them.
    cfp.items(section);

    // Unreachable with a strict reader (duplicate sections are syntax errors), kept for parity.
    if (nodes.some((n) => n.name === section)) {
      warnings.push(`node "${section}" defined more than once, skipping repeats"`);
      continue;
    }

    try {
      if (!cfp.hasOption(section, "instance")) instanceFree.add(section);
      nodes.push(parseNode(cfp, section, hostname, warnings));
    } catch (err) {
      if (err instanceof NodeError) {
        fail(`invalid node "${section}" configuration: ${err.message}`, section, err.key);
        return undefined;
      }
      throw err;
    }
  }

  if (instanceFree.size > 0) {
    if (instanceFree.size !== nodes.length) {
      fail("either all or no nodes must state instances");
      return undefined;
    }
    if (sections.includes(INSTANCES_SECTION)) {
      fail("omit instances section when skipping instances in node definitions", INSTANCES_SECTION);
      return undefined;
    }
  }

  if (!sections.includes(INSTANCES_SECTION)) {
    // Without the section, the nodes' instance names imply agents that connect to us.
    const names = [...new Set(nodes.map((n) => n.instance))].sort(compareCodePoints);
    instances.push(...names.map((name) => ({ name, host: "0.0.0.0" })));
  }

  return { id, instances, nodes };
}

/** Reads a cluster configuration INI as zeek-client's stage-config does. */
export function parseClusterConfig(text: string, options: ParseClusterConfigOptions = {}): ParseClusterConfigResult {
  const errors: string[] = [];
  const errorLines: (number | undefined)[] = [];
  const warnings: string[] = [];
  const cfp = new ConfigParser({ allowNoValue: true });
  const lineOf = lineIndex(text);
  const fail: Located = (message, section, key) => {
    errors.push(message);
    errorLines.push(section === undefined ? undefined : lineOf(section, key));
  };
  try {
    cfp.readString(text, options.fileName ?? "<string>");
    const hostname = (options.hostname ?? osHostname()) || "localhost";
    const id = (options.makeId ?? randomUUID)();
    const config = buildConfiguration(cfp, hostname, id, fail, warnings);
    return config === undefined ? { errors, warnings, errorLines } : { config, errors, warnings, errorLines };
  } catch (err) {
    if (err instanceof IniError) {
      // The message names its line(s) already.
      errors.push(err.message);
      errorLines.push(undefined);
      return { errors, warnings, errorLines };
    }
    throw err;
  }
}

/** The errors as a person should see them: each with the file and line at fault, where known. */
export function locatedErrors(parsed: ParseClusterConfigResult, fileName: string): string[] {
  return parsed.errors.map((e, i) => {
    const line = parsed.errorLines[i];
    return line === undefined ? e : `${e} (${fileName}, line ${line})`;
  });
}

function byName<T extends { name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => compareCodePoints(a.name, b.name));
}

/**
 * The INI text get-config prints. Throws IniError for a node named DEFAULT, which the format
 * cannot express (zeek-client crashes on it).
 */
export function renderClusterConfigIni(config: Configuration): string {
  // No interpolation check on write: values are printed as they are, like zeek-client does.
  const cfp = new ConfigParser({ allowNoValue: true, interpolation: false });
  if (config.instances.length > 0) {
    cfp.addSection(INSTANCES_SECTION);
    for (const inst of byName(config.instances)) {
      // No brackets around IPv6 hosts: zeek-client writes `name = ::1:2151`.
      cfp.set(INSTANCES_SECTION, inst.name, inst.listenPort !== undefined ? `${inst.host}:${inst.listenPort}` : null);
    }
  }
  for (const node of byName(config.nodes)) {
    if (cfp.hasSection(node.name)) cfp.removeSection(node.name);
    cfp.addSection(node.name);
    cfp.set(node.name, "instance", node.instance);
    cfp.set(node.name, "role", node.role);
    if (node.port !== undefined) cfp.set(node.name, "port", String(node.port));
    if (node.scripts !== undefined && node.scripts.length > 0) {
      cfp.set(node.name, "scripts", [...node.scripts].sort(compareCodePoints).map(quoteIfSpaced).join(" "));
    }
    if (node.interface !== undefined) cfp.set(node.name, "interface", node.interface);
    if (node.cpuAffinity !== undefined) cfp.set(node.name, "cpu_affinity", String(node.cpuAffinity));
    const envKeys = Object.keys(node.env).sort(compareCodePoints);
    if (envKeys.length > 0) {
      cfp.set(node.name, "env", envKeys.map((k) => `${k}=${quoteIfSpaced(node.env[k]!)}`).join(" "));
    }
    if (node.metricsPort !== undefined) cfp.set(node.name, "metrics_port", String(node.metricsPort));
  }
  return cfp.write();
}

export interface ClusterConfigJsonInstance {
  name: string;
  host?: string;
  port?: number;
}

export interface ClusterConfigJsonNode {
  name: string;
  instance: string;
  role: ClusterRole;
  port: number | null;
  scripts: string[] | null;
  options: Array<{ name: string; value: string }> | null;
  interface: string | null;
  cpu_affinity: number | null;
  env: Record<string, string>;
  metrics_port: number | null;
}

export interface ClusterConfigJson {
  id: string;
  instances: ClusterConfigJsonInstance[];
  nodes: ClusterConfigJsonNode[];
}

/** The object `get-config --as-json` prints (the caller sorts keys and indents). */
export function renderClusterConfigJson(config: Configuration): ClusterConfigJson {
  const instances = byName(config.instances).map((inst): ClusterConfigJsonInstance => {
    if (inst.listenPort !== undefined) return { name: inst.name, host: inst.host, port: inst.listenPort };
    if (inst.host !== "0.0.0.0") return { name: inst.name, host: inst.host };
    return { name: inst.name };
  });
  const nodes = byName(config.nodes).map((node): ClusterConfigJsonNode => ({
    name: node.name,
    instance: node.instance,
    role: node.role,
    port: node.port ?? null,
    scripts: node.scripts ? [...node.scripts] : null,
    options: node.options ? node.options.map((o) => ({ name: o.name, value: o.value })) : null,
    interface: node.interface ?? null,
    cpu_affinity: node.cpuAffinity ?? null,
    env: { ...node.env },
    metrics_port: node.metricsPort ?? null,
  }));
  return { id: config.id, instances, nodes };
}

/**
 * How zeek-client writes one script path or env value back into the INI: wrapped in double
 * quotes when whitespace separates at least two parts of it, otherwise unchanged. Nothing is
 * escaped, so quotes or backslashes inside the value do not survive a re-read.
 */
export function quoteIfSpaced(value: string): string {
  return pySplitWhitespace(value).length > 1 ? `"${value}"` : value;
}
