// JSON encoding of Broker data, exactly as Broker's WebSocket JSON API v1 lays it out.
// Encoding is canonical (compact, Broker's key order, sets and tables sorted) so equal
// values always produce equal bytes; decoding accepts what Broker's decoder accepts and
// reports everything else as a ProtocolError, never as an untyped exception.

import { isIP } from "node:net";
import { type BrokerData, type BrokerType, type PortProtocol, BROKER_TYPES } from "./data.js";
import { ProtocolError } from "./errors.js";

/** Nesting deeper than this is refused: no legitimate message comes close. */
export const MAX_NESTING_DEPTH = 64;

// ---------------------------------------------------------------------------------------
// Ordering: Broker keeps sets and tables sorted; we sort the same way (type rank first,
// then value) so that encoding is deterministic.

const TYPE_RANK = new Map<BrokerType, number>(BROKER_TYPES.map((t, i) => [t, i]));

export function compareData(a: BrokerData, b: BrokerData): number {
  const ra = TYPE_RANK.get(a.type)!;
  const rb = TYPE_RANK.get(b.type)!;
  if (ra !== rb) return ra - rb;
  switch (a.type) {
    case "none":
      return 0;
    case "boolean":
      return Number(a.value) - Number((b as typeof a).value);
    case "count":
    case "integer":
    case "real":
    case "timestamp":
    case "timespan":
    case "string":
    case "address":
    case "subnet":
    case "enum-value":
      return compareScalars(a.value, (b as typeof a).value);
    case "port": {
      const bv = (b as typeof a).value;
      if (a.value.number !== bv.number) return a.value.number - bv.number;
      return a.value.protocol < bv.protocol ? -1 : a.value.protocol > bv.protocol ? 1 : 0;
    }
    case "set":
    case "vector":
      return compareLists(a.value, (b as typeof a).value);
    case "table": {
      const bv = (b as typeof a).value;
      const n = Math.min(a.value.length, bv.length);
      for (let i = 0; i < n; i++) {
        const c = compareData(a.value[i]![0], bv[i]![0]) || compareData(a.value[i]![1], bv[i]![1]);
        if (c !== 0) return c;
      }
      return a.value.length - bv.length;
    }
  }
}

