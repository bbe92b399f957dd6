// Hostile input against live processes: a real controller and a real agent (with its
// supervisor) receive fast-check-generated WebSocket frames: garbage, wrong shapes, every
// request event with wrong or random arguments, unknown events, huge strings, deep
// nesting, frames over the hub's limit and over the transport's hard cap, and random
// configurations through stage_configuration. After every batch each process must still
// answer a valid request correctly, and in the end all of them must still be running.

import fc from "fast-check";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentApi, agentTopic } from "../../src/agent/api.js";
import { dataToEvent, decodeDataMessage, encodeEventMessage, encodeHandshake, eventToData } from "../../src/broker/messages.js";
import { CONTROLLER_TOPIC, ControllerApi } from "../../src/controller/api.js";
import { InstanceVecCodec, NodeStatusVecCodec } from "../../src/management/records.js";
import type { Configuration } from "../../src/management/types.js";
import { RawClient } from "../helpers/ws.js";
import { TEST_AGENT_MASTER_SECRET } from "../helpers/cluster.js";
import { controllerHeaders } from "../../src/management/agent-auth.js";
import { configurationArb, frameText, hostileFrame, type AnySpec } from "./arbitraries.js";
import { TestEnv, agentPid, pidAlive } from "./helpers.js";

const AGENT = "fuzz-agent";
const TOPICS = [CONTROLLER_TOPIC, agentTopic(AGENT), "zeek/management/agent/instance-1", "zeek/management/node", "zeek/supervisor"];
const BATCH = 25;

let env: TestEnv;
let controller: { pid: number; url: string };
let agent: { pid: number; url: string; stateDir: string };
const counts = new Map<string, number>();
const count = (what: string, n = 1): void => void counts.set(what, (counts.get(what) ?? 0) + n);

beforeAll(async () => {
  env = new TestEnv("zmgmt-chaos-fuzz-");
  // Short timeouts: generated deploys and restarts that wait for absent agents end quickly.
  // The handlers' log lines are the evidence below, and read-only queries log at DEBUG:
  // log everything, into one file.
  const logEnv = { ZMGMT_LOG_MAX_BYTES: "0" };
  // The fuzzer is one client sending as fast as it is answered; the per-client rate limit
  // (its own tests are in broker-limits) would answer most of it with rate_limited.
  const rate = ["--client-rate-limit", "100000"];
  const c = await env.startController({ requestTimeoutSec: 2, extraArgs: ["--log-level", "DEBUG", ...rate], env: logEnv });
  controller = { pid: c.proc.pid, url: c.url };
  const a = await env.startAgent({
    name: AGENT,
    extraArgs: ["--request-timeout", "2", "--restart-delay", "0.2", "--stop-timeout", "2", "--log-level", "DEBUG", ...rate],
    env: logEnv,
  });
  agent = { pid: a.proc.pid, url: a.url, stateDir: a.stateDir };
});

/** How many management.log lines of a process match `re`: evidence of what reached its handlers. */
function logged(dir: string, name: string, re: RegExp): number {
  return env
    .readFile(dir, "nodes", name, `management-${name}.log`)
    .split("\n")
    .filter((l) => re.test(l)).length;
}

afterAll(async () => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`fuzz (live processes): ${total} hostile frames\n${[...counts].map(([k, v]) => `  ${v} ${k}`).join("\n")}`);
  await env?.cleanup();
});

async function open(url: string, topics: string[]): Promise<RawClient> {
  // On the agent, as its controller: the fuzzing is of what the controller may send.
  const raw = await RawClient.open(url, url === agent.url ? controllerHeaders(TEST_AGENT_MASTER_SECRET, AGENT) : undefined);
  raw.send(encodeHandshake(topics));
  await raw.waitFrames(1);
  expect(JSON.parse(raw.frames[0]!)).toMatchObject({ type: "ack" });
  raw.frames.length = 0;
  return raw;
}

let probes = 0;

