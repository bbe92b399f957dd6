// What the agent stores with each node the supervisor runs (the supervisor keeps it as an
// opaque string): the node's record and, for Zeek nodes, the loopback port the agent dials.
// A restarted agent re-learns its nodes from it, so it is validated like any other input.

import { decodeDataText, encodeDataText } from "../broker/codec.js";
import * as S from "../broker/schema.js";
import type { Codec } from "../broker/schema.js";
import { NodeCodec } from "../management/records.js";
import type { Node } from "../management/types.js";

export interface NodeMeta {
  node: Node;
  /** Zeek nodes only: where their management endpoint listens on 127.0.0.1. */
  managementPort?: number;
  /**
   * Fingerprint of the deployment the node was launched for (deploymentFingerprint), so a
   * restarted agent that lost its state file can still tell that its nodes run what the
   * controller deploys.
   */
  deployment?: string;
}

const NodeMetaCodec: Codec<NodeMeta> = S.record<NodeMeta>("Zmgmt::Agent::NodeMeta", {
  node: NodeCodec,
  managementPort: S.optional(S.port),
  deployment: S.optional(S.string),
});

/** What agents before the fingerprint stored; their nodes are still adopted after an upgrade. */
const NodeMetaCodecV1: Codec<Omit<NodeMeta, "deployment">> = S.record<Omit<NodeMeta, "deployment">>("Zmgmt::Agent::NodeMeta", {
  node: NodeCodec,
  managementPort: S.optional(S.port),
});

export function encodeNodeMeta(meta: NodeMeta): string {
  return encodeDataText(NodeMetaCodec.encode(meta));
}

/** The stored metadata, or undefined when it is not ours or not valid. */
export function decodeNodeMeta(text: string): NodeMeta | undefined {
  for (const codec of [NodeMetaCodec, NodeMetaCodecV1] as Codec<NodeMeta>[]) {
    try {
      return codec.decode(decodeDataText(text), "meta");
    } catch {
      // try the older layout
    }
  }
  return undefined;
}
