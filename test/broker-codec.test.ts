import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { B, type BrokerData } from "../src/broker/data.js";
import {
  decodeDataText,
  encodeDataPayload,
  encodeDataText,
  encodeDataTextByParts,
  dataEquals,
  canonicalSet,
  canonicalTable,
} from "../src/broker/codec.js";
import { ProtocolError } from "../src/broker/errors.js";
import {
  dataToEvent,
  decodeDataMessage,
  decodeHandshake,
  encodeDataMessage,
  encodeEventMessage,
  eventToData,
} from "../src/broker/messages.js";

// Every example is quoted from the wire-protocol notes, section 2 (encoder output column).
const VECTORS: Array<[BrokerData, string]> = [
  [B.none(), '{"@data-type":"none","data":{}}'],
  [B.bool(true), '{"@data-type":"boolean","data":true}'],
  [B.count(42), '{"@data-type":"count","data":42}'],
  [B.int(-7), '{"@data-type":"integer","data":-7}'],
  [B.real(-7.5), '{"@data-type":"real","data":-7.500000}'],
  [B.str("Hello World!"), '{"@data-type":"string","data":"Hello World!"}'],
  [B.addr("192.128.4.4"), '{"@data-type":"address","data":"192.128.4.4"}'],
  [B.addr("2001:db8::"), '{"@data-type":"address","data":"2001:db8::"}'],
  [B.subnet("192.128.4.0/24"), '{"@data-type":"subnet","data":"192.128.4.0/24"}'],
  [B.port(8080, "tcp"), '{"@data-type":"port","data":"8080/tcp"}'],
  [B.port(53, "udp"), '{"@data-type":"port","data":"53/udp"}'],
  [B.port(0, "icmp"), '{"@data-type":"port","data":"0/icmp"}'],
  [B.port(7, "unknown"), '{"@data-type":"port","data":"7/?"}'],
  [B.time(Date.UTC(2022, 3, 10, 7, 0, 0)), '{"@data-type":"timestamp","data":"2022-04-10T07:00:00.000"}'],
  [B.span(1_500_000_000n), '{"@data-type":"timespan","data":"1500ms"}'],
  [B.span(1_000n), '{"@data-type":"timespan","data":"1us"}'],
  [B.span(42_000_000_000n), '{"@data-type":"timespan","data":"42s"}'],
  [B.span(0n), '{"@data-type":"timespan","data":"0s"}'],
  [B.enumv("Supervisor::WORKER"), '{"@data-type":"enum-value","data":"Supervisor::WORKER"}'],
  [
    B.vec([B.int(1), B.count(2), B.str("three")]),
    '{"@data-type":"vector","data":[{"@data-type":"integer","data":1},{"@data-type":"count","data":2},{"@data-type":"string","data":"three"}]}',
  ],
  [B.set([B.int(1), B.int(2)]), '{"@data-type":"set","data":[{"@data-type":"integer","data":1},{"@data-type":"integer","data":2}]}'],
  [
    B.table([[B.str("a-key"), B.int(1)]]),
    '{"@data-type":"table","data":[{"key":{"@data-type":"string","data":"a-key"},"value":{"@data-type":"integer","data":1}}]}',
  ],
  [B.vec([]), '{"@data-type":"vector","data":[]}'],
  [B.set([]), '{"@data-type":"set","data":[]}'],
  [B.table([]), '{"@data-type":"table","data":[]}'],
];

