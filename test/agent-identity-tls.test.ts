// Agent identity by client certificate, with real processes: under mutual TLS an agent that
// holds no secret proves its instance with the CN or a DNS SAN of its certificate; a
// certificate for another name, a client's certificate or one from a CA the controller does
// not trust never makes its holder that instance, nor detaches the instance's real agent.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeEventMessage } from "../src/broker/messages.js";
import { AgentApi, agentTopic } from "../src/agent/api.js";
import { ControllerClient, resultNodeStatuses } from "../src/client/controller-client.js";
import { CONTROLLER_TOPIC } from "../src/controller/api.js";
import { AGENT_REFUSED_EXIT_CODE, agentHeaders } from "../src/management/agent-auth.js";
import type { Configuration, NodeStatus } from "../src/management/types.js";
import { exitCode, freePort, instanceNames, type Proc } from "./helpers/cluster.js";
import { TestPki, type CertFiles } from "./helpers/pki.js";
import { QUICK_AGENT_ARGS as AGENT_ARGS, useTestScope } from "./helpers/scope.js";
import { RawClient, eventually } from "./helpers/ws.js";

interface Certs {
  ca: string;
  server: CertFiles;
  /** CN agent-a. */
  agentA: CertFiles;
  /** CN names no instance; DNS SAN agent-b. */
  agentBSan: CertFiles;
  /** An operator's client certificate. */
  operator: CertFiles;
  /** CN agent-a, from a CA the controller does not trust. */
  rogueA: CertFiles;
}

let pkiDir: string;
let certs: Certs;
beforeAll(() => {
  pkiDir = mkdtempSync(join(tmpdir(), "zmgmt-certid-pki-"));
  const pki = new TestPki(pkiDir);
  const ca = pki.ca("ca");
  const otherCa = pki.ca("other-ca");
  certs = {
    ca,
    server: pki.leaf("server", ca, { cn: "controller", san: ["IP:127.0.0.1"], server: true }),
    agentA: pki.leaf("agent-a", ca, { cn: "agent-a" }),
    agentBSan: pki.leaf("agent-b-san", ca, { cn: "sensor host 2", san: ["DNS:agent-b"] }),
    operator: pki.leaf("operator", ca, { cn: "operator" }),
    rogueA: pki.leaf("rogue-a", otherCa, { cn: "agent-a" }),
  };
});
afterAll(() => {
  if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
});

const scope = useTestScope();

/** A controller that requires client certificates from the test CA. */
async function mtlsController(): Promise<{ port: number; proc: Proc }> {
  const env = scope.newEnv("zmgmt-certid-");
  const { port, proc } = await env.startController({
    requestTimeoutSec: 5,
    extraArgs: ["--tls-cert", certs.server.cert, "--tls-key", certs.server.key, "--tls-ca", certs.ca, "--tls-verify-clients"],
  });
  return { port, proc };
}

/** `zmgmt agent` dialing the controller with a client certificate and no secret file. */
async function startAgent(name: string, port: number, cert: CertFiles, stateName = name, waitListening = true): Promise<Proc> {
  const listen = await freePort();
  const proc = scope.env.spawnCli([
    "agent",
    "--name",
    name,
    "--state-dir",
    join(scope.env.dir, `state-${stateName}`),
    "--listen",
    `127.0.0.1:${listen}`,
    "--no-zeek",
    ...AGENT_ARGS,
    "--controller",
    `wss://127.0.0.1:${port}`,
    "--controller-ca",
    certs.ca,
    "--controller-cert",
    cert.cert,
    "--controller-key",
    cert.key,
  ]);
  if (waitListening) await eventually(() => scope.env.canConnect(listen), 15_000, `agent ${name} on port ${listen}`);
  return proc;
}

function connect(port: number, cert: CertFiles = certs.operator): Promise<ControllerClient> {
  return scope.connect(port, {
    requestTimeoutMs: 15_000,
    tls: { caFile: certs.ca, certFile: cert.cert, keyFile: cert.key, rejectUnauthorized: true },
  });
}

