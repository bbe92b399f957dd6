// TLS on every WebSocket endpoint, with real processes: the controller over wss (with and
// without client certificates), agents dialing a TLS controller and being dialed over TLS,
// the zeek-client compatible [ssl] settings, and the refusal to expose plaintext listeners.
// Keys and certificates are made with openssl in a temporary directory for each run.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { ControllerClient, resultInstances, resultNodeStatuses } from "../src/client/controller-client.js";
import type { PeerTlsOptions } from "../src/broker/peer.js";
import type { Configuration } from "../src/management/types.js";
import { TestEnv, freePort, type Proc } from "./helpers/cluster.js";
import { TestPki } from "./helpers/pki.js";
import { eventually } from "./helpers/ws.js";
import { QUICK_AGENT_ARGS as AGENT_ARGS } from "./helpers/scope.js";

// ---------------------------------------------------------------------------------------
// Certificates

interface Pki {
  dir: string;
  ca: string;
  /** A CA that signed nothing we serve. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  /** serverKey, encrypted with `passphrase`. */
  serverKeyEncrypted: string;
  passphrase: string;
  /** A CA directory (zeek-client's capath) holding only `ca`. */
  caDir: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from otherCa. */
  rogueCert: string;
  rogueKey: string;
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "zmgmt-tls-"));
  const certs = new TestPki(dir);
  const ca = certs.ca("ca");
  const otherCa = certs.ca("other-ca");
  const server = certs.leaf("server", ca, { cn: "server", san: ["IP:127.0.0.1"], server: true });
  const client = certs.leaf("client", ca, { cn: "client" });
  const rogue = certs.leaf("rogue", otherCa, { cn: "rogue" });
  const passphrase = "correct horse";
  const serverKeyEncrypted = join(dir, "server-encrypted.key");
  execFileSync("openssl", ["pkey", "-in", server.key, "-aes256", "-passout", `pass:${passphrase}`, "-out", serverKeyEncrypted], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const caDir = join(dir, "ca-dir");
  mkdirSync(caDir);
  copyFileSync(ca, join(caDir, "ca.pem"));
  return {
    dir,
    ca,
    otherCa,
    serverCert: server.cert,
    serverKey: server.key,
    serverKeyEncrypted,
    passphrase,
    caDir,
    clientCert: client.cert,
    clientKey: client.key,
    rogueCert: rogue.cert,
    rogueKey: rogue.key,
  };
}

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

let env: TestEnv;
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await env?.cleanup();
});

// ---------------------------------------------------------------------------------------
// Helpers

/** Opens a WebSocket, sends the controller handshake and resolves with the ack's endpoint. */
function handshake(url: string, options: WebSocket.ClientOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000, ...options });
    const done = (fn: () => void): void => {
      ws.removeAllListeners();
      ws.on("error", () => undefined);
      ws.terminate();
      fn();
    };
    ws.on("open", () => ws.send(JSON.stringify(["zeek/management/controller"])));
    ws.on("message", (data) => {
      const text = (data as Buffer).toString();
      const msg = JSON.parse(text) as { type?: string; endpoint?: string };
      done(() => (msg.type === "ack" ? resolve(msg.endpoint!) : reject(new Error(`not an ack: ${text}`))));
    });
    ws.on("error", (err) => done(() => reject(err)));
    ws.on("close", () => done(() => reject(new Error("closed before the ack"))));
  });
}

function trusting(ca: string, client?: { cert: string; key: string }): WebSocket.ClientOptions {
  return {
    ca: readFileSync(ca),
    rejectUnauthorized: true,
    ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
  };
}

function exited(proc: Proc, timeoutMs = 30_000): Promise<number> {
  return eventually(() => proc.child.exitCode !== null || proc.child.signalCode !== null, timeoutMs, "process exit").then(
    () => proc.child.exitCode ?? -1,
  );
}

/** Runs a zeek-client style command against the controller; settings are `section.key=value`. */
async function cli(port: number, settings: string[], command: string): Promise<{ code: number; output: string }> {
  const args = ["--controller", `127.0.0.1:${port}`, "--set", "client.peering_attempts=2", "--set", "client.peering_retry_delay_secs=0.3"];
  for (const s of settings) args.push("--set", s);
  const proc = env.spawnCli([...args, command], { ZEEK_CLIENT_CONFIG_FILE: join(env.dir, "no-such-client.cfg") });
  const code = await exited(proc);
  return { code, output: proc.output() };
}

