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
}

const NodeMetaCodec: Codec<NodeMeta> = S.record<NodeMeta>("ZMgmt::Agent::NodeMeta", {
  node: NodeCodec,
  managementPort: S.optional(S.port),
});

export function encodeNodeMeta(meta: NodeMeta): string {
  return encodeDataText(NodeMetaCodec.encode(meta));
}

/** The stored metadata, or undefined when it is not ours or not valid. */
export function decodeNodeMeta(text: string): NodeMeta | undefined {
  try {
    return NodeMetaCodec.decode(decodeDataText(text), "meta");
  } catch {
    return undefined;
  }
}