function tlsOptions(cert: CertFiles, ca = certs.ca): { ca: Buffer; cert: Buffer; key: Buffer; rejectUnauthorized: true } {
  return { ca: readFileSync(ca), cert: readFileSync(cert.cert), key: readFileSync(cert.key), rejectUnauthorized: true };
}

function config(instances: string[]): Configuration {
  return {
    id: randomUUID(),
    instances: instances.map((name) => ({ name, host: "127.0.0.1" })),
    nodes: instances.map((instance, i) => ({
      name: i === 0 ? "manager" : `worker-${instance}`,
      instance,
      role: i === 0 ? "MANAGER" : "WORKER",
      state: "RUNNING",
      env: {},
      ...(i === 0 ? {} : { interface: "lo" }),
    })),
  };
}

async function deploy(client: ControllerClient, instances: string[]): Promise<void> {
  expect((await client.stageConfiguration(config(instances))).filter((r) => !r.success)).toEqual([]);
  expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
}

/** Cluster nodes (not the agents' own entries), once `count` of them are RUNNING. */
async function runningNodes(client: ControllerClient, count: number): Promise<NodeStatus[]> {
  return eventually(
    async () => {
      const nodes = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
      return nodes.length === count && nodes.every((n) => n.state === "RUNNING") ? nodes : undefined;
    },
    20_000,
    `${count} node(s) to run`,
  );
}

const summary = (nodes: NodeStatus[]): Array<[string, number | undefined, string]> =>
  nodes.map((n) => [n.node, n.pid, n.state] as [string, number | undefined, string]).sort((a, b) => a[0].localeCompare(b[0]));

/** A mutual-TLS controller with agent-a checked in by its certificate and a manager deployed. */
async function clusterWithAgentA(): Promise<{ port: number; client: ControllerClient; agent: Proc; before: NodeStatus[] }> {
  const { port } = await mtlsController();
  const agent = await startAgent("agent-a", port, certs.agentA);
  const client = await connect(port);
  await eventually(async () => (await instanceNames(client)).includes("agent-a"), 15_000, "agent-a to check in");
  await deploy(client, ["agent-a"]);
  const before = await runningNodes(client, 1);
  return { port, client, agent, before };
}

/** The live agent still holds its instance: same nodes, same pids, and it takes deployments. */
async function stillAttached(client: ControllerClient, agent: Proc, before: NodeStatus[]): Promise<void> {
  expect(agent.child.exitCode).toBeNull();
  expect(await instanceNames(client)).toEqual(["agent-a"]);
  expect(summary(await runningNodes(client, 1))).toEqual(summary(before));
  await deploy(client, ["agent-a"]);
  await runningNodes(client, 1);
}

/** Messages of the controller's management log. */
function controllerLog(): string {
  return scope.env.logMessages(join(scope.env.dir, "state"), "controller");
}

