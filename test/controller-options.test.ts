// The controller daemon's options as a supervisor hands them over: JSON in the environment,
// validated by the controller process before anything starts.

import { afterEach, describe, expect, it } from "vitest";
import { TestEnv, freePort } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { ControllerClient } from "../src/client/controller-client.js";
import { ControllerOptionsError, parseControllerDaemonOptions, type ControllerDaemonOptions } from "../src/controller/options.js";
import { SupervisorEnv } from "../src/supervisor/api.js";

const VALID: ControllerDaemonOptions = {
  name: "controller-test",
  stateDir: "state",
  listenHost: "127.0.0.1",
  listenPort: 2149,
  requestTimeoutMs: 10_000,
  logLevel: "DEBUG",
  brokerStartPort: 2200,
  autoAssignMetricsPorts: false,
  tls: { certFile: "/c.pem", keyFile: "/k.pem", verifyClients: true, caFile: "/ca.pem" },
  agentTls: { rejectUnauthorized: true, caFile: "/ca.pem" },
};

function parseError(text: string | undefined): ControllerOptionsError {
  try {
    parseControllerDaemonOptions(text, "OPTS");
  } catch (err) {
    if (err instanceof ControllerOptionsError) return err;
    throw err;
  }
  throw new Error("options were accepted");
}

describe("controller daemon options", () => {
  it("round-trips through JSON unchanged", () => {
    expect(parseControllerDaemonOptions(JSON.stringify(VALID), "OPTS")).toEqual(VALID);
  });

  it("rejects what is missing, malformed, mistyped or unknown, with a stable code and the path", () => {
    expect(parseError(undefined).message).toBe("OPTS is not set");
    expect(parseError("{").message).toMatch(/^OPTS is not JSON: /);
    const { name: _name, ...nameless } = VALID;
    expect(parseError(JSON.stringify(nameless)).message).toMatch(/^OPTS holds invalid controller options: .*\/name/);
    expect(parseError(JSON.stringify({ ...VALID, listenPort: "2149" })).message).toMatch(/\/listenPort/);
    expect(parseError(JSON.stringify({ ...VALID, listenPort: 70000 })).message).toMatch(/\/listenPort/);
    expect(parseError(JSON.stringify({ ...VALID, logLevel: "LOUD" })).message).toMatch(/\/logLevel/);
    expect(parseError(JSON.stringify({ ...VALID, tls: { certFile: "/c.pem" } })).message).toMatch(/\/tls/);
    expect(parseError(JSON.stringify({ ...VALID, listenPrt: 1 })).message).toMatch(/listenPrt/);
    expect(parseError("[]").code).toBe("invalid_controller_options");
  });
});

describe("zmgmt controller --from-env", () => {
  let env: TestEnv;
  afterEach(async () => {
    await env?.cleanup();
  });

  it("refuses invalid options before listening, naming the variable and the field", async () => {
    env = new TestEnv();
    const port = await freePort();
    const bad = { ...VALID, tls: undefined, agentTls: undefined, listenPort: port, requestTimeoutMs: "soon" };
    const proc = env.spawnCli(["controller", "--from-env"], { [SupervisorEnv.controllerOptions]: JSON.stringify(bad) });
    await eventually(() => proc.child.exitCode !== null, 15_000, "the controller to exit");
    expect(proc.child.exitCode).not.toBe(0);
    expect(proc.output()).toContain(`${SupervisorEnv.controllerOptions} holds invalid controller options`);
    expect(proc.output()).toContain("/requestTimeoutMs");
  });

  it("starts with valid options", async () => {
    env = new TestEnv();
    const port = await freePort();
    const good = { ...VALID, tls: undefined, agentTls: undefined, listenPort: port };
    const proc = env.spawnCli(["controller", "--from-env"], { [SupervisorEnv.controllerOptions]: JSON.stringify(good) });
    const client = await eventually(
      () => ControllerClient.connect({ url: `127.0.0.1:${port}`, connectTimeoutMs: 1000 }).catch(() => undefined),
      15_000,
      "the controller to listen",
    );
    expect((await client.getInstances()).success).toBe(true);
    await client.close();
    process.kill(proc.pid, "SIGTERM");
    await eventually(() => proc.child.exitCode !== null, 15_000, "the controller to exit");
  });
});
