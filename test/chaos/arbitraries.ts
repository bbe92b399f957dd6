// fast-check generators for hostile input: arbitrary Broker values, well-formed arguments
// for every declared event (so mutations start from something the decoder accepts and
// reach deep into it), mutations of those, and raw frame texts from garbage to nearly valid.

import fc from "fast-check";
import { B, type BrokerData } from "../../src/broker/data.js";
import { encodeDataMessage, eventToData, type ZeekEvent } from "../../src/broker/messages.js";
import type { Codec, EventSpec } from "../../src/broker/schema.js";
import { AgentApi } from "../../src/agent/api.js";
import { ControllerApi } from "../../src/controller/api.js";
import { NodeApi } from "../../src/node/api.js";
import {
  SupervisorApi,
  PROCESS_STATES,
  SupervisedNodeConfigCodec,
  SupervisedNodeStatusCodec,
  NodeExitCodec,
  ProcessUsageCodec,
} from "../../src/supervisor/api.js";
import {
  ConfigurationCodec,
  InstanceCodec,
  NodeCodec,
  NodeOutputsCodec,
  NodeStatusCodec,
  OptionCodec,
  ResultCodec,
} from "../../src/management/records.js";
import {
  CLUSTER_ROLES,
  MGMT_ROLES,
  STATES,
  type Configuration,
  type Instance,
  type Node,
  type NodeStatus,
  type Result,
} from "../../src/management/types.js";

export type AnySpec = EventSpec<readonly Codec<unknown>[]>;

export const ALL_SPECS: Array<{ api: string; spec: AnySpec }> = [
  ...Object.values(ControllerApi).map((spec) => ({ api: "controller", spec })),
  ...Object.values(AgentApi).map((spec) => ({ api: "agent", spec })),
  ...Object.values(NodeApi).map((spec) => ({ api: "node", spec })),
  ...Object.values(SupervisorApi).map((spec) => ({ api: "supervisor", spec })),
];

// ---------------------------------------------------------------------------------------
// Broker values.

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.constantFrom("", "instance-1", "manager", "__proto__", "constructor"),
);

const scalar: fc.Arbitrary<BrokerData> = fc.oneof(
  fc.constant(B.none()),
  fc.boolean().map(B.bool),
  fc.oneof(fc.nat(), fc.maxSafeNat()).map(B.count),
  fc.oneof(fc.integer(), fc.maxSafeInteger()).map(B.int),
  fc.double().map(B.real),
  text.map(B.str),
  fc.oneof(fc.ipV4(), fc.ipV6()).map(B.addr),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, n]) => B.subnet(`${a}/${n}`)),
  fc
    .tuple(fc.integer({ min: 0, max: 65535 }), fc.constantFrom("tcp", "udp", "icmp", "unknown") as fc.Arbitrary<"tcp">)
    .map(([n, p]) => B.port(n, p)),
  fc.integer({ min: 0, max: 4_102_444_800_000 }).map(B.time),
  fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }).map(B.span),
  fc.oneof(text, fc.constantFrom(...STATES.map((s) => `Management::${s}`), ...CLUSTER_ROLES.map((r) => `Supervisor::${r}`))).map(B.enumv),
);

export const brokerData: fc.Arbitrary<BrokerData> = fc.letrec<{ data: BrokerData; vec: BrokerData; set: BrokerData; table: BrokerData }>(
  (tie) => ({
    data: fc.oneof({ depthSize: "small" }, scalar, tie("vec"), tie("set"), tie("table")),
    vec: fc.array(tie("data"), { maxLength: 5 }).map(B.vec),
    set: fc.array(tie("data"), { maxLength: 4 }).map(B.set),
    table: fc.array(fc.tuple(tie("data"), tie("data")), { maxLength: 3 }).map(B.table),
  }),
).data;

// ---------------------------------------------------------------------------------------
// Well-formed values of every record the APIs carry.

const port = fc.integer({ min: 0, max: 65535 });
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const env = fc.dictionary(text, text, { maxKeys: 3 });

/** T with every key that may hold undefined made optional instead (exactOptionalPropertyTypes). */
type WithoutUndefined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

function withoutUndefined<T extends object>(o: T): WithoutUndefined<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as WithoutUndefined<T>;
}

