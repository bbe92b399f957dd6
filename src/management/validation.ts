import type { Configuration, Instance, Node } from "./types.js";

/**
 * Options for {@link validateConfiguration}. Every field is optional; the defaults are
 * listed with each field and collected in {@link DEFAULT_VALIDATION_OPTIONS}.
 */
export interface ValidationOptions {
  /**
   * The controller's Broker listen port. Nodes may not use it. Default 2150; 0 means the
   * controller does not listen on Broker, so there is nothing to collide with.
   */
  controllerPort?: number;
  /**
   * The controller's WebSocket listen port (2149 by default in a running controller).
   * Unset or 0 skips the check.
   */
  controllerWebSocketPort?: number;
  /**
   * Whether the controller will assign Broker ports to MANAGER/LOGGER/PROXY nodes that
   * lack one. When false those nodes must carry explicit ports. Default true.
   */
  autoAssignBrokerPorts?: boolean;
  /** Flag WORKER nodes that have no interface to sniff. Default false. */
  requireWorkerInterface?: boolean;
}

export const DEFAULT_VALIDATION_OPTIONS: Readonly<{
  controllerPort: number;
  controllerWebSocketPort: number | undefined;
  autoAssignBrokerPorts: boolean;
  requireWorkerInterface: boolean;
}> = Object.freeze({
  controllerPort: 2150,
  controllerWebSocketPort: undefined,
  autoAssignBrokerPorts: true,
  requireWorkerInterface: false,
});

/**
 * Orders strings the way Zeek's strcmp does (by UTF-8 bytes), so error lists and node
 * orderings match upstream even for non-ASCII names.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** True for an integer TCP port a process can actually listen on. */
export function isValidPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ROLES_NEEDING_BROKER_PORT = new Set(["MANAGER", "LOGGER", "PROXY"]);
const USABLE_ROLES = new Set(["MANAGER", "LOGGER", "PROXY", "WORKER"]);

/** Upstream writes ports with Zeek's port formatting. */
function fmtPort(p: number): string {
  return `${p}/tcp`;
}

