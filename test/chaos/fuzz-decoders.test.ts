// Hostile input, in process: every decoder, every event signature and record codec, the
// hub's frame intake and the supervisor's control handler get fast-check-generated
// garbage, near-misses and oversized input. The only failure they may report is a
// ProtocolError; anything else (TypeError, RangeError, plain Error, a hang) is a bug.

import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { B, BROKER_TYPES, type BrokerData } from "../../src/broker/data.js";
import { decodeData, decodeDataText, decodeTyped } from "../../src/broker/codec.js";
import { ProtocolError } from "../../src/broker/errors.js";
import { DEFAULT_MAX_FRAME_BYTES, Hub } from "../../src/broker/hub.js";
import {
  dataToEvent,
  decodeDataMessage,
  decodeHandshake,
  decodeServerFrame,
  encodeHandshake,
  eventToData,
} from "../../src/broker/messages.js";
import type { Codec } from "../../src/broker/schema.js";
import { silentLogger } from "../../src/management/log.js";
import * as Records from "../../src/management/records.js";
import {
  NodeExitCodec,
  SUPERVISOR_RESPONSE_TOPIC,
  SUPERVISOR_TOPIC,
  SupervisedNodeConfigCodec,
  SupervisedNodeStatusCodec,
  SupervisorApi,
} from "../../src/supervisor/api.js";
import { ProcessManager } from "../../src/supervisor/process-manager.js";
import { AGENT_PRINCIPAL, Supervisor } from "../../src/supervisor/supervisor.js";
import {
  ALL_SPECS,
  brokerData,
  frameText,
  hostileArgs,
  hostileEvent,
  hostileFrame,
  mutateArgs,
  mutation,
  replaceAt,
  validFor,
} from "./arbitraries.js";

/** Cases run per test, and per decoder or signature inside it. */
const counts = new Map<string, number>();
const targets = new Set<string>();
let group = "";

/** Runs one case; a ProtocolError is a proper rejection, anything else fails the property. */
function survives(target: string, run: () => unknown): true {
  counts.set(group, (counts.get(group) ?? 0) + 1);
  targets.add(target);
  try {
    run();
  } catch (err) {
    if (err instanceof ProtocolError) return true;
    throw err;
  }
  return true;
}

afterAll(() => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const lines = [...counts].map(([k, v]) => `  ${v} ${k}`).join("\n");
  console.log(`fuzz (in-process): ${total} cases against ${targets.size} decoders, signatures and handlers\n${lines}`);
});

const TOPICS = ["zeek/management/controller", "zeek/management/agent/instance-1", "zeek/management/node", SUPERVISOR_TOPIC];

const RECORD_CODECS: Array<[string, Codec<unknown>]> = [
  ...Object.entries(Records)
    .filter(([k, v]) => k.endsWith("Codec") && typeof v === "object" && v !== null && "decode" in v)
    .map(([k, v]) => [k, v as Codec<unknown>] as [string, Codec<unknown>]),
  ["SupervisedNodeConfigCodec", SupervisedNodeConfigCodec],
  ["SupervisedNodeStatusCodec", SupervisedNodeStatusCodec],
  ["NodeExitCodec", NodeExitCodec],
];

