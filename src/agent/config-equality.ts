// When a newly deployed configuration changes nothing an agent runs. zeek-client stages every
// deploy-config under a fresh id, so comparing ids alone would restart every node of a
// cluster whose configuration did not change. Every node's launch depends on the whole
// cluster layout (Zeek's Cluster::nodes), so the comparison covers all nodes and instances,
// not just this agent's own.

import { createHash } from "node:crypto";
import type { Configuration, Instance, Node } from "../management/types.js";

function canonicalNode(n: Node): unknown {
  return [
    n.name,
    n.instance,
    n.role,
    n.port ?? null,
    [...(n.scripts ?? [])],
    [...(n.options ?? [])].map((o) => [o.name, o.value]).sort(),
    n.interface ?? null,
    n.cpuAffinity ?? null,
    Object.entries(n.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    n.metricsPort ?? null,
  ];
}

function canonicalInstance(i: Instance): unknown {
  return [i.name, i.host, i.listenPort ?? null];
}

function canonical(config: Configuration): string {
  const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return JSON.stringify([[...config.instances].sort(byName).map(canonicalInstance), [...config.nodes].sort(byName).map(canonicalNode)]);
}

/** True when `next` would launch exactly the processes `current` launched; ids and node states do not count. */
export function sameDeployment(current: Configuration, next: Configuration): boolean {
  return canonical(current) === canonical(next);
}

/**
 * A digest of what sameDeployment compares, stored with each launched node: equal
 * fingerprints mean sameDeployment would hold. A digest, since the configuration carries
 * env values that have no business in process metadata.
 */
export function deploymentFingerprint(config: Configuration): string {
  return createHash("sha256").update(canonical(config)).digest("hex");
}