/** The first frame (from now on) that satisfies `pred`; woken per frame, not polled. */
async function frameMatching(raw: RawClient, pred: (f: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let seen = 0; ;) {
    const hit = raw.frames.slice(seen).find(pred);
    if (hit !== undefined) return hit;
    seen = raw.frames.length;
    try {
      await raw.waitFrames(seen + 1, Math.max(1, deadline - Date.now()));
    } catch {
      throw new Error(`no ${what} within ${timeoutMs} ms`);
    }
  }
}

/** A valid request on a fresh connection, answered correctly: the process is fine. */
async function controllerAnswers(): Promise<void> {
  const raw = await open(controller.url, [CONTROLLER_TOPIC]);
  try {
    const id = `probe-${probes++}`;
    raw.send(encodeEventMessage(CONTROLLER_TOPIC, ControllerApi.get_instances_request.make(id)));
    const frame = await frameMatching(
      raw,
      (f) => f.includes(ControllerApi.get_instances_response.name) && f.includes(id),
      10_000,
      `answer to ${id}`,
    );
    const [reqid, result] = ControllerApi.get_instances_response.parse(dataToEvent(decodeDataMessage(frame).data));
    expect(reqid).toBe(id);
    expect(result.success).toBe(true);
    InstanceVecCodec.decode(result.data!, "data");
  } finally {
    raw.close();
  }
}

async function agentAnswers(): Promise<void> {
  const raw = await open(agent.url, [agentTopic(AGENT)]);
  try {
    const id = `probe-${probes++}`;
    raw.send(encodeEventMessage(agentTopic(AGENT), AgentApi.get_nodes_request.make(id)));
    const frame = await frameMatching(
      raw,
      (f) => f.includes(AgentApi.get_nodes_response.name) && f.includes(id),
      10_000,
      `answer to ${id}`,
    );
    const [reqid, result] = AgentApi.get_nodes_response.parse(dataToEvent(decodeDataMessage(frame).data));
    expect(reqid).toBe(id);
    expect(result.success).toBe(true);
    expect(NodeStatusVecCodec.decode(result.data!, "data").find((n) => n.mgmtRole === "AGENT")).toMatchObject({
      node: AGENT,
      state: "RUNNING",
    });
  } finally {
    raw.close();
  }
}

/** Generated deploys may name this agent's instance; their nodes are dropped so nothing runs. */
function harmless(frame: string): string {
  if (!frame.includes(AgentApi.deploy_request.name)) return frame;
  try {
    const msg = decodeDataMessage(frame);
    const [reqid, cfg, force] = AgentApi.deploy_request.parse(dataToEvent(msg.data));
    const safe: Configuration = { ...cfg, nodes: cfg.nodes.filter((n) => n.instance !== AGENT) };
    return encodeEventMessage(msg.topic, AgentApi.deploy_request.make(reqid, safe, force));
  } catch {
    return frame;
  }
}

/** Sends batches of hostile frames over one connection, checking the target after each. */
async function fuzz(
  url: string,
  what: string,
  answers: () => Promise<void>,
  runs: number,
  topics: string[],
  focus: AnySpec[],
): Promise<void> {
  const raw = await open(url, topics);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame(topics, focus), { minLength: BATCH, maxLength: BATCH }), async (frames) => {
        for (const f of frames) raw.send(harmless(f));
        count(what, frames.length);
        await answers();
        // Our own connection is still open: bad input is answered, not punished.
        expect(raw.closed).toBeUndefined();
        raw.frames.length = 0;
        return true;
      }),
      { numRuns: runs },
    );
  } finally {
    raw.close();
  }
}

