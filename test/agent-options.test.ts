// The agent daemon's options as a supervisor hands them over: JSON in the environment,
// validated by the agent process before anything starts.

import { describe, expect, it } from "vitest";
import { AgentOptionsError, parseAgentDaemonOptions, type AgentDaemonOptions } from "../src/agent/options.js";
import { defaultAgentOptions } from "../src/agent/main.js";

const VALID: AgentDaemonOptions = {
  name: "agent-test",
  stateDir: "state",
  listenHost: "127.0.0.1",
  listenPort: 2151,
  controllerUrl: "wss://127.0.0.1:2149",
  requestTimeoutMs: 5000,
  nodeCommand: ["/bin/true", "--flag"],
  logLevel: "DEBUG",
  logToStderr: true,
  tls: { certFile: "/c.pem", keyFile: "/k.pem" },
  nodeListenPort: 40000,
  controllerTls: { caFile: "/ca.pem", rejectUnauthorized: true },
  zeek: { path: "/opt/zeek/bin/zeek", version: "8.2.2" },
  logArchiveDir: "logs",
  logArchiveIntervalMs: 60_000,
};

function parseError(text: string | undefined): AgentOptionsError {
  try {
    parseAgentDaemonOptions(text, "OPTS");
  } catch (err) {
    if (err instanceof AgentOptionsError) return err;
    throw err;
  }
  throw new Error("options were accepted");
}

describe("agent daemon options", () => {
  it("round-trips through JSON unchanged, including the defaults the CLI fills in", () => {
    expect(parseAgentDaemonOptions(JSON.stringify(VALID), "OPTS")).toEqual(VALID);
    const defaults = defaultAgentOptions({ name: "a" });
    expect(parseAgentDaemonOptions(JSON.stringify(defaults), "OPTS")).toEqual(defaults);
  });

  it("rejects what is missing, malformed, mistyped or unknown, with a stable code and the path", () => {
    expect(parseError(undefined).message).toBe("OPTS is not set");
    expect(parseError("").message).toBe("OPTS is not set");
    expect(parseError("{").message).toMatch(/^OPTS is not JSON: /);
    expect(parseError(undefined).code).toBe("invalid_agent_options");
    const { name: _name, ...noName } = VALID;
    expect(parseError(JSON.stringify(noName)).message).toMatch(/^OPTS holds invalid agent options: .*\/name/);
    expect(parseError(JSON.stringify({ ...VALID, listenPort: 70000 })).message).toContain("/listenPort");
    expect(parseError(JSON.stringify({ ...VALID, nodeCommand: [] })).message).toContain("/nodeCommand");
    expect(parseError(JSON.stringify({ ...VALID, zeek: { path: "/z" } })).message).toContain("/zeek");
    expect(parseError(JSON.stringify({ ...VALID, logLevel: "LOUD" })).message).toContain("/logLevel");
    expect(parseError(JSON.stringify({ ...VALID, surprise: 1 })).message).toContain("surprise");
  });
});