/** Our own messages escape control characters so an error line stays one readable line. */
function show(value: unknown): string {
  const text = String(value);
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function nameProblem(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are what this rejects
  if (/[\u0000-\u001f\u007f]/.test(name)) return "it contains control characters";
  if (/\s/u.test(name)) return "it contains whitespace";
  if (name.includes("/")) return "it contains '/'";
  if (name === "." || name === "..") return "'.' and '..' are not usable as directory names";
  return undefined;
}

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

function asString(value: unknown): string {
  return typeof value === "string" ? value : String(value);
}

/**
 * Checks a configuration before it is staged. Returns every problem found, sorted by text
 * as upstream sends them; an empty list means the config is acceptable.
 *
 * The first group of checks reproduces upstream `config_validate` with its exact messages,
 * because clients and test baselines compare them verbatim. The second group covers
 * mistakes upstream lets through and that only surface later as a stuck or broken deploy.
 * The input may come straight off the wire, so nothing here assumes well-formed values
 * and nothing throws.
 */
export function validateConfiguration(config: Configuration | null | undefined, options: ValidationOptions = {}): string[] {
  const controllerPort = options.controllerPort ?? DEFAULT_VALIDATION_OPTIONS.controllerPort;
  const webSocketPort = options.controllerWebSocketPort;
  const autoAssignBrokerPorts = options.autoAssignBrokerPorts ?? DEFAULT_VALIDATION_OPTIONS.autoAssignBrokerPorts;
  const requireWorkerInterface = options.requireWorkerInterface ?? DEFAULT_VALIDATION_OPTIONS.requireWorkerInterface;

  const instances = asArray<Instance | null | undefined>(config?.instances).filter(
    (i): i is Instance => typeof i === "object" && i !== null,
  );
  const nodes = asArray<Node | null | undefined>(config?.nodes).filter((n): n is Node => typeof n === "object" && n !== null);

  const upstream: string[] = [];
  // Our own checks can hit the same problem from several angles; a set keeps one line each.
  const extra = new Set<string>();

  // --- upstream checks -------------------------------------------------------------

  const instNames = new Set<string>();
  const instDupReported = new Set<string>();
  for (const inst of instances) {
    const name = asString(inst.name);
    if (!instNames.has(name)) {
      instNames.add(name);
    } else if (!instDupReported.has(name)) {
      upstream.push(`multiple instances named '${name}'`);
      instDupReported.add(name);
    }
  }

  const nodeNames = new Set<string>();
  const nodeDupReported = new Set<string>();
  for (const node of nodes) {
    const name = asString(node.name);
    if (!nodeNames.has(name)) {
      nodeNames.add(name);
    } else if (!nodeDupReported.has(name)) {
      upstream.push(`multiple nodes named '${name}'`);
      nodeDupReported.add(name);
    }
  }

  const collisions = [...instNames].filter((n) => nodeNames.has(n)).sort(compareText);
  if (collisions.length > 0) {
    upstream.push(`node and instance names collide: ${collisions.join(", ")}`);
  }

  for (const node of nodes) {
    const instance = asString(node.instance);
    if (!instNames.has(instance)) {
      upstream.push(`node '${asString(node.name)}' has undeclared instance name '${instance}'`);
    }
  }

  // Agent ports per instance name. Duplicate instance names pool their ports, as upstream.
  const agentPorts = new Map<string, Set<number>>();
  for (const inst of instances) {
    if (!isValidPort(inst.listenPort)) continue;
    const name = asString(inst.name);
    let ports = agentPorts.get(name);
    if (!ports) agentPorts.set(name, (ports = new Set()));
    ports.add(inst.listenPort);
  }

  const brokerPortsSeen = new Map<string, Set<number>>();
  const brokerPortsReported = new Map<string, Set<number>>();
  for (const node of nodes) {
    // Out-of-range ports get their own error below; feeding them into the conflict checks
    // would only add confusing follow-up errors.
    if (!isValidPort(node.port)) continue;
    const name = asString(node.name);
    const instance = asString(node.instance);
    const p = node.port;

    if (agentPorts.get(instance)?.has(p)) {
      upstream.push(`node '${name}' port ${fmtPort(p)} conflicts with agent port on instance '${instance}'`);
    }
    // Compared regardless of host, as upstream does: the controller's host is not part
    // of the configuration.
    if (controllerPort !== 0 && p === controllerPort) {
      upstream.push(`node '${name}' port ${fmtPort(p)} conflicts with controller port`);
    }
    // Deliberate fix of the upstream quirk that only the Broker port is checked: in this
    // system clients talk to the controller over WebSocket, so a node grabbing that port
    // on the controller's host locks every client out.
    if (isValidPort(webSocketPort) && p === webSocketPort) {
      upstream.push(`node '${name}' port ${fmtPort(p)} conflicts with controller WebSocket port`);
    }

    let seen = brokerPortsSeen.get(instance);
    if (!seen) brokerPortsSeen.set(instance, (seen = new Set()));
    if (!seen.has(p)) {
      seen.add(p);
      continue;
    }
    let reported = brokerPortsReported.get(instance);
    if (!reported) brokerPortsReported.set(instance, (reported = new Set()));
    if (!reported.has(p)) {
      upstream.push(`multiple nodes on instance '${instance}' using port ${fmtPort(p)}`);
      reported.add(p);
    }
  }

  if (!autoAssignBrokerPorts) {
    const lacking = nodes
      .filter((n) => ROLES_NEEDING_BROKER_PORT.has(n.role) && !isSet(n.port))
      .map((n) => asString(n.name))
      .sort(compareText);
    if (lacking.length > 0) {
      upstream.push(`Broker port auto-assignment disabled but nodes ${lacking.join(", ")} lack ports`);
    }
  }

  // --- checks upstream lacks -------------------------------------------------------

  let emptyInstanceName = false;
  for (const inst of instances) {
    const name = asString(inst.name);
    if (name === "") {
      emptyInstanceName = true;
    } else {
      const problem = nameProblem(name);
      if (problem) {
        extra.add(
          `instance name '${show(name)}' is unusable: ${problem}; instance names become ` +
            `agent names, directory names and Broker topic parts, so use letters, digits, ` +
            `'-', '_' and '.'`,
        );
      }
    }
    if (isSet(inst.listenPort) && !isValidPort(inst.listenPort)) {
      extra.add(
        `instance '${show(name)}' listen port ${show(inst.listenPort)} is not a valid TCP ` +
          `port; use a number from 1 to 65535, or leave it unset if the agent connects ` +
          `to the controller`,
      );
    }
  }
  if (emptyInstanceName) {
    extra.add("instance with empty name; give every instance a unique, non-empty name");
  }

  const managers: string[] = [];
  for (const node of nodes) {
    const name = asString(node.name);
    const instance = asString(node.instance);
    const role: unknown = node.role;

    if (name === "") {
      extra.add(`node with empty name on instance '${show(instance)}'; give every node a unique, ` + `non-empty name`);
    } else {
      const problem = nameProblem(name);
      if (problem) {
        extra.add(
          `node name '${show(name)}' is unusable: ${problem}; node names become process ` +
            `and directory names, so use letters, digits, '-', '_' and '.'`,
        );
      }
    }

    if (role === "NONE") {
      extra.add(`node '${show(name)}' has role NONE; set its role to MANAGER, LOGGER, PROXY or WORKER`);
    } else if (typeof role !== "string" || !USABLE_ROLES.has(role)) {
      extra.add(`node '${show(name)}' has unknown role '${show(role)}'; set its role to MANAGER, ` + `LOGGER, PROXY or WORKER`);
    }
    if (role === "MANAGER") managers.push(name);

    if (isSet(node.port) && !isValidPort(node.port)) {
      extra.add(
        `node '${show(name)}' port ${show(node.port)} is not a valid TCP port; use a ` + `number from 1 to 65535, or leave it unset`,
      );
    }
    if (isSet(node.metricsPort) && !isValidPort(node.metricsPort)) {
      extra.add(
        `node '${show(name)}' metrics port ${show(node.metricsPort)} is not a valid TCP ` +
          `port; use a number from 1 to 65535, or leave it unset`,
      );
    }

    if (isSet(node.cpuAffinity)) {
      const cpu: unknown = node.cpuAffinity;
      if (typeof cpu !== "number" || !Number.isInteger(cpu)) {
        extra.add(
          `node '${show(name)}' cpu_affinity ${show(cpu)} is not a whole number; use a ` + `CPU number (0 or higher), or leave it unset`,
        );
      } else if (cpu < 0) {
        extra.add(`node '${show(name)}' cpu_affinity ${cpu} is negative; use a CPU number ` + `(0 or higher), or leave it unset`);
      }
    }

    const env: unknown = node.env;
    if (typeof env === "object" && env !== null) {
      for (const key of Object.keys(env)) {
        if (!ENV_NAME.test(key)) {
          extra.add(
            `node '${show(name)}' env variable name '${show(key)}' is not valid; names ` +
              `must start with a letter or '_' and contain only letters, digits and '_'`,
          );
        }
      }
    }

    if (requireWorkerInterface && role === "WORKER") {
      const iface: unknown = node.interface;
      if (typeof iface !== "string" || iface === "") {
        extra.add(
          `worker node '${show(name)}' has no interface; set the interface it should ` + `sniff, or turn off requireWorkerInterface`,
        );
      }
    }
  }

  if (nodes.length > 0 && managers.length === 0) {
    extra.add("configuration has nodes but no MANAGER node; give exactly one node the role MANAGER");
  }
  if (managers.length > 1) {
    const names = managers.map(show).sort(compareText).join(", ");
    extra.add(
      `configuration has ${managers.length} MANAGER nodes (${names}); a cluster has ` + `exactly one, so change the role of the others`,
    );
  }

  // Metrics ports are served on the same host as the node's Broker listener, so they
  // must not collide with any Broker port (nodes' or the agent's) on that instance, nor
  // with another node's metrics port. Upstream checks none of this.
  const brokerOwners = new Map<string, Map<number, string[]>>();
  for (const node of nodes) {
    if (!isValidPort(node.port)) continue;
    const instance = asString(node.instance);
    let byPort = brokerOwners.get(instance);
    if (!byPort) brokerOwners.set(instance, (byPort = new Map<number, string[]>()));
    const owners = byPort.get(node.port) ?? [];
    owners.push(asString(node.name));
    byPort.set(node.port, owners);
  }
  const metricsUsers = new Map<string, Map<number, string[]>>();
  for (const node of nodes) {
    if (!isValidPort(node.metricsPort)) continue;
    const name = asString(node.name);
    const instance = asString(node.instance);
    const mp = node.metricsPort;

    if (agentPorts.get(instance)?.has(mp)) {
      extra.add(
        `node '${show(name)}' metrics port ${fmtPort(mp)} conflicts with agent port on ` +
          `instance '${show(instance)}'; pick a different metrics port`,
      );
    }
    for (const owner of brokerOwners.get(instance)?.get(mp) ?? []) {
      extra.add(
        `node '${show(name)}' metrics port ${fmtPort(mp)} conflicts with Broker port of ` +
          `node '${show(owner)}' on instance '${show(instance)}'; pick a different metrics port`,
      );
    }

    let byPort = metricsUsers.get(instance);
    if (!byPort) metricsUsers.set(instance, (byPort = new Map<number, string[]>()));
    const users = byPort.get(mp) ?? [];
    users.push(name);
    byPort.set(mp, users);
  }
  for (const [instance, byPort] of metricsUsers) {
    for (const [mp, users] of byPort) {
      if (users.length < 2) continue;
      const names = users.map(show).sort(compareText).join(", ");
      extra.add(
        `multiple nodes on instance '${show(instance)}' using metrics port ${fmtPort(mp)} ` +
          `(${names}); give each node its own metrics port`,
      );
    }
  }

  return [...upstream, ...extra].sort(compareText);
}
