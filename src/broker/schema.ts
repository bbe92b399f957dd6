// Typed codecs between TypeScript values and Broker data, and event signatures built from
// them. Every role declares its events once (in its api.ts) with these; sending encodes
// through the same declaration that receiving validates against.

import { B, type BrokerData } from "./data.js";
import { ProtocolError } from "./errors.js";
import type { ZeekEvent } from "./messages.js";
import { isIP } from "node:net";

export interface Codec<T> {
  /** Shown in error messages, e.g. "vector of string". */
  readonly label: string;
  encode(value: T): BrokerData;
  decode(data: BrokerData, path: string): T;
}

export type CodecType<C> = C extends Codec<infer T> ? T : never;

function mismatch(path: string, label: string, got: BrokerData): never {
  throw new ProtocolError("invalid_event", `${path}: expected ${label}, got ${got.type}`);
}

function scalar<T>(type: BrokerData["type"], label: string, make: (v: T) => BrokerData, check?: (v: T) => boolean): Codec<T> {
  return {
    label,
    encode: make,
    decode(data, path) {
      if (data.type !== type) mismatch(path, label, data);
      const value = (data as unknown as { value: T }).value;
      if (check && !check(value)) mismatch(path, label, data);
      return value;
    },
  };
}

export const string = scalar<string>("string", "string", B.str);
export const bool = scalar<boolean>("boolean", "bool", B.bool);
export const count = scalar<number>("count", "count", B.count);
export const int = scalar<number>("integer", "int", B.int);
export const addr = scalar<string>("address", "addr", B.addr, (v) => isIP(v) !== 0);

/** Any Broker value, passed through untouched (Zeek's `any`). */
export const any: Codec<BrokerData> = {
  label: "any",
  encode: (v) => v,
  decode: (d) => d,
};

/** A TCP port; the protocol is not checked on input since only TCP is meaningful here. */
export const port: Codec<number> = {
  label: "port",
  encode: (n) => B.port(n, "tcp"),
  decode(data, path) {
    if (data.type !== "port") mismatch(path, "port", data);
    return data.value.number;
  },
};

/**
 * A Zeek enum written with its module prefix on the wire (`Management::RUNNING`). On input
 * the part after `::` is matched case-insensitively, like zeek-client does.
 */
export function enumOf<V extends string>(module: string, values: readonly V[]): Codec<V> {
  const label = `enum ${module}`;
  return {
    label,
    encode: (v) => B.enumv(`${module}::${v}`),
    decode(data, path) {
      if (data.type !== "enum-value") mismatch(path, label, data);
      const sep = data.value.lastIndexOf("::");
      const mod = sep < 0 ? "" : data.value.slice(0, sep);
      const name = (sep < 0 ? data.value : data.value.slice(sep + 2)).toUpperCase();
      const hit = values.find((v) => v.toUpperCase() === name);
      if (hit === undefined || (mod !== "" && mod !== module)) {
        throw new ProtocolError("invalid_event", `${path}: ${JSON.stringify(data.value)} is not a ${label} value`);
      }
      return hit;
    },
  };
}

export function optional<T>(inner: Codec<T>): Codec<T | undefined> {
  return {
    label: `${inner.label}|none`,
    encode: (v) => (v === undefined ? B.none() : inner.encode(v)),
    decode: (data, path) => (data.type === "none" ? undefined : inner.decode(data, path)),
  };
}

export function vector<T>(inner: Codec<T>): Codec<T[]> {
  const label = `vector of ${inner.label}`;
  return {
    label,
    encode: (items) => B.vec(items.map((i) => inner.encode(i))),
    decode(data, path) {
      if (data.type !== "vector") mismatch(path, label, data);
      return data.value.map((d, i) => inner.decode(d, `${path}[${i}]`));
    },
  };
}

/** A set; Zeek senders may also use a vector where a set is declared, so both are read. */
export function set<T>(inner: Codec<T>): Codec<T[]> {
  const label = `set of ${inner.label}`;
  return {
    label,
    encode: (items) => B.set(items.map((i) => inner.encode(i))),
    decode(data, path) {
      if (data.type !== "set" && data.type !== "vector") mismatch(path, label, data);
      return data.value.map((d, i) => inner.decode(d, `${path}[${i}]`));
    },
  };
}

