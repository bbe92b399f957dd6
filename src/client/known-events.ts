// The events zeek-client declares (monitor output, and which events abort a request): their
// argument names and Broker types, and the checks zeek-client applies to what it receives.

import type { BrokerData } from "../broker/data.js";
import type { ZeekEvent } from "../broker/messages.js";

const API = "Management::Controller::API::";

/** zeek-client's brokertypes class of each Broker type, as Python prints `type(arg)`. */
const CLASS_NAMES: Record<BrokerData["type"], string> = {
  none: "NoneType",
  boolean: "Boolean",
  count: "Count",
  integer: "Integer",
  real: "Real",
  timespan: "Timespan",
  timestamp: "Timestamp",
  string: "String",
  "enum-value": "Enum",
  address: "Address",
  subnet: "Subnet",
  port: "Port",
  vector: "Vector",
  set: "Set",
  table: "Table",
};

type ArgSpec = ReadonlyArray<readonly [name: string, type: BrokerData["type"]]>;

/** The events zeek-client declares: argument names and the Broker type each must have. */
export const KNOWN_EVENTS: ReadonlyMap<string, ArgSpec> = new Map<string, ArgSpec>([
  [`${API}deploy_request`, [["reqid", "string"]]],
  [
    `${API}deploy_response`,
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
  [
    `${API}get_configuration_request`,
    [
      ["reqid", "string"],
      ["deployed", "boolean"],
    ],
  ],
  [
    `${API}get_configuration_response`,
    [
      ["reqid", "string"],
      ["result", "vector"],
    ],
  ],
  [
    `${API}get_id_value_request`,
    [
      ["reqid", "string"],
      ["id", "string"],
      ["nodes", "set"],
    ],
  ],
  [
    `${API}get_id_value_response`,
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
  [`${API}get_instances_request`, [["reqid", "string"]]],
  [
    `${API}get_instances_response`,
    [
      ["reqid", "string"],
      ["result", "vector"],
    ],
  ],
  [`${API}get_nodes_request`, [["reqid", "string"]]],
  [
    `${API}get_nodes_response`,
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
  [
    `${API}restart_request`,
    [
      ["reqid", "string"],
      ["nodes", "set"],
    ],
  ],
  [
    `${API}restart_response`,
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
  [
    `${API}stage_configuration_request`,
    [
      ["reqid", "string"],
      ["config", "vector"],
    ],
  ],
  [
    `${API}stage_configuration_response`,
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
  [`${API}test_noop_request`, [["reqid", "string"]]],
  [
    `${API}test_timeout_request`,
    [
      ["reqid", "string"],
      ["with_state", "boolean"],
    ],
  ],
  [
    `${API}test_timeout_response`,
    [
      ["reqid", "string"],
      ["result", "vector"],
    ],
  ],
]);

/** zmgmt's own requests (not zeek-client's), checked the same way. */
const ZMGMT_EVENTS: ReadonlyMap<string, ArgSpec> = new Map<string, ArgSpec>([
  ["Zmgmt::Controller::API::get_netstats_request", [["reqid", "string"]]],
  [
    "Zmgmt::Controller::API::get_netstats_response",
    [
      ["reqid", "string"],
      ["results", "vector"],
    ],
  ],
]);

export type EventCheck = "unknown" | "invalid" | "ok";

/** Whether zeek-client would skip (unknown), reject (invalid) or accept an event. */
export function checkEvent(event: ZeekEvent): EventCheck {
  const spec = KNOWN_EVENTS.get(event.name) ?? ZMGMT_EVENTS.get(event.name);
  if (spec === undefined) return "unknown";
  if (event.args.length !== spec.length) return "invalid";
  return spec.every(([, type], i) => event.args[i]!.type === type) ? "ok" : "invalid";
}

/** A known event the way monitor prints it: `Name(arg: <class '…'>, …)`. */
export function describeEvent(event: ZeekEvent): string {
  const spec = KNOWN_EVENTS.get(event.name) ?? [];
  const args = event.args.map((arg, i) => `${spec[i]?.[0] ?? `arg${i + 1}`}: <class 'zeekclient.brokertypes.${CLASS_NAMES[arg.type]}'>`);
  return `${event.name}(${args.join(", ")})`;
}