export const instanceArb: fc.Arbitrary<Instance> = fc
  .record({ name: text, host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant("0.0.0.0")), listenPort: opt(port) })
  .map(withoutUndefined);

export const nodeArb: fc.Arbitrary<Node> = fc
  .record({
    name: text,
    instance: text,
    role: fc.constantFrom(...CLUSTER_ROLES),
    state: fc.constantFrom(...STATES),
    port: opt(port),
    scripts: opt(fc.array(text, { maxLength: 2 })),
    options: opt(fc.array(fc.record({ name: text, value: text }), { maxLength: 2 })),
    interface: opt(text),
    cpuAffinity: opt(fc.integer({ min: -2, max: 1024 })),
    env,
    metricsPort: opt(port),
  })
  .map(withoutUndefined);

export const configurationArb: fc.Arbitrary<Configuration> = fc.record({
  id: text,
  instances: fc.array(instanceArb, { maxLength: 3 }),
  nodes: fc.array(nodeArb, { maxLength: 4 }),
});

const resultArb: fc.Arbitrary<Result> = fc
  .record({ reqid: text, success: fc.boolean(), instance: opt(text), data: opt(brokerData), error: opt(text), node: opt(text) })
  .map(withoutUndefined);

const nodeStatusArb: fc.Arbitrary<NodeStatus> = fc
  .record({
    node: text,
    state: fc.constantFrom(...STATES),
    mgmtRole: fc.constantFrom(...MGMT_ROLES),
    clusterRole: fc.constantFrom(...CLUSTER_ROLES),
    pid: opt(fc.integer()),
    port: opt(port),
    metricsPort: opt(port),
  })
  .map(withoutUndefined);

const outputsArb = fc.record({ stdout: text, stderr: text });

const supervisedConfigArb = fc
  .record({
    name: text,
    command: fc.array(text, { maxLength: 3 }),
    directory: text,
    env,
    cpuAffinity: opt(fc.integer()),
    managementRole: fc.constantFrom("", "AGENT", "CONTROLLER"),
    meta: text,
  })
  .map(withoutUndefined);

/** Encoded well-formed values per record name (as the record codecs label themselves). */
const RECORDS: Record<string, fc.Arbitrary<BrokerData>> = {
  "Management::Option": fc.record({ name: text, value: text }).map((v) => OptionCodec.encode(v)),
  "Management::Instance": instanceArb.map((v) => InstanceCodec.encode(v)),
  "Management::Node": nodeArb.map((v) => NodeCodec.encode(v)),
  "Management::Configuration": configurationArb.map((v) => ConfigurationCodec.encode(v)),
  "Management::NodeStatus": nodeStatusArb.map((v) => NodeStatusCodec.encode(v)),
  "Management::Result": resultArb.map((v) => ResultCodec.encode(v)),
  "Management::NodeOutputs": outputsArb.map((v) => NodeOutputsCodec.encode(v)),
  "Zmgmt::Supervisor::NodeConfig": supervisedConfigArb.map((v) => SupervisedNodeConfigCodec.encode(v)),
  "Zmgmt::Supervisor::NodeStatus": fc
    .record({
      config: supervisedConfigArb,
      state: fc.constantFrom(...PROCESS_STATES),
      pid: opt(fc.integer()),
      restarts: fc.nat(),
      startedAt: opt(fc.integer()),
      lastExitCode: opt(fc.integer()),
      lastExitSignal: opt(text),
    })
    .map((v) => SupervisedNodeStatusCodec.encode(withoutUndefined(v))),
  "Zmgmt::Supervisor::ProcessUsage": fc
    .record({ name: text, pid: fc.integer(), cpuPercent: fc.double({ min: 0, max: 6400, noNaN: true }), rssBytes: fc.nat() })
    .map((v) => ProcessUsageCodec.encode(v)),
  "Zmgmt::Supervisor::NodeExit": fc
    .record({
      name: text,
      pid: fc.integer(),
      exitCode: opt(fc.integer()),
      signal: opt(text),
      outputs: outputsArb,
      restartInMs: opt(fc.integer()),
    })
    .map((v) => NodeExitCodec.encode(withoutUndefined(v))),
};