async function connect(port: number, tls?: PeerTlsOptions): Promise<ControllerClient> {
  const c = await ControllerClient.connect({ url: `127.0.0.1:${port}`, requestTimeoutMs: 20_000, ...(tls ? { tls } : {}) });
  clients.push(c);
  return c;
}

async function managerRunning(client: ControllerClient): Promise<void> {
  await eventually(
    async () => {
      const nodes = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []).filter((s) => s.mgmtRole === "NONE");
      return nodes.length === 1 && nodes[0]!.state === "RUNNING";
    },
    20_000,
    "the manager to run",
  );
}

function managerConfig(instance: Configuration["instances"][number]): Configuration {
  return {
    id: randomUUID(),
    instances: [instance],
    nodes: [{ name: "manager", instance: instance.name, role: "MANAGER", state: "RUNNING", env: {} }],
  };
}

async function startAgent(name: string, args: string[]): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const proc = env.spawnCli([
    "agent",
    "--name",
    name,
    "--state-dir",
    join(env.dir, `state-${name}`),
    "--listen",
    `127.0.0.1:${port}`,
    ...AGENT_ARGS,
    ...(args.includes("--controller") ? ["--agent-secret-file", env.agentSecretFile(name)] : []),
    ...args,
  ]);
  await eventually(() => env.canConnect(port), 15_000, `agent ${name} on port ${port}`);
  return { proc, port };
}

// ---------------------------------------------------------------------------------------