/** Frames no decoder accepts each get an error message back, and nothing else happens. */
async function garbageIsAnswered(url: string, what: string, runs: number): Promise<void> {
  const raw = await open(url, []);
  try {
    const garbage = fc.oneof(
      fc.string({ unit: "binary", maxLength: 50 }).filter((s) => !isJson(s)),
      fc
        .jsonValue()
        .map((v) => JSON.stringify(v))
        .filter((s) => !s.startsWith("{")),
      fc.constantFrom(
        "{",
        "{}",
        '{"topic":1}',
        '{"topic":"t"}',
        '{"topic":"t","@data-type":"count","data":-1}',
        '{"topic":"t","@data-type":"nope","data":0}',
      ),
    );
    await fc.assert(
      fc.asyncProperty(garbage, async (text) => {
        const before = raw.frames.length;
        raw.send(text);
        count(what);
        await raw.waitFrames(before + 1, 5000);
        expect(JSON.parse(raw.frames[before]!)).toMatchObject({ type: "error", code: "deserialization_failed" });
        return true;
      }),
      { numRuns: runs },
    );
    expect(raw.closed).toBeUndefined();
  } finally {
    raw.close();
  }
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

/** Oversized and pathological single frames; the hub limit is 4 MB, the transport's 16 MB. */
async function extremes(url: string, what: string, topic: string, answers: () => Promise<void>): Promise<void> {
  const MB = 1024 * 1024;
  const cases: Array<[string, string, "error" | "closed" | "any"]> = [
    [
      "a frame just over the hub's limit",
      `{"type":"data-message","topic":"${topic}","@data-type":"string","data":"${"x".repeat(4 * MB)}"}`,
      "error",
    ],
    ["a frame over the transport's hard cap", "y".repeat(16 * MB + 2048), "closed"],
    ["a 4 MB table, legal in size", tableFrame(topic, 4 * MB - 1024), "any"],
    ["nesting a million levels deep", "[".repeat(1_000_000) + "]".repeat(1_000_000), "error"],
    ["an event nested 60 levels deep in its arguments", frameText(topic, eventToData(nestedEvent(60))), "any"],
    ["a request with a 1 MB reqid", encodeEventMessage(topic, ControllerApi.get_instances_request.make("r".repeat(MB))), "any"],
    ["a request with a 1 MB reqid for the agent", encodeEventMessage(topic, AgentApi.get_nodes_request.make("r".repeat(MB))), "any"],
  ];
  for (const [name, frame, expected] of cases) {
    const raw = await open(url, [topic]);
    try {
      raw.send(frame);
      count(what);
      if (expected === "error") {
        // An agent greets whoever subscribes to its topic, so the error need not come first.
        const error = await frameMatching(raw, (f) => f.startsWith('{"type":"error"'), 10_000, `error message for ${name}`);
        expect({ name, frame: JSON.parse(error) as unknown }).toMatchObject({
          name,
          frame: { type: "error", code: "deserialization_failed" },
        });
        expect(raw.closed).toBeUndefined();
      } else if (expected === "closed") {
        const closed = await raw.waitClosed(10_000);
        expect({ name, code: closed.code }).toEqual({ name, code: 1009 });
      }
      await answers();
    } finally {
      raw.close();
    }
  }
}

/** A data message holding one table of `bytes` or a little less, made of small entries. */
function tableFrame(topic: string, bytes: number): string {
  const head = `{"type":"data-message","topic":"${topic}","@data-type":"table","data":[`;
  const entries: string[] = [];
  let size = head.length + 2;
  for (let i = 0; ; i++) {
    const e = `{"key":{"@data-type":"count","data":${i}},"value":{"@data-type":"none","data":{}}}`;
    if (size + e.length + 1 > bytes) break;
    entries.push(e);
    size += e.length + 1;
  }
  return `${head}${entries.join(",")}]}`;
}

function nestedEvent(depth: number): ReturnType<typeof ControllerApi.get_instances_request.make> {
  let arg: ReturnType<typeof ControllerApi.get_instances_request.make>["args"][number] = { type: "string", value: "leaf" };
  for (let i = 0; i < depth; i++) arg = { type: "vector", value: [arg] };
  return { name: ControllerApi.get_instances_request.name, args: [arg] };
}

describe("live processes survive hostile frames and keep answering", () => {
  it("a controller survives 10000 generated frames (every request event with hostile arguments, unknown events, wrong shapes, garbage) and answers a valid request after every batch of 25", async () => {
    const focus = [...Object.values(ControllerApi), ...Object.values(AgentApi)] as AnySpec[];
    await fuzz(
      controller.url,
      "controller: generated frames",
      controllerAnswers,
      400,
      [CONTROLLER_TOPIC, "zeek/management/agent/instance-1", ...TOPICS],
      focus,
    );
    expect(pidAlive(controller.pid)).toBe(true);
    // The frames got past the decoder into the request handlers, well-formed or not.
    const state = join(env.dir, "state");
    const handled = logged(state, "controller", /rx Management::Controller::API::\w+_request (?!probe-)/);
    // Malformed requests, and agent-only events from a connection that is no proven agent
    // (refused before their arguments are decoded).
    const rejected = logged(state, "controller", /ignoring malformed|: not the agent of /);
    console.log(`controller handled ${handled} generated requests and rejected ${rejected} malformed events`);
    expect(handled).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(500);
  });

  it("a controller answers 1000 random configurations through stage_configuration, each with success or a list of errors", async () => {
    const raw = await open(controller.url, [CONTROLLER_TOPIC]);
    try {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(configurationArb, async (cfg) => {
          const id = `stage-${n++}`;
          raw.send(encodeEventMessage(CONTROLLER_TOPIC, ControllerApi.stage_configuration_request.make(id, cfg)));
          count("controller: random configurations");
          const frame = await frameMatching(
            raw,
            (f) => f.includes(ControllerApi.stage_configuration_response.name) && f.includes(`"${id}"`),
            10_000,
            `answer to ${id}`,
          );
          const [reqid, results] = ControllerApi.stage_configuration_response.parse(dataToEvent(decodeDataMessage(frame).data));
          expect(reqid).toBe(id);
          expect(results.length).toBeGreaterThan(0);
          const ok = results.length === 1 && results[0]!.success;
          if (!ok) for (const r of results) expect(r).toMatchObject({ success: false, error: expect.any(String) as unknown });
          raw.frames.length = 0;
          return true;
        }),
        { numRuns: 1000 },
      );
    } finally {
      raw.close();
    }
  });

  it("a controller answers 500 undecodable frames with an error message each and keeps the connection", async () => {
    await garbageIsAnswered(controller.url, "controller: undecodable frames", 500);
  });

  it("a controller survives oversized frames (over the hub limit: an error; over the transport cap: that connection closes), a 4 MB table, a million-deep nesting and a 1 MB reqid", async () => {
    await extremes(controller.url, "controller: extreme frames", CONTROLLER_TOPIC, controllerAnswers);
    expect(pidAlive(controller.pid)).toBe(true);
  });

  it("an agent survives 10000 generated frames on its topics and answers get_nodes correctly after every batch of 25", async () => {
    const focus = Object.values(AgentApi).filter((spec) => spec.name.endsWith("_request")) as AnySpec[];
    await fuzz(agent.url, "agent: generated frames", agentAnswers, 400, [agentTopic(AGENT), ...TOPICS], focus);
    expect(pidAlive(agent.pid)).toBe(true);
    const handled = logged(agent.stateDir, AGENT, /rx Management::Agent::API::\w+_request (?!probe-)/);
    const rejected = logged(agent.stateDir, AGENT, /cannot handle/);
    console.log(`agent handled ${handled} generated requests and rejected ${rejected} malformed ones`);
    expect(handled).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(500);
  });

  it("an agent answers 500 undecodable frames with an error message each, survives extreme frames, and neither it nor its supervisor restarted", async () => {
    const before = agentPid(env.dir, AGENT);
    await garbageIsAnswered(agent.url, "agent: undecodable frames", 500);
    await extremes(agent.url, "agent: extreme frames", agentTopic(AGENT), agentAnswers);
    expect(pidAlive(agent.pid)).toBe(true);
    expect(agentPid(env.dir, AGENT)).toBe(before);
  });
});