/** A generator of well-formed data for a codec, derived from its label. */
export function validFor(codec: Codec<unknown>): fc.Arbitrary<BrokerData> {
  return fromLabel(codec.label);
}

function fromLabel(label: string): fc.Arbitrary<BrokerData> {
  if (label.endsWith("|none")) return fc.oneof(fc.constant(B.none()), fromLabel(label.slice(0, -5)));
  if (label.startsWith("vector of ")) return fc.array(fromLabel(label.slice(10)), { maxLength: 3 }).map(B.vec);
  if (label.startsWith("set of ")) return fc.array(fromLabel(label.slice(7)), { maxLength: 3 }).map(B.set);
  if (label.startsWith("table[string] of "))
    return fc.array(fc.tuple(text, fromLabel(label.slice(17))), { maxLength: 3 }).map((es) => B.table(es.map(([k, v]) => [B.str(k), v])));
  switch (label) {
    case "string":
      return text.map(B.str);
    case "bool":
      return fc.boolean().map(B.bool);
    case "count":
      return fc.nat().map(B.count);
    case "int":
      return fc.integer().map(B.int);
    case "addr":
      return fc.ipV4().map(B.addr);
    case "port":
      return port.map((n) => B.port(n));
    case "any":
      return brokerData;
    case "double":
      return fc.double({ noNaN: true, noDefaultInfinity: true }).map(B.real);
    case "enum Management":
      return fc.constantFrom(...STATES).map((s) => B.enumv(`Management::${s}`));
    case "enum Supervisor":
      return fc.constantFrom(...CLUSTER_ROLES).map((r) => B.enumv(`Supervisor::${r}`));
  }
  const rec = RECORDS[label];
  if (!rec) throw new Error(`no generator for codec ${label}`);
  return rec;
}

export function validArgs(spec: AnySpec): fc.Arbitrary<BrokerData[]> {
  return fc.tuple(...spec.argCodecs.map(validFor));
}

// ---------------------------------------------------------------------------------------
// Mutations.

/** Replaces the subtree that `path` leads to (choices taken modulo the width) with `by`. */
export function replaceAt(d: BrokerData, path: number[], by: BrokerData): BrokerData {
  if (path.length === 0) return by;
  const [i, ...rest] = path as [number, ...number[]];
  if (d.type === "vector" || d.type === "set") {
    if (d.value.length === 0) return by;
    const at = i % d.value.length;
    return { type: d.type, value: d.value.map((x, j) => (j === at ? replaceAt(x, rest, by) : x)) };
  }
  if (d.type === "table") {
    if (d.value.length === 0) return by;
    const at = Math.floor(i / 2) % d.value.length;
    return {
      type: "table",
      value: d.value.map(([k, v], j): [BrokerData, BrokerData] =>
        j !== at ? [k, v] : i % 2 ? [k, replaceAt(v, rest, by)] : [replaceAt(k, rest, by), v],
      ),
    };
  }
  return by;
}

export type ArgMutation =
  { kind: "replace"; arg: number; path: number[]; by: BrokerData } | { kind: "drop"; arg: number } | { kind: "extra"; by: BrokerData };

/** Replacements: anything, but often a value of a common type, to get past type checks. */
const replacement: fc.Arbitrary<BrokerData> = fc.oneof(
  { weight: 3, arbitrary: brokerData },
  { weight: 2, arbitrary: text.map(B.str) },
  { weight: 1, arbitrary: text.map(B.enumv) },
  { weight: 1, arbitrary: fc.integer().map(B.int) },
);

export const mutation: fc.Arbitrary<ArgMutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("replace" as const),
      arg: fc.nat(),
      path: fc.array(fc.nat(), { maxLength: 6 }),
      by: replacement,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drop" as const), arg: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("extra" as const), by: brokerData }) },
);

export function mutateArgs(args: BrokerData[], m: ArgMutation): BrokerData[] {
  if (m.kind === "extra") return [...args, m.by];
  if (args.length === 0) return m.kind === "replace" ? [m.by] : args;
  const at = m.arg % args.length;
  if (m.kind === "drop") return args.filter((_, i) => i !== at);
  return args.map((a, i) => (i === at ? replaceAt(a, m.path, m.by) : a));
}

