import { isIPv6 } from "node:net";

import type { ClusterRole, Configuration, Node } from "../management/types.js";
import { compareText } from "../management/validation.js";

export const DEFAULT_BROKER_START_PORT = 2200;
export const DEFAULT_METRICS_START_PORT = 9000;

const MAX_PORT = 65535;
const UNKNOWN_HOST = "0.0.0.0";

/**
 * The outcome of a port assignment: a new configuration (the input is never touched) plus
 * problems that left some nodes without a port. The caller should refuse to stage when
 * `errors` is non-empty.
 */
export interface PortAssignmentResult {
  config: Configuration;
  errors: string[];
}

export interface PortAssignmentOptions {
  /** First port number to hand out. Defaults: 2200 for Broker, 9000 for metrics. */
  startPort?: number;
}

export interface ReadyConfigOptions {
  /** Agents that have checked in, with the address the controller observed. */
  known?: ReadonlyMap<string, { host: string }>;
  /** Default true. */
  autoAssignBrokerPorts?: boolean;
  /** Default true. */
  autoAssignMetricsPorts?: boolean;
  /** Default 2200. */
  brokerStartPort?: number;
  /** Default 9000. */
  metricsStartPort?: number;
}

const BROKER_RANK: Partial<Record<ClusterRole, number>> = { MANAGER: 0, LOGGER: 1, PROXY: 2 };
const METRICS_RANK: Partial<Record<ClusterRole, number>> = {
  MANAGER: 0,
  LOGGER: 1,
  PROXY: 2,
  WORKER: 3,
};

function clone(config: Configuration): Configuration {
  return structuredClone(config);
}

function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** Instance name first, so ports come out locally sequential per instance. */
function byInstanceRoleName(rank: Partial<Record<ClusterRole, number>>) {
  return (a: Node, b: Node): number =>
    compareText(a.instance, b.instance) || (rank[a.role] ?? 0) - (rank[b.role] ?? 0) || compareText(a.name, b.name);
}

function startPortError(kind: string, startPort: number): string | undefined {
  if (Number.isInteger(startPort) && startPort >= 1 && startPort <= MAX_PORT) return undefined;
  return `${kind} port auto-assignment start port ${startPort} is not a valid TCP port; ` + `configure a start port from 1 to ${MAX_PORT}`;
}

function exhaustedError(kind: string, startPort: number, names: string[]): string {
  return (
    `${kind} port auto-assignment starting at ${startPort} ran past ${MAX_PORT} before ` +
    `reaching nodes ${names.sort(compareText).join(", ")}; lower the start port or give ` +
    `these nodes explicit ports`
  );
}

/**
 * Zeek compares hosts as addresses, not strings, so equivalent spellings of one IPv6
 * address (or an IPv4-mapped one) must land in the same metrics bucket.
 */
function hostKey(host: string): string {
  const lower = host.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(lower);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(lower)) return lower;
  try {
    return new URL(`http://[${lower}]/`).hostname.slice(1, -1);
  } catch {
    return lower;
  }
}

/**
 * Step 3 of staging: for every instance whose agent has checked in, replace an unknown
 * host (`0.0.0.0`) with the address the controller observed. Explicit hosts always win,
 * and an observed `0.0.0.0` carries no information.
 */
export function fillObservedHosts(config: Configuration, known: ReadonlyMap<string, { host: string }>): Configuration {
  const copy = clone(config);
  for (const inst of copy.instances) {
    const seen = known.get(inst.name);
    if (seen && inst.host === UNKNOWN_HOST && seen.host !== UNKNOWN_HOST) {
      inst.host = seen.host;
    }
  }
  return copy;
}

/**
 * Gives MANAGER, LOGGER and PROXY nodes without a port a Broker port from one counter
 * shared by all instances, so the same number never appears twice in a cluster. Agent
 * listen ports and explicit node ports (any role) are skipped. Workers never get one.
 * The controller's own port is not avoided: upstream does not either, and validation
 * already keeps explicit ports off it.
 */