describe("Broker data codec", () => {
  it.each(VECTORS.map(([d, t]) => [t, d] as const))("encodes and decodes %s", (text, data) => {
    expect(encodeDataText(data)).toBe(text);
    expect(dataEquals(decodeDataText(text), data)).toBe(true);
  });

  it("accepts the decoder-only forms Broker accepts", () => {
    expect(decodeDataText('{"@data-type":"none","data":[1,2]}')).toEqual(B.none());
    expect(decodeDataText('{"@data-type":"port","data":"80"}')).toEqual(B.port(80, "tcp"));
    expect(decodeDataText('{"@data-type":"port","data":"80/sctp"}')).toEqual(B.port(80, "unknown"));
    expect(decodeDataText('{"@data-type":"timestamp","data":"1970-01-01T01:42:42"}')).toEqual(B.time(6162000));
    expect(decodeDataText('{"@data-type":"timespan","data":"2min"}')).toEqual(B.span(120_000_000_000n));
    expect(decodeDataText('{"@data-type":"timespan","data":"1h"}')).toEqual(B.span(3_600_000_000_000n));
    // Duplicates in a set collapse.
    expect(decodeDataText('{"@data-type":"set","data":[{"@data-type":"count","data":1},{"@data-type":"count","data":1}]}')).toEqual(
      B.set([B.count(1)]),
    );
  });

  it.each([
    ["not JSON", "{"],
    ["unknown type", '{"@data-type":"float","data":1}'],
    ["boolean as string", '{"@data-type":"boolean","data":"true"}'],
    ["negative count", '{"@data-type":"count","data":-1}'],
    ["fractional integer", '{"@data-type":"integer","data":1.5}'],
    ["bad address", '{"@data-type":"address","data":"999.1.1.1"}'],
    ["bad subnet", '{"@data-type":"subnet","data":"10.0.0.0/33"}'],
    ["port out of range", '{"@data-type":"port","data":"70000/tcp"}'],
    ["timespan in days", '{"@data-type":"timespan","data":"1d"}'],
    ["bad timestamp", '{"@data-type":"timestamp","data":"yesterday"}'],
    ["table without value", '{"@data-type":"table","data":[{"key":{"@data-type":"none","data":{}}}]}'],
    ["missing data", '{"@data-type":"string"}'],
    ["array at top", "[]"],
  ])("rejects %s with a typed error", (_label, text) => {
    expect(() => decodeDataText(text)).toThrow(ProtocolError);
  });

  it("refuses absurd nesting without blowing the stack", () => {
    let text = '{"@data-type":"none","data":{}}';
    for (let i = 0; i < 10_000; i++) text = `{"@data-type":"vector","data":[${text}]}`;
    expect(() => decodeDataText(text)).toThrow(ProtocolError);
  });

  it("refuses absurdly nested data messages, typed or bare arrays, without blowing the stack", () => {
    let typed = '{"@data-type":"none","data":{}}';
    for (let i = 0; i < 20_000; i++) typed = `{"@data-type":"vector","data":[${typed}]}`;
    let bare = "[]";
    for (let i = 0; i < 1_000_000; i++) bare = `[${bare}]`;
    for (const data of [`[${typed}]`, bare]) {
      expect(() => decodeDataMessage(`{"type":"data-message","topic":"x","@data-type":"vector","data":${data}}`)).toThrow(ProtocolError);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Property tests: any value survives encode/decode, and no input text makes the decoder
// throw anything but a ProtocolError.

const scalar: fc.Arbitrary<BrokerData> = fc.oneof(
  fc.constant(B.none()),
  fc.boolean().map(B.bool),
  fc.nat({ max: Number.MAX_SAFE_INTEGER }).map(B.count),
  fc.maxSafeInteger().map(B.int),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }).map((v) => B.real(Math.round(v * 1e6) / 1e6)),
  fc.string({ unit: "binary" }).map(B.str),
  fc.ipV4().map(B.addr),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, l]) => B.subnet(`${a}/${l}`)),
  fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.constantFrom("tcp", "udp", "icmp", "unknown" as const)).map(([n, p]) => B.port(n, p)),
  fc.integer({ min: 0, max: 253402300799999 }).map(B.time),
  fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }).map(B.span),
  fc.string().map((s) => B.enumv(s)),
);

const { value: anyData } = fc.letrec<{ value: BrokerData }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 4 }).map(B.vec),
    fc.array(tie("value"), { maxLength: 4 }).map((items) => B.set(canonicalSet(items))),
    fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((e) => B.table(canonicalTable(e))),
  ),
}));