describe("TLS", () => {
  it("serves wss with its certificate: clients trusting the CA get in, others do not", async () => {
    env = new TestEnv();
    const { port } = await env.startController({
      extraArgs: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKeyEncrypted, "--tls-passphrase", pki.passphrase],
    });
    const url = `wss://127.0.0.1:${port}/v1/messages/json`;

    expect(await handshake(url, trusting(pki.ca))).toMatch(/\S/);
    await expect(handshake(url, trusting(pki.otherCa))).rejects.toThrow(/certificate|verify/i);
    await expect(handshake(`ws://127.0.0.1:${port}/v1/messages/json`)).rejects.toThrow();

    // zeek-client's settings: enable alone means wss without verification (cafile is only
    // used together with a certificate, as in zeek-client).
    const ok = await cli(port, ["ssl.enable=true", `ssl.cafile=${pki.ca}`], "get-instances");
    expect(ok.output).not.toMatch(/error/);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.output)).toEqual({});

    const plain = await cli(port, [], "get-instances");
    expect(plain.code).toBe(1);

    const wrongCa = await cli(
      port,
      ["ssl.enable=true", `ssl.certificate=${pki.clientCert}`, `ssl.keyfile=${pki.clientKey}`, `ssl.cafile=${pki.otherCa}`],
      "get-instances",
    );
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.output).toMatch(/certificate|verify/i);
  });

  it("with --tls-verify-clients admits only clients with a certificate from --tls-ca", async () => {
    env = new TestEnv();
    const { port } = await env.startController({
      extraArgs: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-ca", pki.ca, "--tls-verify-clients"],
    });
    const url = `wss://127.0.0.1:${port}/v1/messages/json`;

    await expect(handshake(url, trusting(pki.ca))).rejects.toThrow();
    await expect(handshake(url, trusting(pki.ca, { cert: pki.rogueCert, key: pki.rogueKey }))).rejects.toThrow();
    expect(await handshake(url, trusting(pki.ca, { cert: pki.clientCert, key: pki.clientKey }))).toMatch(/\S/);

    const noCert = await cli(port, ["ssl.enable=true"], "get-instances");
    expect(noCert.code).toBe(1);
    const withCert = await cli(
      port,
      ["ssl.enable=true", `ssl.certificate=${pki.clientCert}`, `ssl.keyfile=${pki.clientKey}`, `ssl.cafile=${pki.ca}`],
      "get-instances",
    );
    expect(withCert.output).not.toMatch(/error/);
    expect(withCert.code).toBe(0);
    const withCaPath = await cli(
      port,
      ["ssl.enable=true", `ssl.certificate=${pki.clientCert}`, `ssl.keyfile=${pki.clientKey}`, `ssl.capath=${pki.caDir}`],
      "get-instances",
    );
    expect(withCaPath.output).not.toMatch(/error/);
    expect(withCaPath.code).toBe(0);
  });

  it("an agent dials a TLS controller (a2c) and deploys a node; its nodes use a loopback listener", async () => {
    env = new TestEnv();
    const { port } = await env.startController({
      extraArgs: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-ca", pki.ca, "--tls-verify-clients"],
    });
    // The agent's own listener uses TLS too, so its nodes cannot use it without the CA.
    await startAgent("instance-1", [
      "--controller",
      `wss://127.0.0.1:${port}`,
      "--controller-ca",
      pki.ca,
      "--controller-cert",
      pki.clientCert,
      "--controller-key",
      pki.clientKey,
      "--tls-cert",
      pki.serverCert,
      "--tls-key",
      pki.serverKey,
    ]);
    const client = await connect(port, { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey, rejectUnauthorized: true });
    await eventually(async () => (resultInstances(await client.getInstances()) ?? []).length === 1, 15_000, "the agent to check in");

    expect((await client.stageConfiguration(managerConfig({ name: "instance-1", host: "0.0.0.0" })))[0]!.success).toBe(true);
    const results = await client.deploy();
    expect(results.filter((r) => !r.success)).toEqual([]);
    await managerRunning(client);
  });

  it("the controller dials a TLS agent (c2a) with --agent-ca/--agent-cert/--agent-key", async () => {
    env = new TestEnv();
    const { port } = await env.startController({
      requestTimeoutSec: 8,
      extraArgs: ["--agent-ca", pki.ca, "--agent-cert", pki.clientCert, "--agent-key", pki.clientKey],
    });
    const agent = await startAgent("instance-1", [
      "--no-controller",
      "--tls-cert",
      pki.serverCert,
      "--tls-key",
      pki.serverKey,
      "--tls-ca",
      pki.ca,
      "--tls-verify-clients",
    ]);
    await expect(handshake(`ws://127.0.0.1:${agent.port}/v1/messages/json`)).rejects.toThrow();

    const client = await connect(port);
    const cfg = managerConfig({ name: "instance-1", host: "127.0.0.1", listenPort: agent.port });
    expect((await client.stageConfiguration(cfg))[0]!.success).toBe(true);
    const results = await client.deploy();
    expect(results.filter((r) => !r.success)).toEqual([]);
    await managerRunning(client);
  });

  it("refuses a plaintext non-loopback listener unless --allow-insecure-listen is given", async () => {
    env = new TestEnv();
    const [controllerPort, agentPort, insecurePort, tlsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const state = join(env.dir, "state");
    const refusedController = env.spawnCli(["controller", "--listen", `0.0.0.0:${controllerPort}`, "--state-dir", state]);
    const refusedAgent = env.spawnCli([
      "agent",
      "--name",
      "a1",
      "--listen",
      `0.0.0.0:${agentPort}`,
      "--no-controller",
      "--state-dir",
      state,
    ]);
    const badFlags = env.spawnCli([
      "controller",
      "--listen",
      `127.0.0.1:${controllerPort}`,
      "--state-dir",
      state,
      "--tls-cert",
      pki.serverCert,
      "--tls-key",
      pki.serverKey,
      "--tls-verify-clients",
    ]);
    expect(await exited(refusedController)).toBe(1);
    expect(await exited(refusedAgent)).toBe(1);
    expect(await exited(badFlags)).toBe(1);
    for (const proc of [refusedController, refusedAgent]) {
      expect(proc.output()).toContain("refusing to listen on 0.0.0.0 without TLS");
      expect(proc.output()).toContain("--allow-insecure-listen");
    }
    expect(badFlags.output()).toContain("--tls-verify-clients needs --tls-ca");
    expect(await env.canConnect(controllerPort)).toBe(false);
    expect(await env.canConnect(agentPort)).toBe(false);

    const insecure = env.spawnCli([
      "controller",
      "--name",
      "c1",
      "--listen",
      `0.0.0.0:${insecurePort}`,
      "--state-dir",
      state,
      "--allow-insecure-listen",
    ]);
    const tlsOnly = env.spawnCli([
      "controller",
      "--name",
      "c2",
      "--listen",
      `0.0.0.0:${tlsPort}`,
      "--state-dir",
      state,
      "--tls-cert",
      pki.serverCert,
      "--tls-key",
      pki.serverKey,
    ]);
    await eventually(() => env.canConnect(insecurePort), 15_000, "the insecure controller");
    await eventually(() => env.canConnect(tlsPort), 15_000, "the TLS controller");
    expect(insecure.output()).toMatch(/WARNING: .*without TLS/);
    expect(tlsOnly.output()).toMatch(/WARNING: .*without client certificate verification/);
    expect(await handshake(`ws://127.0.0.1:${insecurePort}/v1/messages/json`)).toMatch(/\S/);
  });
});