export function assignBrokerPorts(config: Configuration, options: PortAssignmentOptions = {}): PortAssignmentResult {
  const startPort = options.startPort ?? DEFAULT_BROKER_START_PORT;
  const copy = clone(config);

  const candidates = copy.nodes.filter((n) => BROKER_RANK[n.role] !== undefined && !isSet(n.port)).sort(byInstanceRoleName(BROKER_RANK));
  if (candidates.length === 0) return { config: copy, errors: [] };

  const badStart = startPortError("Broker", startPort);
  if (badStart) return { config: copy, errors: [badStart] };

  const used = new Set<number>();
  for (const inst of copy.instances) if (isSet(inst.listenPort)) used.add(inst.listenPort!);
  for (const node of copy.nodes) if (isSet(node.port)) used.add(node.port!);

  const starved: string[] = [];
  let next = startPort;
  for (const node of candidates) {
    while (used.has(next)) next++;
    // Zeek would wrap into a nonsense port here; leaving the node portless and saying so
    // is the only honest outcome.
    if (next > MAX_PORT) {
      starved.push(node.name);
      continue;
    }
    node.port = next;
    used.add(next);
    next++;
  }

  return {
    config: copy,
    errors: starved.length > 0 ? [exhaustedError("Broker", startPort, starved)] : [],
  };
}

/**
 * Gives every MANAGER, LOGGER, PROXY and WORKER node without a metrics port one, with a
 * separate counter per host address: two instances on one machine must not share a
 * number, while different machines may reuse it. All instances whose host is still
 * unknown (`0.0.0.0`) share one bucket, as upstream does.
 *
 * Each bucket starts out knowing every agent listen port, node Broker port and explicit
 * metrics port on that host. This follows current upstream; v8.1.0 seeded only a single
 * node's ports. Upstream also resets a bucket's agent ports for each further instance on
 * the same host, which loses all but the last one; here they all count, as intended.
 */
export function assignMetricsPorts(config: Configuration, options: PortAssignmentOptions = {}): PortAssignmentResult {
  const startPort = options.startPort ?? DEFAULT_METRICS_START_PORT;
  const copy = clone(config);

  const candidates = copy.nodes
    .filter((n) => METRICS_RANK[n.role] !== undefined && !isSet(n.metricsPort))
    .sort(byInstanceRoleName(METRICS_RANK));
  if (candidates.length === 0) return { config: copy, errors: [] };

  const badStart = startPortError("Metrics", startPort);
  if (badStart) return { config: copy, errors: [badStart] };

  const hostOf = new Map<string, string>();
  for (const inst of copy.instances) hostOf.set(inst.name, hostKey(inst.host));
  // Validation rejects nodes on undeclared instances before this runs; should one slip
  // through anyway it goes with the other hosts nobody knows yet.
  const bucketOf = (node: Node): string => hostOf.get(node.instance) ?? UNKNOWN_HOST;

  const used = new Map<string, Set<number>>();
  const usedIn = (bucket: string): Set<number> => {
    let set = used.get(bucket);
    if (!set) used.set(bucket, (set = new Set()));
    return set;
  };
  for (const inst of copy.instances) {
    if (isSet(inst.listenPort)) usedIn(hostKey(inst.host)).add(inst.listenPort!);
  }
  for (const node of copy.nodes) {
    const set = usedIn(bucketOf(node));
    if (isSet(node.port)) set.add(node.port!);
    if (isSet(node.metricsPort)) set.add(node.metricsPort!);
  }

  const counters = new Map<string, number>();
  const starved: string[] = [];
  for (const node of candidates) {
    const bucket = bucketOf(node);
    const set = usedIn(bucket);
    let next = counters.get(bucket) ?? startPort;
    while (set.has(next)) next++;
    if (next > MAX_PORT) {
      counters.set(bucket, next);
      starved.push(node.name);
      continue;
    }
    node.metricsPort = next;
    set.add(next);
    counters.set(bucket, next + 1);
  }

  return {
    config: copy,
    errors: starved.length > 0 ? [exhaustedError("Metrics", startPort, starved)] : [],
  };
}

/**
 * Builds the READY configuration from a validated STAGED one (staging steps 3 and 4):
 * observed hosts first, then Broker ports, then metrics ports, since metrics assignment
 * has to see the Broker ports. Returns a deep copy; `staged` is left exactly as the
 * client sent it, which is what get-configuration reports.
 */
export function prepareReadyConfig(staged: Configuration, options: ReadyConfigOptions = {}): PortAssignmentResult {
  const errors: string[] = [];
  let config = fillObservedHosts(staged, options.known ?? new Map());

  if (options.autoAssignBrokerPorts ?? true) {
    const res = assignBrokerPorts(config, { startPort: options.brokerStartPort ?? DEFAULT_BROKER_START_PORT });
    config = res.config;
    errors.push(...res.errors);
  }
  if (options.autoAssignMetricsPorts ?? true) {
    const res = assignMetricsPorts(config, {
      startPort: options.metricsStartPort ?? DEFAULT_METRICS_START_PORT,
    });
    config = res.config;
    errors.push(...res.errors);
  }

  return { config, errors };
}