describe("Broker data codec properties", () => {
  it("prints every value byte for byte as the reference encoder does (the native-stringify path and its fallback for reals)", () => {
    fc.assert(
      fc.property(anyData, (d) => {
        const reference = encodeDataTextByParts(d);
        expect(encodeDataText(d)).toBe(reference);
        expect(`{"@data-type":${JSON.stringify(d.type)},"data":${encodeDataPayload(d)}}`).toBe(reference);
      }),
      { numRuns: 2000 },
    );
    // Sets and tables arrive unsorted from callers that build them; both paths sort alike.
    const unsorted = B.vec([
      B.set([B.str("b"), B.count(2), B.str("a")]),
      B.table([
        [B.str("z"), B.none()],
        [B.count(1), B.bool(true)],
      ]),
    ]);
    expect(encodeDataText(unsorted)).toBe(encodeDataTextByParts(unsorted));
    expect(encodeDataText(unsorted)).toContain('[{"@data-type":"count","data":2},{"@data-type":"string","data":"a"}');
  });

  it("round-trips every value", () => {
    fc.assert(
      fc.property(anyData, (d) => {
        const text = encodeDataText(d);
        const back = decodeDataText(text);
        expect(dataEquals(back, d)).toBe(true);
        expect(encodeDataText(back)).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips data messages and events", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), fc.array(anyData, { maxLength: 4 }), (topic, name, args) => {
        const msg = decodeDataMessage(encodeEventMessage(topic, { name, args }));
        expect(msg.topic).toBe(topic);
        const ev = dataToEvent(msg.data);
        expect(ev.name).toBe(name);
        expect(ev.args.length).toBe(args.length);
        ev.args.forEach((a, i) => expect(dataEquals(a, args[i]!)).toBe(true));
      }),
      { numRuns: 200 },
    );
  });

  it("throws only ProtocolError on arbitrary text", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          anyData.map(encodeDataText).map((t) => t.slice(0, -3)),
        ),
        (text) => {
          try {
            decodeDataMessage(text);
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
          try {
            decodeDataText(text);
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("throws only ProtocolError on arbitrary JSON shaped like data", () => {
    const jsonish = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: "small" },
        fc.jsonValue(),
        fc.record({
          "@data-type": fc.constantFrom(...["none", "count", "vector", "set", "table", "port", "timespan", "x"]),
          data: tie("v"),
        }),
        fc.array(tie("v"), { maxLength: 3 }),
        fc.record({ key: tie("v"), value: tie("v") }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.string(), jsonish, (topic, body) => {
        const text = JSON.stringify({
          type: "data-message",
          topic,
          ...(typeof body === "object" && body ? body : { "@data-type": "count", data: body }),
        });
        try {
          decodeDataMessage(text);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("envelopes", () => {
  it("encodes data messages with Broker's key order", () => {
    expect(encodeDataMessage("/foo/bar", B.count(1))).toBe('{"type":"data-message","topic":"/foo/bar","@data-type":"count","data":1}');
  });

  it("decodes zeek-client's get-nodes request exactly as captured", () => {
    const captured =
      '{"@data-type": "vector", "data": [{"@data-type": "count", "data": 1}, {"@data-type": "count", "data": 1}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "Management::Controller::API::get_nodes_request"}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "f38a0ade-e83a-11f1-9bdd-02fc00000001"}]}]}], "topic": "zeek/management/controller", "type": "data-message"}';
    const msg = decodeDataMessage(captured);
    expect(msg.topic).toBe("zeek/management/controller");
    const ev = dataToEvent(msg.data);
    expect(ev).toEqual({ name: "Management::Controller::API::get_nodes_request", args: [B.str("f38a0ade-e83a-11f1-9bdd-02fc00000001")] });
  });

  it("reports a missing topic like Zeek does", () => {
    expect(() => decodeDataMessage('{"type":"data-message","@data-type":"count","data":1}')).toThrow("no topic in top-level JSON object");
    expect(() => decodeDataMessage("nope")).toThrow("failed to decode JSON object");
  });

  it("accepts events with and without metadata, rejects non-events", () => {
    const withMeta = eventToData({ name: "x", args: [], metadata: [[1, B.time(0)]] });
    expect(dataToEvent(withMeta).metadata).toEqual([[1, B.time(0)]]);
    expect(() => dataToEvent(B.vec([B.count(1), B.count(2), B.vec([B.str("x"), B.vec([])])]))).toThrow("failed to create Zeek event");
    expect(() => dataToEvent(B.count(1))).toThrow(ProtocolError);
  });

  it("validates the handshake", () => {
    expect(decodeHandshake('["zeek/management/controller"]')).toEqual(["zeek/management/controller"]);
    expect(() => decodeHandshake('{"a":1}')).toThrow("subscriptions not an array");
    expect(() => decodeHandshake("[1]")).toThrow("individual subscription not a string");
  });
});
