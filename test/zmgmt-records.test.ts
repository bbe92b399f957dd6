// The records of zmgmt's own requests: every valid value survives encode/decode, and no
// Broker value, however malformed, makes a decoder throw anything but a ProtocolError or
// return a value outside its schema's limits.

import fc from "fast-check";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { describe, expect, it } from "vitest";
import { B, type BrokerData } from "../src/broker/data.js";
import { ProtocolError } from "../src/broker/errors.js";
import { STATES } from "../src/management/types.js";
import {
  MAX_LOG_LINES,
  NodeLogsCodec,
  NodeLogsQueryCodec,
  NodeLogsQuerySchema,
  NodeLogsSchema,
  NodeNamesCodec,
  NodeProcessStatusCodec,
  NodeProcessStatusSchema,
  type NodeLogs,
  type NodeLogsQuery,
  type NodeProcessStatus,
} from "../src/management/zmgmt-records.js";

const name = fc.string({ minLength: 1, maxLength: 40 });
const stream = fc.constantFrom("stdout" as const, "stderr" as const);
const nat = fc.nat({ max: 2 ** 40 });

const query: fc.Arbitrary<NodeLogsQuery> = fc.record(
  { node: name, stream, lines: fc.integer({ min: 0, max: MAX_LOG_LINES }), cursor: fc.string({ maxLength: 30 }) },
  { requiredKeys: ["node", "stream", "lines"] },
);

const logs: fc.Arbitrary<NodeLogs> = fc.record({
  node: name,
  instance: fc.string(),
  stream,
  lines: fc.array(fc.string(), { maxLength: 20 }),
  cursor: fc.string({ maxLength: 30 }),
  truncated: fc.boolean(),
});

const processStatus: fc.Arbitrary<NodeProcessStatus> = fc.record(
  {
    node: name,
    instance: fc.string(),
    state: fc.constantFrom(...STATES),
    role: fc.string(),
    pid: nat,
    startedAt: nat,
    uptimeMs: nat,
    restarts: nat,
    lastExitCode: fc.integer({ min: -255, max: 255 }),
    lastExitSignal: fc.string(),
    lastExitAt: nat,
    cpuPercent: fc.double({ min: 0, max: 6400, noNaN: true }),
    rssBytes: nat,
  },
  { requiredKeys: ["node", "instance", "state", "role", "restarts"] },
);

const scalar: fc.Arbitrary<BrokerData> = fc.oneof(
  fc.constant(B.none()),
  fc.boolean().map(B.bool),
  fc.nat().map(B.count),
  fc.integer().map(B.int),
  fc.double({ noNaN: true }).map(B.real),
  fc.string().map(B.str),
  fc.constantFrom("stdout", "stderr", "", "stdin").map(B.str),
  fc.constant(B.count(MAX_LOG_LINES + 1)),
  fc.constantFrom("Management::RUNNING", "Management::BOGUS").map(B.enumv),
);

const { value: anyData } = fc.letrec<{ value: BrokerData }>((tie) => ({
  value: fc.oneof({ depthSize: "small" }, scalar, fc.array(tie("value"), { maxLength: 14 }).map(B.vec)),
}));

/** Valid encodings with one field replaced by arbitrary data: near misses, mostly. */
function mutated<T>(valid: fc.Arbitrary<T>, encode: (v: T) => BrokerData): fc.Arbitrary<BrokerData> {
  return fc.tuple(valid, fc.nat(), anyData).map(([v, i, junk]) => {
    const d = encode(v);
    if (d.type !== "vector" || d.value.length === 0) return junk;
    const fields = [...d.value];
    fields[i % fields.length] = junk;
    return B.vec(fields);
  });
}

function decodesSafely<T>(decode: (d: BrokerData) => T, check: (v: T) => boolean, d: BrokerData): void {
  let value: T;
  try {
    value = decode(d);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return;
  }
  expect(check(value)).toBe(true);
}

describe("zmgmt record codecs", () => {
  it("round-trip every valid value", () => {
    fc.assert(
      fc.property(query, (q) => {
        expect(NodeLogsQueryCodec.decode(NodeLogsQueryCodec.encode(q), "q")).toEqual(q);
      }),
    );
    fc.assert(
      fc.property(logs, (l) => {
        expect(NodeLogsCodec.decode(NodeLogsCodec.encode(l), "l")).toEqual(l);
      }),
    );
    fc.assert(
      fc.property(processStatus, (s) => {
        expect(NodeProcessStatusCodec.decode(NodeProcessStatusCodec.encode(s), "s")).toEqual(s);
      }),
    );
  });

  it("reject malformed data with a ProtocolError and never return a value outside the schema", () => {
    const checkQuery = TypeCompiler.Compile(NodeLogsQuerySchema);
    const checkLogs = TypeCompiler.Compile(NodeLogsSchema);
    const checkStatus = TypeCompiler.Compile(NodeProcessStatusSchema);
    const runs = { numRuns: 400 };
    fc.assert(
      fc.property(
        fc.oneof(
          anyData,
          mutated(query, (q) => NodeLogsQueryCodec.encode(q)),
        ),
        (d) =>
          decodesSafely(
            (x) => NodeLogsQueryCodec.decode(x, "q"),
            (v) => checkQuery.Check(v),
            d,
          ),
      ),
      runs,
    );
    fc.assert(
      fc.property(
        fc.oneof(
          anyData,
          mutated(logs, (l) => NodeLogsCodec.encode(l)),
        ),
        (d) =>
          decodesSafely(
            (x) => NodeLogsCodec.decode(x, "l"),
            (v) => checkLogs.Check(v),
            d,
          ),
      ),
      runs,
    );
    fc.assert(
      fc.property(
        fc.oneof(
          anyData,
          mutated(processStatus, (s) => NodeProcessStatusCodec.encode(s)),
        ),
        (d) =>
          decodesSafely(
            (x) => NodeProcessStatusCodec.decode(x, "s"),
            (v) => checkStatus.Check(v),
            d,
          ),
      ),
      runs,
    );
    fc.assert(
      fc.property(anyData, (d) =>
        decodesSafely(
          (x) => NodeNamesCodec.decode(x, "n"),
          (v) => v.every((n) => n.length > 0),
          d,
        ),
      ),
      runs,
    );
  });

  it("name the limit a request breaks", () => {
    const encode = (lines: number, s = "stdout", node = "worker-01"): BrokerData =>
      B.vec([B.str(node), B.str(s), B.count(lines), B.none()]);
    expect(NodeLogsQueryCodec.decode(encode(MAX_LOG_LINES), "q").lines).toBe(MAX_LOG_LINES);
    expect(() => NodeLogsQueryCodec.decode(encode(MAX_LOG_LINES + 1), "q")).toThrow(/q\.lines: .*5000/);
    expect(() => NodeLogsQueryCodec.decode(encode(1, "stdin"), "q")).toThrow(ProtocolError);
    expect(() => NodeLogsQueryCodec.decode(encode(1, "stdout", ""), "q")).toThrow(/q\.node/);
    expect(() => NodeNamesCodec.decode(B.set([B.str("")]), "n")).toThrow(/invalid node name/);
  });
});