/** Arguments for an event: well-formed, mutated well-formed, or anything at all. */
export function hostileArgs(spec: AnySpec): fc.Arbitrary<{ how: string; args: BrokerData[] }> {
  return fc.oneof(
    validArgs(spec).map((args) => ({ how: "valid", args })),
    fc
      .tuple(validArgs(spec), fc.array(mutation, { minLength: 1, maxLength: 3 }))
      .map(([args, ms]) => ({ how: "mutated", args: ms.reduce(mutateArgs, args) })),
    fc.array(brokerData, { maxLength: spec.argCodecs.length + 1 }).map((args) => ({ how: "random", args })),
  );
}

// ---------------------------------------------------------------------------------------
// Frame texts.

function edit(textIn: string, edits: Array<{ at: number; op: 0 | 1 | 2; s: string }>): string {
  let t = textIn;
  for (const e of edits) {
    const at = t.length === 0 ? 0 : e.at % t.length;
    t =
      e.op === 0
        ? t.slice(0, at) + t.slice(at + 1)
        : e.op === 1
          ? t.slice(0, at) + e.s + t.slice(at)
          : t.slice(0, at) + e.s + t.slice(at + e.s.length);
  }
  return t;
}

const edits = fc.array(
  fc.record({
    at: fc.nat(),
    op: fc.constantFrom(0 as const, 1 as const, 2 as const),
    s: fc.string({ unit: "binary-ascii", maxLength: 3 }),
  }),
  {
    minLength: 1,
    maxLength: 4,
  },
);

function eventOf(specs: AnySpec[]): fc.Arbitrary<ZeekEvent> {
  return fc.constantFrom(...specs).chain((spec) => hostileArgs(spec).map(({ args }) => ({ name: spec.name, args })));
}

/** An event for any declared name (or a made-up one), with hostile arguments. */
export const hostileEvent: fc.Arbitrary<ZeekEvent> = fc.oneof(
  { weight: 8, arbitrary: eventOf(ALL_SPECS.map((s) => s.spec)) },
  {
    weight: 1,
    arbitrary: fc.record({
      name: fc.oneof(text, fc.constant("Management::Controller::API::no_such_request")),
      args: fc.array(brokerData, { maxLength: 3 }),
    }),
  },
);

/** The frame text of a value; reals without a JSON form go out as the bare token. */
export function frameText(topic: string, d: BrokerData): string {
  try {
    return encodeDataMessage(topic, d);
  } catch {
    return `{"type":"data-message","topic":${JSON.stringify(topic)},"@data-type":"real","data":NaN}`;
  }
}

/**
 * Any text a peer could send as a frame after the handshake. Most go to the first topic,
 * and with `focus` most events are the ones the target handles, so that they get past
 * routing into its handlers.
 */
export function hostileFrame(topics: string[], focus: AnySpec[] = []): fc.Arbitrary<string> {
  const topic = fc.oneof(
    { weight: 6, arbitrary: fc.constant(topics[0]!) },
    { weight: 2, arbitrary: fc.constantFrom(...topics) },
    { weight: 1, arbitrary: text },
  );
  const event = focus.length ? fc.oneof({ weight: 3, arbitrary: eventOf(focus) }, { weight: 1, arbitrary: hostileEvent }) : hostileEvent;
  const wellFormed = fc.tuple(topic, event).map(([t, e]) => frameText(t, eventToData(e)));
  const dataOfAnyShape = fc.tuple(topic, brokerData).map(([t, d]) => frameText(t, d));
  const almost = fc
    .record(
      {
        type: fc.oneof(fc.constant("data-message"), text),
        topic: fc.oneof(
          topic.map((t): unknown => t),
          fc.jsonValue(),
        ),
        "@data-type": fc.oneof(fc.constantFrom("vector", "set", "table", "count", "string", "port", "timespan", "none"), text),
        data: fc.jsonValue({ maxDepth: 4 }),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o));
  return fc.oneof(
    { weight: 5, arbitrary: wellFormed.filter((s) => s.length < 200_000) },
    { weight: 2, arbitrary: dataOfAnyShape },
    { weight: 2, arbitrary: almost },
    { weight: 2, arbitrary: fc.tuple(wellFormed, edits).map(([s, e]) => edit(s, e)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 64 }) },
  );
}
