// `zmgmt import-zeekctl`: a zeekctl cluster definition (node.cfg, optionally networks.cfg)
// turned into the cluster INI zeek-client and zmgmt read. zeekctl reads node.cfg with
// Python's configparser, so we read it with our configparser twin and it means the same.
// What zmgmt cannot express is never dropped silently: it becomes a warning.

import type { Configuration, Instance, Node } from "../management/types.js";
import { validateConfiguration } from "../management/validation.js";
import { compareCodePoints, parseClusterConfig, renderClusterConfigIni } from "./cluster-config.js";
import { ConfigParser, DEFAULT_SECTION, IniError, parsePyInt, pySplitWhitespace, pyStrip } from "./ini.js";
import { networksScriptText, parseNetworks } from "./zeekctl-networks.js";
import {
  AF_PACKET_KEYS,
  ImportError,
  KNOWN_KEYS,
  LB_METHODS,
  NODE_TYPES,
  RESERVED_SECTION,
  describeSyntaxError,
  indexLines,
  isLocalHost,
  parseCpuList,
  parseEnvVars,
  type NodeType,
} from "./zeekctl-node-cfg.js";

export interface ZeekctlImportOptions {
  /** Name of node.cfg in messages. */
  nodeCfgName?: string;
  /** networks.cfg's text, when there is one. */
  networksCfg?: string;
  networksCfgName?: string;
  /** Instance for nodes on localhost/loopback; `zmgmt agent` names itself `agent-<hostname>`. */
  localInstance?: string;
  /**
   * Path of a Zeek script holding Site::local_nets (the `networksScript` of the result, saved
   * by the caller). When set, every node loads it, together with `local`.
   */
  networksScriptPath?: string;
  /** Configuration id; only used while checking the output reads back. */
  makeId?: () => string;
}

export interface ZeekctlImportResult {
  /** The cluster INI; absent when there are errors. */
  ini?: string;
  config?: Configuration;
  /** `FILE:LINE: message` where a line is known. */
  errors: string[];
  warnings: string[];
  /** A Zeek script setting Site::local_nets from networks.cfg (when given and valid). */
  networksScript?: string;
}

/** Values go through configparser interpolation when read back, so `%` must be doubled. */
function escapePercent(node: Node): Node {
  const esc = (s: string): string => s.replace(/%/g, "%%");
  const out: Node = { ...node, instance: esc(node.instance), env: {} };
  for (const [k, v] of Object.entries(node.env)) out.env[k] = esc(v);
  if (node.interface !== undefined) out.interface = esc(node.interface);
  if (node.scripts !== undefined) out.scripts = node.scripts.map(esc);
  return out;
}

function sameNode(a: Node, b: Node): string | undefined {
  if (a.instance !== b.instance) return "instance";
  if (a.role !== b.role) return "role";
  if (a.interface !== b.interface) return "interface";
  if (a.cpuAffinity !== b.cpuAffinity) return "cpu_affinity";
  if (JSON.stringify([...(a.scripts ?? [])].sort(compareCodePoints)) !== JSON.stringify([...(b.scripts ?? [])].sort(compareCodePoints))) {
    return "scripts";
  }
  const ak = Object.keys(a.env).sort(compareCodePoints);
  const bk = Object.keys(b.env).sort(compareCodePoints);
  if (JSON.stringify(ak) !== JSON.stringify(bk) || ak.some((k) => a.env[k] !== b.env[k])) return "env";
  return undefined;
}