function compareScalars<T extends number | bigint | string>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareLists(a: BrokerData[], b: BrokerData[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareData(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

export function dataEquals(a: BrokerData, b: BrokerData): boolean {
  return compareData(a, b) === 0;
}

/** Sorts and de-duplicates set elements (Broker collapses duplicates). */
export function canonicalSet(items: BrokerData[]): BrokerData[] {
  const sorted = [...items].sort(compareData);
  return sorted.filter((item, i) => i === 0 || compareData(sorted[i - 1]!, item) !== 0);
}

/** Sorts table entries by key; a repeated key keeps its last value, as an insert would. */
export function canonicalTable(entries: Array<[BrokerData, BrokerData]>): Array<[BrokerData, BrokerData]> {
  // The sort is stable, so repeated keys stay in arrival order and the last of each run is
  // the one an insert would keep. Looking each key up in the output instead made a table
  // that fills one (legal, 4 MB) frame take most of a minute to decode.
  const sorted = [...entries].sort((x, y) => compareData(x[0], y[0]));
  return sorted.filter((e, i) => i === sorted.length - 1 || compareData(e[0], sorted[i + 1]![0]) !== 0);
}

// ---------------------------------------------------------------------------------------
// Scalar text forms.

export function formatPort(number: number, protocol: PortProtocol): string {
  return `${number}/${protocol === "unknown" ? "?" : protocol}`;
}

/** ISO-8601 in UTC without a zone suffix, always with milliseconds. */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "");
}

const SPAN_UNITS: Array<[string, bigint]> = [
  ["s", 1_000_000_000n],
  ["ms", 1_000_000n],
  ["us", 1_000n],
  ["ns", 1n],
];

/** The largest of s/ms/us/ns that represents the value exactly; zero is "0s". */
export function formatTimespan(ns: bigint): string {
  if (ns === 0n) return "0s";
  for (const [unit, factor] of SPAN_UNITS) {
    if (ns % factor === 0n) return `${ns / factor}${unit}`;
  }
  return `${ns}ns`;
}

/** C's `%f`: six decimals. Non-finite values have no JSON form. */
export function formatReal(value: number): string {
  if (!Number.isFinite(value)) {
    throw new ProtocolError("deserialization_failed", `real value ${value} cannot be encoded`);
  }
  if (Math.abs(value) < 1e21) return value.toFixed(6);
  return BigInt(Math.trunc(value)).toString() + ".000000";
}

const SPAN_FACTORS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  min: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

export function parseTimespan(text: string): bigint | undefined {
  const m = /^(-?\d+)(ns|us|ms|s|min|h)$/.exec(text);
  if (!m) return undefined;
  return BigInt(m[1]!) * SPAN_FACTORS[m[2]!]!;
}

export function parseTimestamp(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z?$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  return Number.isFinite(ms) ? ms : undefined;
}

export function parsePort(text: string): { number: number; protocol: PortProtocol } | undefined {
  const slash = text.indexOf("/");
  const numText = slash < 0 ? text : text.slice(0, slash);
  if (!/^\d{1,5}$/.test(numText)) return undefined;
  const number = Number(numText);
  if (number > 65535) return undefined;
  if (slash < 0) return { number, protocol: "tcp" };
  const proto = text.slice(slash + 1);
  const protocol: PortProtocol = proto === "tcp" || proto === "udp" || proto === "icmp" ? proto : "unknown";
  return { number, protocol };
}

export function isValidSubnet(text: string): boolean {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return false;
  const family = isIP(text.slice(0, slash));
  const len = text.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (family === 4 ? 32 : 128);
}

// ---------------------------------------------------------------------------------------
// Encoding.

/** The `{"@data-type":…,"data":…}` text of a value, compact and in Broker's key order. */
export function encodeDataText(d: BrokerData): string {
  const ready = jsonReady(d);
  return ready ? JSON.stringify(ready) : encodeDataTextByParts(d);
}

/** Just the `data` member's JSON text; envelopes flatten it next to their own keys. */
export function encodeDataPayload(d: BrokerData): string {
  const ready = jsonReady(d);
  return ready ? JSON.stringify(ready.data) : encodeDataPayloadByParts(d);
}

interface JsonReady {
  "@data-type": string;
  data: unknown;
}

/**
 * A copy of the value that JSON.stringify prints in the wire's exact form (key order is
 * insertion order; strings are escaped as the by-parts encoder escapes them), or undefined
 * for a value holding a real, whose six fixed decimals JSON.stringify cannot print. One
 * native stringify of this copy takes about half the time of building the text from parts,
 * which a controller answering for 1,000 agents did for every response.
 */
function jsonReady(d: BrokerData): JsonReady | undefined {
  switch (d.type) {
    case "vector":
    case "set": {
      const items = d.type === "set" ? canonicalSet(d.value) : d.value;
      const out = new Array<JsonReady>(items.length);
      for (let i = 0; i < items.length; i++) {
        const item = jsonReady(items[i]!);
        if (!item) return undefined;
        out[i] = item;
      }
      return { "@data-type": d.type, data: out };
    }
    case "table": {
      const entries = canonicalTable(d.value);
      const out = new Array<{ key: JsonReady; value: JsonReady }>(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const key = jsonReady(entries[i]![0]);
        const value = key && jsonReady(entries[i]![1]);
        if (!key || !value) return undefined;
        out[i] = { key, value };
      }
      return { "@data-type": "table", data: out };
    }
    case "real":
      return undefined;
    case "none":
      return { "@data-type": "none", data: {} };
    case "port":
      return { "@data-type": "port", data: formatPort(d.value.number, d.value.protocol) };
    case "timestamp":
      return { "@data-type": "timestamp", data: formatTimestamp(d.value) };
    case "timespan":
      return { "@data-type": "timespan", data: formatTimespan(d.value) };
    default:
      return { "@data-type": d.type, data: d.value };
  }
}

/** The reference encoding, text built from parts; it also prints reals. */
export function encodeDataTextByParts(d: BrokerData): string {
  return `{"@data-type":${JSON.stringify(d.type)},"data":${encodeDataPayloadByParts(d)}}`;
}

function encodeDataPayloadByParts(d: BrokerData): string {
  switch (d.type) {
    case "vector":
      return `[${d.value.map(encodeDataTextByParts).join(",")}]`;
    case "set":
      return `[${canonicalSet(d.value).map(encodeDataTextByParts).join(",")}]`;
    case "table":
      return `[${canonicalTable(d.value)
        .map(([k, v]) => `{"key":${encodeDataTextByParts(k)},"value":${encodeDataTextByParts(v)}}`)
        .join(",")}]`;
    case "none":
      return "{}";
    case "boolean":
      return d.value ? "true" : "false";
    case "count":
    case "integer":
      return String(d.value);
    case "real":
      return formatReal(d.value);
    case "string":
    case "address":
    case "subnet":
    case "enum-value":
      return JSON.stringify(d.value);
    case "port":
      return JSON.stringify(formatPort(d.value.number, d.value.protocol));
    case "timestamp":
      return JSON.stringify(formatTimestamp(d.value));
    case "timespan":
      return JSON.stringify(formatTimespan(d.value));
  }
}

// ---------------------------------------------------------------------------------------
// Decoding.

function fail(path: string, why: string): never {
  throw new ProtocolError("deserialization_failed", `invalid data at ${path || "top level"}: ${why}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Decodes an already-parsed `{"@data-type", "data"}` object. */
export function decodeData(json: unknown, path = "", depth = 0): BrokerData {
  if (depth > MAX_NESTING_DEPTH) fail(path, `nesting deeper than ${MAX_NESTING_DEPTH}`);
  if (!isPlainObject(json)) fail(path, "expected an object with @data-type and data");
  const type = json["@data-type"];
  if (typeof type !== "string") fail(path, "missing @data-type");
  if (!("data" in json)) fail(path, "missing data");
  return decodeTyped(type, json["data"], path, depth);
}

/** Decodes a value given its `@data-type` name and raw `data` member. */
export function decodeTyped(type: string, data: unknown, path = "", depth = 0): BrokerData {
  switch (type) {
    case "none":
      return { type: "none" };
    case "boolean":
      if (typeof data !== "boolean") fail(path, "boolean expects true or false");
      return { type, value: data };
    case "count":
      if (typeof data !== "number" || !Number.isSafeInteger(data) || data < 0) {
        fail(path, "count expects a non-negative integer");
      }
      return { type, value: data };
    case "integer":
      if (typeof data !== "number" || !Number.isSafeInteger(data)) fail(path, "integer expects an integer");
      return { type, value: data };
    case "real":
      if (typeof data !== "number") fail(path, "real expects a number");
      return { type, value: data };
    case "string":
      if (typeof data !== "string") fail(path, "string expects a JSON string");
      return { type, value: data };
    case "enum-value":
      if (typeof data !== "string") fail(path, "enum-value expects a JSON string");
      return { type, value: data };
    case "address":
      if (typeof data !== "string" || isIP(data) === 0) fail(path, "address expects an IPv4 or IPv6 address");
      return { type, value: data };
    case "subnet":
      if (typeof data !== "string" || !isValidSubnet(data)) fail(path, "subnet expects address/length");
      return { type, value: data };
    case "port": {
      const port = typeof data === "string" ? parsePort(data) : undefined;
      if (!port) fail(path, "port expects N/tcp, N/udp, N/icmp or N/?");
      return { type, value: port };
    }
    case "timestamp": {
      const ms = typeof data === "string" ? parseTimestamp(data) : undefined;
      if (ms === undefined) fail(path, "timestamp expects ISO-8601 (YYYY-MM-DDTHH:MM:SS[.fff])");
      return { type, value: ms };
    }
    case "timespan": {
      const ns = typeof data === "string" ? parseTimespan(data) : undefined;
      if (ns === undefined) fail(path, "timespan expects an integer and a unit (ns, us, ms, s, min, h)");
      return { type, value: ns };
    }
    case "vector":
    case "set": {
      if (!Array.isArray(data)) fail(path, `${type} expects an array`);
      const items = data.map((item, i) => decodeData(item, `${path}[${i}]`, depth + 1));
      return type === "set" ? { type, value: canonicalSet(items) } : { type, value: items };
    }
    case "table": {
      if (!Array.isArray(data)) fail(path, "table expects an array of {key, value}");
      const entries = data.map((entry, i): [BrokerData, BrokerData] => {
        if (!isPlainObject(entry) || !("key" in entry) || !("value" in entry)) {
          fail(`${path}[${i}]`, "table entry expects {key, value}");
        }
        return [decodeData(entry["key"], `${path}[${i}].key`, depth + 1), decodeData(entry["value"], `${path}[${i}].value`, depth + 1)];
      });
      return { type, value: canonicalTable(entries) };
    }
    default:
      fail(path, `unknown @data-type ${JSON.stringify(type)}`);
  }
}

/** Parses JSON text holding one value. */
export function decodeDataText(text: string): BrokerData {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProtocolError("deserialization_failed", "failed to decode JSON object");
  }
  return decodeData(json);
}
