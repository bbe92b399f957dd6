// Fuzzing the ways in that agent identity opened: the upgrade headers an agent proves its
// name with, and hellos of every shape over connections with and without that proof. A
// real controller (in-process, on a real socket) keeps its one real agent throughout.

import fc from "fast-check";
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { B, type BrokerData } from "../src/broker/data.js";
import { encodeEventMessage } from "../src/broker/messages.js";
import { AgentApi, agentTopic } from "../src/agent/api.js";
import { CONTROLLER_TOPIC } from "../src/controller/api.js";
import {
  AGENT_NAME_HEADER,
  AGENT_SECRET_HEADER,
  CONTROLLER_PROOF_HEADER,
  agentHeaders,
  controllerHeaders,
  controllerProof,
  instanceSecret,
  secretMatches,
  verifyAgent,
  verifyController,
} from "../src/management/agent-auth.js";
import {
  Cleanups,
  DialingAgent,
  HARNESS_MASTER_SECRET,
  TestClient,
  a2cInstance,
  makeConfig,
  node,
  startTestController,
  waitFor,
  type TestController,
} from "./controller-harness.js";
import { RawClient } from "./helpers/ws.js";

function request(headers: Record<string, string | string[] | undefined>): IncomingMessage {
  return { headers, socket: {} } as unknown as IncomingMessage;
}

const MASTER = "fuzz-master-secret-0123456789abcdef";

describe("agent credentials (properties)", () => {
  it("admit exactly the secret derived for the claimed name, and never echo a secret", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.oneof(
          fc.string(),
          fc.string({
            unit: fc.constantFrom("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"),
            minLength: 64,
            maxLength: 64,
          }),
        ),
        fc.string({ minLength: 1 }),
        (name, presented, other) => {
          const verdict = verifyAgent(request(agentHeaders(name, presented)), MASTER);
          const valid = presented === instanceSecret(MASTER, name);
          expect(verdict.kind).toBe(valid ? "agent" : "refused");
          if (verdict.kind === "refused") {
            expect(verdict.message).not.toContain(MASTER);
            expect(verdict.message).not.toContain(instanceSecret(MASTER, name));
          }
          // One instance's secret never proves another name.
          if (other !== name) expect(secretMatches(MASTER, other, instanceSecret(MASTER, name))).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never throw on malformed headers, and take no claim without a name as an agent", () => {
    const headerValue = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
    fc.assert(
      fc.property(headerValue, headerValue, fc.option(fc.string({ minLength: 16 }), { nil: undefined }), (name, secret, master) => {
        const verdict = verifyAgent(request({ [AGENT_NAME_HEADER]: name, [AGENT_SECRET_HEADER]: secret }), master);
        if (name === undefined) expect(verdict.kind).toBe("client");
        if (master === undefined) expect(verdict.kind).not.toBe("agent");
      }),
      { numRuns: 300 },
    );
  });
});

describe("the controller's proof to an agent it dials (properties)", () => {
  const hex64 = fc.string({
    unit: fc.constantFrom("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"),
    minLength: 64,
    maxLength: 64,
  });

  it("admits exactly the proof derived for the agent's own instance, and never echoes a proof or secret", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), fc.oneof(fc.string(), hex64), (instance, other, presented) => {
        const secret = instanceSecret(MASTER, instance);
        const guard = { kind: "secret", secret } as const;
        const genuine = verifyController(request(controllerHeaders(MASTER, instance)), instance, guard);
        expect(genuine.kind).toBe("controller");
        // A proof for another instance, or the instance secret itself, proves nothing.
        if (other !== instance) expect(verifyController(request(controllerHeaders(MASTER, other)), instance, guard).kind).toBe("refused");
        expect(verifyController(request({ [CONTROLLER_PROOF_HEADER]: secret }), instance, guard).kind).toBe("refused");
        const verdict = verifyController(request({ [CONTROLLER_PROOF_HEADER]: presented }), instance, guard);
        expect(verdict.kind).toBe(presented === controllerProof(secret) ? "controller" : "refused");
        if (verdict.kind === "refused") {
          if (presented.length >= 8) expect(verdict.message).not.toContain(presented);
          expect(verdict.message).not.toContain(secret);
          expect(verdict.message).not.toContain(controllerProof(secret));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on malformed headers; without the header a connection is another peer, never the controller", () => {
    const headerValue = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
    fc.assert(
      fc.property(headerValue, fc.string({ minLength: 1 }), (value, instance) => {
        const guard = { kind: "secret", secret: instanceSecret(MASTER, instance) } as const;
        const verdict = verifyController(request({ [CONTROLLER_PROOF_HEADER]: value }), instance, guard);
        if ((Array.isArray(value) ? value[0] : value) === undefined) expect(verdict.kind).toBe("other");
        else expect(["controller", "refused"]).toContain(verdict.kind);
        // A certificate guard ignores the header: only a verified certificate counts.
        expect(verifyController(request({ [CONTROLLER_PROOF_HEADER]: value }), instance, { kind: "certificate" }).kind).toBe("other");
      }),
      { numRuns: 300 },
    );
  });
});