/** Converts zeekctl's node.cfg (and networks.cfg) into a zmgmt cluster INI. Never throws on bad input. */
export function importZeekctl(nodeCfg: string, options: ZeekctlImportOptions = {}): ZeekctlImportResult {
  const file = options.nodeCfgName ?? "node.cfg";
  const errors: string[] = [];
  const warnings: string[] = [];
  const index = indexLines(nodeCfg);

  const sectionLine = (section: string): string => {
    const line = index.section.get(section);
    return line === undefined ? file : `${file}:${line}`;
  };
  const optionLine = (section: string, option: string): string => {
    const line = index.option.get(section)?.get(option) ?? index.option.get(DEFAULT_SECTION)?.get(option);
    return line === undefined ? sectionLine(section) : `${file}:${line}`;
  };

  let networksScript: string | undefined;
  if (options.networksCfg !== undefined) {
    const netName = options.networksCfgName ?? "networks.cfg";
    const nets = parseNetworks(options.networksCfg, netName, errors);
    if (errors.length === 0) {
      if (nets.length === 0) warnings.push(`${netName}: no networks listed; Site::local_nets stays empty`);
      else networksScript = networksScriptText(nets, netName);
    }
  }

  const cfp = new ConfigParser();
  try {
    cfp.readString(nodeCfg, file);
  } catch (err) {
    if (!(err instanceof IniError)) throw err;
    errors.push(describeSyntaxError(err, file));
    return { errors, warnings };
  }

  const sections = cfp.sections();
  if (sections.length === 0) {
    errors.push(`${file}: no nodes defined`);
    return { errors, warnings };
  }

  const nodes: Node[] = [];
  const instances = new Map<string, Instance>();
  const hostOfInstance = new Map<string, string>();
  const localInstance = options.localInstance ?? "agent-localhost";
  const types = new Map<string, NodeType>();
  /** The node.cfg section each node comes from. */
  const origin = new Map<string, string>();

  const instanceFor = (section: string, host: string): string => {
    let name: string;
    if (isLocalHost(host)) {
      name = localInstance;
    } else {
      // Instance names become agent, directory and topic names.
      // Host names are case-insensitive; one host must not become two instances.
      name = `agent-${host.toLowerCase().replace(/[^a-z0-9._-]/g, "-")}`;
      if (name !== `agent-${host.toLowerCase()}`)
        warnings.push(`${optionLine(section, "host")}: host "${host}" becomes instance "${name}"`);
    }
    const known = hostOfInstance.get(name);
    if (known !== undefined && known.toLowerCase() !== host.toLowerCase() && !(isLocalHost(known) && isLocalHost(host))) {
      throw new ImportError(`hosts "${known}" and "${host}" would both become instance "${name}"`);
    }
    if (known === undefined) {
      hostOfInstance.set(name, host);
      instances.set(name, { name, host: "0.0.0.0" });
    }
    return name;
  };

  for (const section of sections) {
    let currentOption: string | undefined;
    try {
      if (section === RESERVED_SECTION) {
        throw new ImportError(
          `a node named "${RESERVED_SECTION}" cannot be expressed: zmgmt's INI uses that section for instances; rename it`,
        );
      }
      let items: Array<[string, string | null]>;
      try {
        items = cfp.items(section);
      } catch (err) {
        if (err instanceof IniError) {
          currentOption = err.option;
          throw new ImportError(err.message);
        }
        throw err;
      }
      const values = new Map<string, string>();
      for (const [rawKey, value] of items) {
        // zeekctl accepts `lb.procs` for `lb_procs`.
        const key = rawKey.replace(/\./g, "_");
        if (!KNOWN_KEYS.has(key)) {
          warnings.push(`${optionLine(section, rawKey)}: [${section}] ignoring "${rawKey}": not a zeekctl node option`);
          continue;
        }
        values.set(key, value ?? "");
      }
      const keyLine = (key: string): string => {
        const raw = items.find(([k]) => k.replace(/\./g, "_") === key)?.[0] ?? key;
        return optionLine(section, raw);
      };
      const fail = (key: string, message: string): never => {
        currentOption = items.find(([k]) => k.replace(/\./g, "_") === key)?.[0] ?? key;
        throw new ImportError(message);
      };

      const typeText = values.get("type") ?? "";
      if (!typeText) throw new ImportError(`node has no type (one of ${NODE_TYPES.join(", ")})`);
      const type = typeText.toLowerCase() as NodeType;
      if (!NODE_TYPES.includes(type)) fail("type", `unknown node type "${typeText}" (one of ${NODE_TYPES.join(", ")})`);
      types.set(section, type);

      const host = values.get("host") ?? "";
      if (!host) throw new ImportError("node has no host");
      const instance = instanceFor(section, host);

      const iface = values.get("interface") || undefined;
      const lbMethod = (values.get("lb_method") ?? "").toLowerCase();
      const lbProcsText = values.get("lb_procs") ?? "";
      let procs = 0;
      if (lbProcsText) {
        if (type !== "worker") fail("lb_procs", `lb_procs is only allowed for workers, not for a ${type}`);
        const n = parsePyInt(lbProcsText);
        if (n === undefined || n < 1n || n > 4096n)
          fail("lb_procs", `lb_procs must be a whole number from 1 to 4096, not "${lbProcsText}"`);
        procs = Number(n);
        if (!lbMethod) {
          warnings.push(
            `${keyLine("lb_procs")}: [${section}] lb_procs without lb_method (zeekctl requires one); the ${procs} workers all read ${iface ?? "no interface"}`,
          );
        }
      } else if (lbMethod) {
        fail("lb_method", "lb_method needs lb_procs (the number of worker processes)");
      }
      if (lbMethod && !LB_METHODS.has(lbMethod)) {
        fail("lb_method", `unknown lb_method "${lbMethod}" (one of ${[...LB_METHODS].join(", ")})`);
      }

      let cpus: number[] = [];
      const pinText = values.get("pin_cpus") ?? "";
      if (pinText) {
        try {
          cpus = parseCpuList(pinText);
        } catch (err) {
          if (err instanceof ImportError) fail("pin_cpus", err.message);
          throw err;
        }
        const wanted = Math.max(procs, 1);
        if (cpus.length < wanted && procs > 0) {
          warnings.push(
            `${keyLine("pin_cpus")}: [${section}] ${procs} processes but ${cpus.length} CPU${cpus.length === 1 ? "" : "s"} in pin_cpus; CPUs are reused in turn as zeekctl does, so some workers share a CPU`,
          );
        } else if (cpus.length > wanted) {
          warnings.push(
            `${keyLine("pin_cpus")}: [${section}] only the first ${wanted} of the ${cpus.length} CPUs in pin_cpus are used (one per process)`,
          );
        }
      }

      let env: Record<string, string> = {};
      const envText = values.get("env_vars") ?? "";
      if (envText) {
        try {
          env = parseEnvVars(envText);
        } catch (err) {
          if (err instanceof ImportError) fail("env_vars", err.message);
          throw err;
        }
      }

      let scripts: string[] | undefined;
      const aux = pySplitWhitespace(values.get("aux_scripts") ?? "");
      if (aux.length > 0) {
        // A node's scripts replace `local`, so it has to be listed to keep zeekctl's meaning.
        scripts = ["local", ...aux];
        warnings.push(
          `${keyLine("aux_scripts")}: [${section}] aux_scripts become the node's scripts, with "local" added because scripts replace it`,
        );
      }
      if (options.networksScriptPath !== undefined && networksScript !== undefined) {
        scripts = [...new Set([...(scripts ?? ["local"]), options.networksScriptPath])];
      }

      if (values.get("zone_id")) {
        warnings.push(`${keyLine("zone_id")}: [${section}] ignoring zone_id: zmgmt instances are not addressed by IPv6 link-local address`);
      }
      for (const key of AF_PACKET_KEYS) {
        if (values.get(key)) {
          const zeekName = `AF_Packet::${key.slice("af_packet_".length)}`;
          warnings.push(
            `${keyLine(key)}: [${section}] ignoring ${key}: zmgmt has no per-node setting for it; redef ${zeekName} in a script the node loads`,
          );
        }
      }

      let role: Node["role"];
      if (type === "standalone") {
        role = "MANAGER";
        warnings.push(
          `${sectionLine(section)}: [${section}] zmgmt has no standalone mode: "${section}" becomes the cluster's only node, a manager${iface ? ` that reads ${iface}` : ""}`,
        );
      } else {
        role = type.toUpperCase() as Node["role"];
      }
      if (type === "worker" && !iface && lbMethod !== "interfaces") {
        warnings.push(`${sectionLine(section)}: [${section}] worker without an interface: it will see no traffic`);
      }
      if (type !== "worker" && type !== "standalone" && iface) {
        warnings.push(
          `${keyLine("interface")}: [${section}] a ${type} with an interface: kept, but Zeek only captures on workers in a cluster`,
        );
      }

      const base = (name: string): Node => {
        const node: Node = { name, instance, role, state: "RUNNING", env: { ...env } };
        if (scripts !== undefined) node.scripts = [...scripts];
        return node;
      };

      if (procs === 0) {
        const node = base(section);
        if (iface !== undefined) node.interface = iface;
        if (cpus.length > 0) node.cpuAffinity = cpus[0]!;
        nodes.push(node);
        if (!origin.has(node.name)) origin.set(node.name, section);
        continue;
      }

      let perProcIfaces: string[] | undefined;
      if (lbMethod === "interfaces") {
        const listed = (values.get("lb_interfaces") ?? "")
          .split(",")
          .map((s) => pyStrip(s))
          .filter((s) => s !== "");
        if (listed.length === 0) fail("lb_method", "lb_method=interfaces needs lb_interfaces (one interface per process)");
        if (listed.length !== procs) {
          fail("lb_interfaces", `lb_interfaces lists ${listed.length} interfaces but lb_procs is ${procs}; they must match`);
        }
        perProcIfaces = listed;
        if (iface) warnings.push(`${keyLine("interface")}: [${section}] interface is replaced by lb_interfaces, as in zeekctl`);
      } else if (values.get("lb_interfaces")) {
        warnings.push(`${keyLine("lb_interfaces")}: [${section}] ignoring lb_interfaces: it only applies to lb_method=interfaces`);
      }

      let procIface = iface;
      if (lbMethod) {
        const where = `${keyLine("lb_method")}: [${section}]`;
        if (lbMethod === "af_packet") {
          // zeekctl's AF_Packet plugin prefixes the interface; Zeek's AF_Packet fans out by
          // default (one fanout group per AF_Packet::fanout_id), so the workers share the load.
          if (iface && !iface.includes("::")) procIface = `af_packet::${iface}`;
          warnings.push(
            `${where} lb_method=af_packet: workers read ${procIface ?? "no interface"} and rely on AF_Packet's default fanout; zeekctl's per-node fanout settings are not carried over`,
          );
        } else if (lbMethod === "pf_ring") {
          warnings.push(
            `${where} lb_method=pf_ring: zmgmt does not set up PF_RING clustering (zeekctl sets PF_RING's environment for each worker); without it every worker sees all traffic of ${iface ?? "its interface"}; add the PF_RING variables to each worker's env`,
          );
        } else if (lbMethod === "myricom") {
          warnings.push(
            `${where} lb_method=myricom: zmgmt does not set up Myricom SNF rings (zeekctl sets SNF_* environment variables); add them to each worker's env or every worker sees all traffic`,
          );
        } else if (lbMethod === "custom") {
          warnings.push(
            `${where} lb_method=custom: load balancing is left to you, as with zeekctl; each worker reads ${iface ?? "no interface"}`,
          );
        }
      }

      for (let i = 1; i <= procs; i++) {
        const node = base(`${section}-${i}`);
        const nodeIface = perProcIfaces ? perProcIfaces[i - 1] : procIface;
        if (nodeIface !== undefined) node.interface = nodeIface;
        if (cpus.length > 0) node.cpuAffinity = cpus[(i - 1) % cpus.length]!;
        nodes.push(node);
        if (!origin.has(node.name)) origin.set(node.name, section);
      }
    } catch (err) {
      if (!(err instanceof ImportError)) throw err;
      const where = currentOption !== undefined ? optionLine(section, currentOption) : sectionLine(section);
      errors.push(`${where}: [${section}] ${err.message}`);
    }
  }

  const seen = new Set<string>();
  for (const node of nodes) {
    if (seen.has(node.name)) {
      errors.push(`${file}: node name "${node.name}" would be used twice (first by [${origin.get(node.name)}]); rename a section`);
    }
    seen.add(node.name);
  }

  const standalone = [...types].filter(([, t]) => t === "standalone").map(([s]) => s);
  if (standalone.length > 0 && types.size > 1) {
    errors.push(`${sectionLine(standalone[0]!)}: [${standalone[0]}] a standalone node cannot be combined with other nodes`);
  }
  if (errors.length > 0) return { errors, warnings };

  const config: Configuration = {
    id: (options.makeId ?? (() => "zeekctl-import"))(),
    instances: [...instances.values()],
    nodes,
  };
  for (const problem of validateConfiguration(config)) errors.push(`${file}: ${problem}`);
  if (errors.length > 0) return { errors, warnings };

  let ini: string;
  try {
    ini = renderClusterConfigIni({ ...config, nodes: config.nodes.map(escapePercent) });
  } catch (err) {
    if (!(err instanceof IniError)) throw err;
    errors.push(`${file}: ${err.message}`);
    return { errors, warnings };
  }

  // Whatever we print must read back as the same cluster, in zeek-client as in zmgmt.
  const reread = parseClusterConfig(ini, { makeId: () => config.id, hostname: "localhost" });
  if (!reread.config) {
    for (const e of reread.errors) errors.push(`${file}: the converted configuration would not read back: ${e}`);
    return { errors, warnings };
  }
  const back = new Map(reread.config.nodes.map((n) => [n.name, n]));
  for (const node of config.nodes) {
    const other = back.get(node.name);
    const diff = other === undefined ? "name" : sameNode(node, other);
    if (diff !== undefined) {
      errors.push(
        `${sectionLine(origin.get(node.name) ?? node.name)}: node "${node.name}": its ${diff} cannot be written so that zeek-client reads it back unchanged (quotes, backslashes or line breaks in a value?)`,
      );
    }
  }
  if (errors.length > 0) return { errors, warnings };

  let header = `# Converted from zeekctl's ${file} by zmgmt import-zeekctl.\n`;
  header += "# Instances have no address: each host runs `zmgmt agent --name <instance>` and dials the controller.\n";
  if (networksScript !== undefined) {
    if (options.networksScriptPath !== undefined) {
      header += `# Every node loads ${options.networksScriptPath} (Site::local_nets from ${options.networksCfgName ?? "networks.cfg"}); it must exist on every host.\n`;
    } else {
      header += `# Site::local_nets from ${options.networksCfgName ?? "networks.cfg"}: zmgmt has no setting for it. Save these lines as a Zeek\n`;
      header += "# script on every host and load it from site/local.zeek (nodes without scripts load `local`):\n";
      for (const line of networksScript.trimEnd().split("\n").slice(1)) header += `#   ${line}\n`;
    }
  }
  const result: ZeekctlImportResult = { ini: header + "\n" + ini, config, errors, warnings };
  if (networksScript !== undefined) result.networksScript = networksScript;
  return result;
}