describe("agent identity by client certificate", () => {
  it("welcomes agents whose certificate names their instance (CN, DNS SAN) without any secret, and runs their nodes", async () => {
    const { port } = await mtlsController();
    const agentA = await startAgent("agent-a", port, certs.agentA);
    const agentB = await startAgent("agent-b", port, certs.agentBSan);
    const client = await connect(port);
    await eventually(async () => (await instanceNames(client)).join() === "agent-a,agent-b", 15_000, "both agents to check in");
    await deploy(client, ["agent-a", "agent-b"]);
    const nodes = await runningNodes(client, 2);
    expect(nodes.map((n) => n.node).sort()).toEqual(["manager", "worker-agent-b"]);
    // Each node runs under the agent of its instance, i.e. each agent was deployed to.
    const byInstance = (await client.getNodes()).map((r) => [
      r.instance,
      (resultNodeStatuses(r) ?? []).filter((n) => n.mgmtRole === "NONE").map((n) => n.node),
    ]);
    expect(byInstance.sort()).toEqual([
      ["agent-a", ["manager"]],
      ["agent-b", ["worker-agent-b"]],
    ]);
    expect(agentA.child.exitCode).toBeNull();
    expect(agentB.child.exitCode).toBeNull();
    expect(controllerLog()).not.toContain("refused an agent connection");
  });

  it("refuses an agent whose certificate names another instance: it exits with the reason, the real agent keeps its instance", async () => {
    const { port, client, agent, before } = await clusterWithAgentA();
    // A valid certificate for agent-b, used to claim agent-a; and agent-a's, used to claim agent-c.
    const impostor = await startAgent("agent-a", port, certs.agentBSan, "impostor", false);
    const misnamed = await startAgent("agent-c", port, certs.agentA, "agent-c", false);
    expect(await exitCode(impostor)).toBe(AGENT_REFUSED_EXIT_CODE);
    expect(await exitCode(misnamed)).toBe(AGENT_REFUSED_EXIT_CODE);
    expect(impostor.output()).toMatch(/the controller refused this agent: the controller does not accept agent "agent-a"/);
    expect(impostor.output()).toMatch(/client certificate names "sensor host 2", "agent-b"/);
    expect(misnamed.output()).toMatch(/does not accept agent "agent-c".*client certificate names "agent-a"/);
    await eventually(() => controllerLog().includes('does not accept agent "agent-c"'), 5000, "the refusal in the controller's log");
    await stillAttached(client, agent, before);
  });

  it("a client holding a valid certificate is a client: it may make requests but its agent hello is ignored", async () => {
    const { port, client, agent, before } = await clusterWithAgentA();
    // Even agent-a's own certificate makes a connection that claims no instance a client.
    for (const cert of [certs.operator, certs.agentA]) {
      const c = await connect(port, cert);
      expect(await instanceNames(c)).toEqual(["agent-a"]);
      const raw = await RawClient.open(`wss://127.0.0.1:${port}/v1/messages/json`, undefined, tlsOptions(cert));
      scope.onCleanup(() => raw.close());
      raw.send(JSON.stringify([CONTROLLER_TOPIC, agentTopic("agent-a")]));
      const [ack] = await raw.waitFrames(1);
      expect(JSON.parse(ack!)).toMatchObject({ type: "ack" });
      raw.send(encodeEventMessage(agentTopic("agent-a"), AgentApi.notify_agent_hello.make("agent-a", "impostor", true, 1)));
      raw.send(encodeEventMessage(CONTROLLER_TOPIC, AgentApi.notify_agent_hello.make("agent-a", "impostor", false, 999)));
      await deploy(client, ["agent-a"]);
      const sent = raw.frames.slice(1).join("\n");
      expect(sent).not.toContain("agent_welcome_request");
      expect(sent).not.toContain("deploy_request");
      raw.close();
      await new Promise((r) => setTimeout(r, 300));
      await stillAttached(client, agent, before);
    }
  });

  it("refuses a certificate from a CA the controller does not trust during the TLS handshake", async () => {
    const { port, client, agent, before } = await clusterWithAgentA();
    const url = `wss://127.0.0.1:${port}/v1/messages/json`;
    // The upgrade never happens, so no Broker message and no agent verdict: the TLS layer said no.
    const err = await RawClient.open(url, agentHeaders("agent-a", undefined), tlsOptions(certs.rogueA)).then(
      (raw) => {
        raw.close();
        return undefined;
      },
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err).toBeDefined();
    expect(`${err!.code ?? ""} ${err!.message}`).toMatch(/unknown ca|ECONNRESET|socket hang up/i);
    // A real agent with that certificate gets nowhere either, and says why.
    const rogue = await startAgent("agent-a", port, certs.rogueA, "rogue");
    const rogueLog = (): string => scope.env.readFile(scope.env.dir, "state-rogue", "nodes", "agent-a", "management-agent-a.log");
    await eventually(
      () => /cannot connect to the controller, retrying: .*(unknown ca|does not trust this agent's certificate)/i.test(rogueLog()),
      15_000,
      "the rogue agent to log the TLS failure",
    );
    // TLS failures may be the network's, so the agent keeps trying rather than exiting.
    expect(rogue.child.exitCode).toBeNull();
    expect(controllerLog()).not.toContain("refused an agent connection");
    await stillAttached(client, agent, before);
  });
});