describe("hellos against a live controller (fuzzed)", () => {
  const cleanups = new Cleanups();
  let ctl: TestController;
  let client: TestClient;
  let agent: DialingAgent;

  beforeAll(async () => {
    ctl = await startTestController(cleanups, { requestTimeoutMs: 2000 });
    client = await TestClient.connect(ctl.url, cleanups);
    agent = new DialingAgent("agent-a");
    await agent.attach(ctl.url, cleanups);
    await waitFor(async () => (await client.instances()).some((i) => i.name === "agent-a"), "agent-a to check in");
    const config = makeConfig("fuzz-1", [a2cInstance("agent-a")], [node("manager", "agent-a", "MANAGER")]);
    expect((await client.stage(config)).every((r) => r.success)).toBe(true);
    expect((await client.deploy()).every((r) => r.success)).toBe(true);
  });
  afterAll(() => cleanups.run());

  const credentials = fc.oneof(
    fc.constant(undefined),
    fc.record({ name: fc.constantFrom("agent-a", "agent-b", ""), secret: fc.option(fc.string(), { nil: undefined }) }),
    // A genuine secret, but for another instance than the hellos claim.
    fc.constant({ name: "agent-b", secret: instanceSecret(HARNESS_MASTER_SECRET, "agent-b") }),
    // agent-a's real secret on a second connection: only the one-live-agent rule stands in the way.
    fc.constant({ name: "agent-a", secret: instanceSecret(HARNESS_MASTER_SECRET, "agent-a") }),
  );
  const arg: fc.Arbitrary<BrokerData> = fc.oneof(
    fc.constantFrom("agent-a", "agent-b").map(B.str),
    fc.string().map(B.str),
    fc.nat().map(B.count),
    fc.boolean().map(B.bool),
    fc.constant(B.count(999)),
  );
  const hello = fc.oneof(
    fc
      .record({
        instance: fc.constantFrom("agent-a", "agent-b"),
        id: fc.string(),
        connecting: fc.boolean(),
        version: fc.oneof(fc.constant(1), fc.constant(999), fc.nat()),
      })
      .map((h) => AgentApi.notify_agent_hello.make(h.instance, h.id, h.connecting, h.version)),
    fc.array(arg, { maxLength: 5 }).map((args) => ({ name: AgentApi.notify_agent_hello.name, args })),
    fc.array(arg, { maxLength: 3 }).map((args) => ({ name: AgentApi.deploy_response.name, args })),
    fc.array(arg, { maxLength: 3 }).map((args) => ({ name: AgentApi.notify_error.name, args })),
  );

  it("never detach, replace or starve the live agent", async () => {
    const welcomesBefore = agent.logic.receivedNamed(AgentApi.agent_welcome_request.name).length;
    await fc.assert(
      fc.asyncProperty(
        credentials,
        fc.array(fc.tuple(fc.constantFrom(CONTROLLER_TOPIC, agentTopic("agent-a"), agentTopic("agent-b")), hello), {
          minLength: 1,
          maxLength: 4,
        }),
        async (cred, sends) => {
          const raw = await RawClient.open(ctl.url, cred ? agentHeaders(cred.name, cred.secret) : undefined);
          try {
            raw.send(JSON.stringify([CONTROLLER_TOPIC, agentTopic("agent-a")]));
            await raw.waitFrames(1).catch(() => undefined);
            for (const [topic, event] of sends) if (!raw.closed) raw.send(encodeEventMessage(topic, event));
            await new Promise((r) => setTimeout(r, 20));
          } finally {
            raw.close();
          }
          expect((await client.instances()).map((i) => i.name)).toContain("agent-a");
          // agent-b's genuine secret checks agent-b in, until its connection is gone.
          await waitFor(async () => (await client.instances()).map((i) => i.name).join() === "agent-a", "only agent-a to remain");
          // Nothing meant for agent-a ever went to the fuzzed connection.
          expect(raw.frames.join("\n")).not.toMatch(/agent_welcome_request|deploy_request/);
        },
      ),
      { numRuns: 60 },
    );
    // The real agent was never re-welcomed (which would mean it had been replaced) and still deploys.
    expect(agent.logic.receivedNamed(AgentApi.agent_welcome_request.name).length).toBe(welcomesBefore);
    expect((await client.deploy()).every((r) => r.success)).toBe(true);
  }, 120_000);
});
