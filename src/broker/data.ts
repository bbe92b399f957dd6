// Broker's data model as typed TypeScript values. Each variant mirrors one `@data-type`
// of the WebSocket JSON API; ./codec.ts turns them into and out of JSON.

export type PortProtocol = "tcp" | "udp" | "icmp" | "unknown";

export interface PortValue {
  number: number;
  protocol: PortProtocol;
}

export type BrokerData =
  | { type: "none" }
  | { type: "boolean"; value: boolean }
  /** Unsigned 64-bit on the wire; restricted here to JavaScript's safe integer range. */
  | { type: "count"; value: number }
  | { type: "integer"; value: number }
  | { type: "real"; value: number }
  | { type: "string"; value: string }
  | { type: "address"; value: string }
  | { type: "subnet"; value: string }
  | { type: "port"; value: PortValue }
  /** Milliseconds since the epoch (UTC); the wire format carries millisecond precision. */
  | { type: "timestamp"; value: number }
  /** Nanoseconds, which is Broker's own resolution. */
  | { type: "timespan"; value: bigint }
  | { type: "enum-value"; value: string }
  | { type: "set"; value: BrokerData[] }
  | { type: "table"; value: Array<[BrokerData, BrokerData]> }
  | { type: "vector"; value: BrokerData[] };

export type BrokerType = BrokerData["type"];

export const BROKER_TYPES: readonly BrokerType[] = [
  "none",
  "boolean",
  "count",
  "integer",
  "real",
  "string",
  "address",
  "subnet",
  "port",
  "timestamp",
  "timespan",
  "enum-value",
  "set",
  "table",
  "vector",
];

/** Short constructors, so protocol code reads like the records it builds. */
export const B = {
  none: (): BrokerData => ({ type: "none" }),
  bool: (value: boolean): BrokerData => ({ type: "boolean", value }),
  count: (value: number): BrokerData => ({ type: "count", value }),
  int: (value: number): BrokerData => ({ type: "integer", value }),
  real: (value: number): BrokerData => ({ type: "real", value }),
  str: (value: string): BrokerData => ({ type: "string", value }),
  addr: (value: string): BrokerData => ({ type: "address", value }),
  subnet: (value: string): BrokerData => ({ type: "subnet", value }),
  port: (number: number, protocol: PortProtocol = "tcp"): BrokerData => ({
    type: "port",
    value: { number, protocol },
  }),
  time: (ms: number): BrokerData => ({ type: "timestamp", value: ms }),
  span: (ns: bigint): BrokerData => ({ type: "timespan", value: ns }),
  enumv: (value: string): BrokerData => ({ type: "enum-value", value }),
  set: (value: BrokerData[]): BrokerData => ({ type: "set", value }),
  table: (value: Array<[BrokerData, BrokerData]>): BrokerData => ({ type: "table", value }),
  vec: (value: BrokerData[]): BrokerData => ({ type: "vector", value }),
};

/** Optional values travel as `none`. */
export function optional<T>(value: T | undefined, encode: (v: T) => BrokerData): BrokerData {
  return value === undefined ? B.none() : encode(value);
}