describe("decoders reject hostile input with a ProtocolError and nothing else", () => {
  it("the frame decoders (handshake, data message, server frame, data text) reject any text with a ProtocolError (4 × 3000 cases)", () => {
    group = "frame decoders";
    const anyText = fc.oneof(hostileFrame(TOPICS), fc.string({ unit: "binary", maxLength: 40 }), fc.json().map(encodeHandshakeLike));
    fc.assert(
      fc.property(anyText, (t) => {
        survives("decodeHandshake", () => decodeHandshake(t));
        survives("decodeDataMessage", () => decodeDataMessage(t));
        survives("decodeServerFrame", () => decodeServerFrame(t));
        return survives("decodeDataText", () => decodeDataText(t));
      }),
      { numRuns: 3000 },
    );
  });

  it("decodeData and decodeTyped reject any JSON value with a ProtocolError (2 × 3000 cases)", () => {
    group = "data decoders";
    const typed = fc.record({
      "@data-type": fc.oneof(fc.constantFrom(...BROKER_TYPES), fc.string()),
      data: fc.jsonValue({ maxDepth: 4 }),
    });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 5 }), typed, fc.anything({ maxDepth: 3 })), (json) => {
        survives("decodeData", () => decodeData(json));
        const o = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
        // eslint-disable-next-line @typescript-eslint/no-base-to-string -- fuzz input: whatever the value stringifies to is the point
        return survives("decodeTyped", () => decodeTyped(String(o["@data-type"] ?? "vector"), o["data"] ?? json));
      }),
      { numRuns: 3000 },
    );
  });

  it("dataToEvent rejects any Broker value that is not a Zeek event with a ProtocolError (3000 cases)", () => {
    group = "dataToEvent";
    const nearEvent = fc
      .tuple(hostileEvent, fc.array(fc.nat(), { maxLength: 4 }), brokerData)
      .map(([e, path, by]) => replaceAt(eventToData(e), path, by));
    fc.assert(
      fc.property(fc.oneof(brokerData, nearEvent), (d) => survives("dataToEvent", () => dataToEvent(d))),
      { numRuns: 3000 },
    );
  });

  it(`every event signature of the controller, agent, node and supervisor APIs (${ALL_SPECS.length} events × 400 cases) accepts well-formed arguments and rejects mutated or random ones only with a ProtocolError, also after a trip over the wire`, () => {
    group = "event signatures";
    for (const { api, spec } of ALL_SPECS) {
      const target = `${api} ${spec.name.split("::").pop()}`;
      fc.assert(
        fc.property(hostileArgs(spec), ({ how, args }) => {
          const event = { name: spec.name, args };
          if (how === "valid") {
            counts.set(group, (counts.get(group) ?? 0) + 1);
            spec.parse(event);
            return true;
          }
          survives(target, () => spec.parse(event));
          return survives(`${target} (wire)`, () => spec.parse(dataToEvent(decodeDataMessage(frameText("t", eventToData(event))).data)));
        }),
        { numRuns: 400 },
      );
    }
  });

  it(`every record codec (${RECORD_CODECS.length}) rejects malformed data with a ProtocolError (× 600 cases)`, () => {
    group = "record codecs";
    for (const [name, codec] of RECORD_CODECS) {
      const valid = validFor(codec);
      const mutated = fc.tuple(valid, mutation).map(([d, m]) => mutateArgs([d], m)[0] ?? B.none());
      fc.assert(
        fc.property(fc.oneof(valid, mutated, brokerData), (d: BrokerData) => survives(name, () => codec.decode(d, "data"))),
        { numRuns: 600 },
      );
    }
  });

  it("oversized input just under the frame limit (a 4 MB table, set, vector and string) decodes in bounded time", () => {
    group = "oversized frames";
    const limit = DEFAULT_MAX_FRAME_BYTES;
    const entry = (i: number) => `{"key":{"@data-type":"count","data":${i}},"value":{"@data-type":"none","data":{}}}`;
    const item = (i: number) => `{"@data-type":"count","data":${i}}`;
    const fill = (make: (i: number) => string): string => {
      const parts: string[] = [];
      let size = 0;
      for (let i = 0; size < limit - 200; i++) {
        const p = make(i);
        parts.push(p);
        size += p.length + 1;
      }
      return parts.slice(0, -1).join(",");
    };
    const frames = {
      table: `{"type":"data-message","topic":"t","@data-type":"table","data":[${fill(entry)}]}`,
      set: `{"type":"data-message","topic":"t","@data-type":"set","data":[${fill((i) => item(limit - i))}]}`,
      vector: `{"type":"data-message","topic":"t","@data-type":"vector","data":[${fill(item)}]}`,
      string: `{"type":"data-message","topic":"t","@data-type":"string","data":"${"x".repeat(limit - 100)}"}`,
    };
    const ms: Record<string, number> = {};
    for (const [kind, frame] of Object.entries(frames)) {
      expect(frame.length).toBeLessThanOrEqual(limit);
      const started = performance.now();
      survives(`oversized ${kind}`, () => decodeDataMessage(frame));
      ms[kind] = performance.now() - started;
    }
    // One such frame must not hold a process's event loop for long. Measured against a
    // plain vector of the same size, so that a busy machine does not fail the check but
    // a quadratic decoder (tens of seconds here) does.
    const budget = Math.max(10 * ms["vector"]!, 1000);
    for (const kind of ["table", "set", "string"]) {
      expect({ kind, ms: Math.round(ms[kind]!), ok: ms[kind]! < budget }).toMatchObject({ kind, ok: true });
    }
  });

  it("the hub answers any hostile frame with at most an error message and keeps the connection, also for frames over its limit (3000 cases)", () => {
    group = "hub frame intake";
    const hub = new Hub({ maxFrameBytes: 64 * 1024 });
    const sent: string[] = [];
    let closed = false;
    const conn = hub.accept({ send: (t) => sent.push(t), close: () => (closed = true) });
    conn.receive(encodeHandshake(TOPICS));
    const seen: string[] = [];
    hub.local(TOPICS, (d) => seen.push(d.topic));
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 20, arbitrary: hostileFrame(TOPICS) },
          { weight: 1, arbitrary: fc.nat({ max: 4 }).map((n) => "x".repeat(64 * 1024 + 1 + n)) },
        ),
        (t) => {
          const before = sent.length;
          survives("hub frame intake", () => conn.receive(t));
          expect(closed).toBe(false);
          // Nothing or exactly one error frame goes back to the sender.
          expect(sent.length - before).toBeLessThanOrEqual(1);
          for (const f of sent.slice(before)) expect(JSON.parse(f)).toMatchObject({ type: "error" });
          return true;
        },
      ),
      { numRuns: 3000 },
    );
    expect(hub.peers).toHaveLength(1);
  });

  it("the supervisor's control handler survives any hostile frame from its own agent and still answers a status request after each (1500 cases)", async () => {
    group = "supervisor control handler";
    const dir = mkdtempSync(join(tmpdir(), "zmgmt-chaos-sup-"));
    // Revival is pushed far out: generated create requests must not keep spawning.
    const processes = new ProcessManager({ initialDelayMs: 600_000, maxAttempts: 0 });
    const hub = new Hub();
    const supervisor = new Supervisor(hub, processes, silentLogger());
    const sent: string[] = [];
    const conn = hub.accept({ send: (t) => sent.push(t), close: () => undefined, principal: AGENT_PRINCIPAL });
    conn.receive(encodeHandshake([SUPERVISOR_RESPONSE_TOPIC]));
    const requests = ALL_SPECS.filter(({ api, spec }) => api === "supervisor" && spec.name.endsWith("_request")).map(({ spec }) => spec);
    const supervisorEvent = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.constantFrom(...requests).chain((spec) => hostileArgs(spec).map(({ args }) => ({ name: spec.name, args }))),
      },
      { weight: 1, arbitrary: hostileEvent },
    );
    try {
      let probe = 0;
      fc.assert(
        fc.property(supervisorEvent, (event) => {
          // A well-formed create would run a program: only ever a missing one, in a scratch directory.
          if (event.name === SupervisorApi.create_request.name) {
            try {
              const [reqid, cfg] = SupervisorApi.create_request.parse(event);
              const safe = { ...cfg, command: ["/nonexistent/zmgmt-chaos-node"], directory: join(dir, "n") };
              delete safe.cpuAffinity;
              event = SupervisorApi.create_request.make(reqid, safe);
            } catch {
              // malformed: sent as generated
            }
          }
          survives("supervisor control handler", () => conn.receive(frameText(SUPERVISOR_TOPIC, eventToData(event))));
          const id = `probe-${probe++}`;
          conn.receive(frameText(SUPERVISOR_TOPIC, eventToData(SupervisorApi.status_request.make(id, ""))));
          const reply = sent.findLast((f) => f.includes(SupervisorApi.status_response.name));
          expect(reply).toContain(`"${id}"`);
          return true;
        }),
        { numRuns: 1500 },
      );
    } finally {
      await processes.shutdown();
      supervisor.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Handshake-shaped text: a JSON array of whatever the generator produced. */
function encodeHandshakeLike(json: string): string {
  return `[${json}]`;
}