export function table<V>(value: Codec<V>): Codec<Record<string, V>> {
  const label = `table[string] of ${value.label}`;
  return {
    label,
    encode: (rec) => B.table(Object.entries(rec).map(([k, v]) => [B.str(k), value.encode(v)])),
    decode(data, path) {
      if (data.type !== "table") mismatch(path, label, data);
      const out = Object.create(null) as Record<string, V>;
      for (const [k, v] of data.value) {
        if (k.type !== "string") mismatch(`${path} key`, "string", k);
        out[k.value] = value.decode(v, `${path}[${JSON.stringify(k.value)}]`);
      }
      return { ...out };
    },
  };
}

type FieldCodecs<T> = { [K in keyof T]-?: Codec<T[K]> };

/**
 * A record, laid out as a vector with one element per field in declaration order.
 * Like Zeek, decoding needs at least as many elements as fields and ignores extras.
 */
export function record<T extends object>(name: string, fields: FieldCodecs<T>): Codec<T> {
  const entries = Object.entries(fields) as Array<[keyof T & string, Codec<unknown>]>;
  return {
    label: name,
    encode(value) {
      return B.vec(entries.map(([k, c]) => c.encode((value as Record<string, unknown>)[k])));
    },
    decode(data, path) {
      if (data.type !== "vector") mismatch(path, `record ${name}`, data);
      if (data.value.length < entries.length) {
        throw new ProtocolError("invalid_event", `${path}: record ${name} needs ${entries.length} fields, got ${data.value.length}`);
      }
      const out: Record<string, unknown> = {};
      entries.forEach(([k, c], i) => {
        const v = c.decode(data.value[i]!, `${path}.${k}`);
        if (v !== undefined) out[k] = v;
      });
      return out as T;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Events.

type ArgValues<A extends readonly Codec<unknown>[]> = { [I in keyof A]: CodecType<A[I]> };

export interface EventSpec<A extends readonly Codec<unknown>[]> {
  readonly name: string;
  readonly argCodecs: A;
  make(...args: ArgValues<A>): ZeekEvent;
  /** Validates an incoming event against this signature; throws ProtocolError. */
  parse(event: ZeekEvent): ArgValues<A>;
}

export type EventArgs<E> = E extends EventSpec<infer A> ? ArgValues<A> : never;

export function defineEvent<A extends readonly Codec<unknown>[]>(name: string, ...argCodecs: A): EventSpec<A> {
  return {
    name,
    argCodecs,
    make(...args) {
      return { name, args: argCodecs.map((c, i) => c.encode(args[i])) };
    },
    parse(event) {
      if (event.name !== name) throw new ProtocolError("invalid_event", `expected ${name}, got ${event.name}`);
      // Zeek fills in trailing parameters that have defaults; we accept missing trailing
      // optional-by-default arguments only where the codec can decode `none`.
      if (event.args.length < argCodecs.length) {
        const missing = argCodecs.slice(event.args.length);
        const padded = [...event.args];
        for (const c of missing) {
          try {
            c.decode(B.none(), "");
            padded.push(B.none());
          } catch {
            throw new ProtocolError("invalid_event", `${name} takes ${argCodecs.length} arguments, got ${event.args.length}`);
          }
        }
        return argCodecs.map((c, i) => c.decode(padded[i]!, `${name} arg ${i + 1}`)) as ArgValues<A>;
      }
      if (event.args.length > argCodecs.length) {
        throw new ProtocolError("invalid_event", `${name} takes ${argCodecs.length} arguments, got ${event.args.length}`);
      }
      return argCodecs.map((c, i) => c.decode(event.args[i]!, `${name} arg ${i + 1}`)) as ArgValues<A>;
    },
  };
}

/** A lookup from event name to spec, for dispatching incoming events. */
export function eventRegistry(specs: Array<EventSpec<readonly Codec<unknown>[]>>): Map<string, EventSpec<readonly Codec<unknown>[]>> {
  return new Map(specs.map((s) => [s.name, s]));
}
