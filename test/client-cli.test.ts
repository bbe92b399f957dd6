// The client commands as a user runs them: the built CLI as a real process, against a real
// controller and agent (with its supervisor and nodes), or against nothing at all.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { dataToEvent, decodeDataMessage, encodeAck, encodeEventMessage } from "../src/broker/messages.js";
import { ControllerApi } from "../src/controller/api.js";
import { AgentApi } from "../src/agent/api.js";
import { InstanceVecCodec, makeResult } from "../src/management/records.js";
import { CLI, TestEnv, freePort } from "./helpers/cluster.js";
import { QUICK_AGENT_ARGS } from "./helpers/scope.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** One line of `monitor --json`: every kind carries its time; the rest is compared whole. */
interface MonitorJsonLine {
  time: string;
  event: string;
}

const running = new Set<ChildProcess>();

/** Runs `node dist/cli/main.js …` isolated from the caller's zeek-client settings, bounded in time. */
function runCli(
  args: string[],
  opts: { cwd?: string; input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "", ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const HAVE_SCRIPT = spawnSync("script", ["--version"]).status === 0;

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal would; stdout and stderr arrive mixed. */
function runTty(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const quote = (a: string): string => `'${a.replace(/'/g, "'\\''")}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(" ");
  return runCommand("script", ["-qefc", command, "/dev/null"], opts);
}

function runCommand(file: string, args: string[], opts: { cwd?: string; timeoutMs?: number }): Promise<Run> {
  const started = Date.now();
  const child = spawn(file, args, {
    cwd: opts.cwd,
    env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout: stdout.replace(/\r\n/g, "\n"), stderr, ms: Date.now() - started });
    });
  });
}

function killClients(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

async function until<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const json = (r: Run): unknown => JSON.parse(r.stdout);

// The shapes of zeek-client's JSON output these tests read.
interface StageOutput {
  errors: unknown[];
  results: { id?: string; nodes?: Record<string, { instance: string; success: boolean }> };
}
interface ConfigOutput {
  id: string;
  nodes: { name: string; port?: number }[];
}
type NodeStates = Record<string, { state?: string } | undefined>;
interface NodesOutput {
  results: Record<string, NodeStates | undefined>;
}

/** Closes a listener, dropping the connections it still holds. */
function closeServer(server: Server): Promise<void> {
  (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  return new Promise((r) => server.close(() => r()));
}

describe("without a controller", () => {
  afterEach(killClients);

  it("gives up after the configured attempts with zeek-client's message", async () => {
    // A listener that accepts, reads and never answers: each connect times out, as
    // zeek-client's do. (Reading lets it see the client hang up, so it can close.)
    const silent = createServer((socket) => socket.resume());
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    try {
      const r = await runCli([
        "--controller",
        `127.0.0.1:${port}`,
        "--set",
        "client.peering_attempts=2",
        "--set",
        "client.peering_retry_delay_secs=0.2",
        "get-nodes",
      ]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`error: websocket connection to 127.0.0.1:${port} timed out in connect()\n`);
      expect(r.ms).toBeLessThan(8000);
    } finally {
      await closeServer(silent);
    }
  });

  it("reports a refused connection at once instead of retrying", async () => {
    const port = await freePort();
    const r = await runCli(["--controller", `127.0.0.1:${port}`, "--set", "client.peering_attempts=20", "get-nodes"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`error: connection refused by controller 127.0.0.1:${port}: is the controller running and listening there?\n`);
    // 20 attempts at the default 1 s delay would take 20 s.
    expect(r.ms).toBeLessThan(5000);
  });

  it("says so when the address is an HTTP server, not a Broker endpoint", async () => {
    const http = createHttpServer((_req, res) => res.end("hello"));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    try {
      const r = await runCli(["--controller", `127.0.0.1:${port}`, "get-instances"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `error: websocket error in connect() with controller 127.0.0.1:${port}: Unexpected server response: 200 ` +
          "(an HTTP server answered, not a Broker WebSocket endpoint: a web or metrics port? The controller listens on 2149 by default)\n",
      );
    } finally {
      await closeServer(http);
    }
  });

  it("checks the controller port and TLS files before connecting", async () => {
    const range = await runCli(["--controller", "127.0.0.1:70000", "get-instances"]);
    expect(range.code).toBe(1);
    expect(range.stderr).toBe("error: cannot configure connection to 127.0.0.1:70000: controller port number 70000 outside valid range\n");
    const tls = await runCli(["get-nodes"], {
      env: { ZEEK_CLIENT_CONFIG_SETTINGS: "ssl.enable=true ssl.certificate=/nonexistent/cert.pem" },
    });
    expect(tls.code).toBe(1);
    expect(tls.stderr).toBe(
      'error: cannot configure connection to 127.0.0.1:2149: SSL certificate file "/nonexistent/cert.pem" not found\n',
    );
  });

  it("exits 2 on usage errors and 1 without a command", async () => {
    const unknown = await runCli(["get-nodes", "--bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
    const missing = await runCli(["stage-config"]);
    expect(missing.code).toBe(2);
    const conflict = await runCli(["-q", "-v", "show-settings"]);
    expect(conflict.code).toBe(2);
    const badCommand = await runCli(["set-config", "x.ini"]);
    expect(badCommand.code).toBe(2);
    expect(badCommand.stderr).toBe("error: unknown command 'set-config' (did you mean get-config?)\n");
    const none = await runCli([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe("error: please provide a command to execute.\n");
    expect((await runCli(["-q"])).stderr).toBe("");
    const help = await runCli(["help", "get-id-value"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: zmgmt get-id-value [options] <IDENTIFIER> [NODES...]");
  });

  it("suggests commands and options close to a typo", async () => {
    const command = await runCli(["get-node"]);
    expect(command.code).toBe(2);
    expect(command.stderr).toBe("error: unknown command 'get-node' (did you mean get-nodes?)\n");
    const far = await runCli(["frobnicate"]);
    expect(far.code).toBe(2);
    expect(far.stderr).toBe("error: unknown command 'frobnicate'\n");
    // --json is a global option, hidden in each command's help but still suggested.
    const option = await runCli(["get-nodes", "--jsno"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toBe("error: unknown option '--jsno' (did you mean --json?)\n");
  });

  it("rejects a bad --controller port, unknown --set keys and a missing -c file before connecting", async () => {
    const port = await runCli(["--controller", "127.0.0.1:abc", "get-nodes"]);
    expect(port.code).toBe(1);
    expect(port.stdout).toBe("");
    expect(port.stderr).toBe(
      'error: invalid --controller value "127.0.0.1:abc": port "abc" is not a number (use HOST:PORT, e.g. 127.0.0.1:2149)\n',
    );
    const key = await runCli(["--set", "client.request_timeuot_secs=1", "get-nodes"]);
    expect(key.code).toBe(1);
    expect(key.stderr).toBe(
      'error: unknown setting "client.request_timeuot_secs" in --set client.request_timeuot_secs=1 ' +
        "(did you mean client.request_timeout_secs?); show-settings lists them all\n",
    );
    // show-settings too: it would otherwise print the typo back as if it were a setting.
    const shown = await runCli(["show-settings", "--set", "sll.enable=true"]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toBe("");
    expect(shown.stderr).toContain("(did you mean ssl.enable?)");
    // Keys fold to lower case as in configparser, and the deprecated ssl.disable only warns.
    expect((await runCli(["--set", "client.Pretty_JSON=false", "--set", "ssl.disable=1", "show-settings"])).code).toBe(0);
    const missing = await runCli(["-c", "/nonexistent/zeek-client.cfg", "get-nodes"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: client settings file "/nonexistent/zeek-client.cfg" not found\n');
    // The environment's file stays optional, as in zeek-client.
    const fromEnv = await runCli(["show-settings"], { env: { ZEEK_CLIENT_CONFIG_FILE: "/nonexistent/zeek-client.cfg" } });
    expect(fromEnv.code).toBe(0);
  });

  it("shows the effective settings in precedence order", async () => {
    const env = new TestEnv("zmgmt-client-");
    try {
      const cfg = join(env.dir, "client.cfg");
      writeFileSync(cfg, "[client]\nrequest_timeout_secs = 5\npeering_attempts = 3\n[controller]\nhost = 10.1.1.1\n");
      const r = await runCli(["-c", cfg, "--set", "client.peering_attempts=4", "--controller", ":3333", "-vv", "show-settings"], {
        env: { ZEEK_CLIENT_CONFIG_SETTINGS: "client.request_timeout_secs=6 client.peering_attempts=9" },
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("[client]\nrequest_timeout_secs = 6\npeering_attempts = 4\n");
      expect(r.stdout).toContain("verbosity = 2\n");
      expect(r.stdout).toContain("[controller]\nhost = 10.1.1.1\nport = 3333\n\n");
      const viaEnv = await runCli(["show-settings"], { env: { ZEEK_CLIENT_CONFIG_FILE: cfg } });
      expect(viaEnv.stdout).toContain("request_timeout_secs = 5\n");
    } finally {
      await env.cleanup();
    }
  });

  it("rejects an INI with syntax errors before connecting, naming the line", async () => {
    const env = new TestEnv("zmgmt-client-");
    try {
      const file = join(env.dir, "bad.ini");
      writeFileSync(file, "[manager]\nrole = manager\n\n[manager]\nrole = worker\n");
      const r = await runCli(["--controller", "127.0.0.1:1", "stage-config", file]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `error: While reading from '${file}' [line  4]: section 'manager' already exists\nerror: configuration has errors, not sending\n`,
      );
      const invalid = await runCli(["--controller", "127.0.0.1:1", "deploy-config", "-"], { input: "[m]\nrole = chef\n" });
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toBe(
        'error: invalid node "m" configuration: role "chef" is invalid (<stdin>, line 2)\nerror: configuration has errors, not sending\n',
      );
      const absent = await runCli(["stage-config", join(env.dir, "nope.ini")]);
      expect(absent.code).toBe(1);
      expect(absent.stderr).toBe("error: please provide a cluster configuration file.\n");
    } finally {
      await env.cleanup();
    }
  });

  it("reports a handshake that is not acknowledged", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.on("connection", (ws) => ws.on("message", () => ws.send('{"type":"error","code":"invalid_uri","context":"nope"}')));
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    try {
      const r = await runCli(["--controller", `127.0.0.1:${port}`, "--set", "client.peering_retry_delay_secs=0.2", "get-nodes"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: protocol data error with controller 127.0.0.1:${port}: invalid data layout for HandshakeAckMessage: ` +
          `required key "endpoint" missing, raw data: {"type":"error","code":"invalid_uri","context":"nope"}\n`,
      );
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});

describe("against a scripted server", () => {
  afterEach(killClients);

  it("waits out a slow handshake ack and skips frames zeek-client skips", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    let connections = 0;
    wss.on("connection", (ws) => {
      connections++;
      let acked = false;
      ws.on("message", (raw) => {
        if (!acked) {
          acked = true;
          setTimeout(() => ws.send(encodeAck("fake-endpoint", "2.8")), 600);
          return;
        }
        const event = dataToEvent(decodeDataMessage((raw as Buffer).toString()).data);
        const reqid = (event.args[0] as { value: string }).value;
        ws.send('{"type":"error","code":"deserialization_failed","context":"ignored"}');
        ws.send(encodeEventMessage("zeek/management/controller", { name: "Some::other_event", args: [] }));
        ws.send(
          encodeEventMessage("zeek/management/controller", ControllerApi.get_instances_response.make("other-reqid", makeResult("x"))),
        );
        const instances = InstanceVecCodec.encode([{ name: "agent-x", host: "10.0.0.1", listenPort: 2151 }]);
        ws.send(
          encodeEventMessage(
            "zeek/management/controller",
            ControllerApi.get_instances_response.make(reqid, makeResult("x", { data: instances })),
          ),
        );
      });
    });
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    try {
      const r = await runCli(["--controller", `127.0.0.1:${port}`, "--set", "client.peering_retry_delay_secs=0.2", "-v", "get-instances"]);
      expect(r.stderr).toBe('warning: received unexpected event "Some::other_event", skipping\n');
      expect(r.code).toBe(0);
      expect(json(r)).toEqual({ "agent-x": { host: "10.0.0.1", port: 2151 } });
      // One command, one connection: the slow ack is waited for on the same socket.
      expect(connections).toBe(1);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});

describe("pointed at an agent", () => {
  let env: TestEnv;
  let agentPort = 0;

  beforeAll(async () => {
    env = new TestEnv("zmgmt-client-agent-");
    agentPort = (await env.startAgent({ name: "agent-x" })).port;
  }, 60_000);

  afterAll(async () => {
    killClients();
    await env?.cleanup();
  }, 60_000);

  it("says it is an agent, not a controller, when the request goes unanswered", async () => {
    const r = await runCli(["--controller", `127.0.0.1:${agentPort}`, "--set", "client.request_timeout_secs=1", "get-nodes"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `error: no response received: websocket connection to 127.0.0.1:${agentPort} timed out; ` +
        `127.0.0.1:${agentPort} is agent "agent-x", not a controller (agents take no client requests): ` +
        "point --controller at the controller's address, port 2149 by default\n",
    );
  });

  it("fails at once when an agent greets the client on the controller topic", async () => {
    // An endpoint that behaves like an agent relaying its hello where the client listens.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.on("connection", (ws) => {
      ws.once("message", () => {
        ws.send(encodeAck("fake-agent", "2.8"));
        ws.send(encodeEventMessage("zeek/management/controller", AgentApi.notify_agent_hello.make("agent-y", "fake-agent", false, 1)));
      });
    });
    await new Promise((r) => wss.once("listening", r));
    const port = (wss.address() as { port: number }).port;
    try {
      const r = await runCli(["--controller", `127.0.0.1:${port}`, "get-instances"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: no response received: 127.0.0.1:${port} is agent "agent-y", not a controller (agents take no client requests): ` +
          "point --controller at the controller's address, port 2149 by default\n",
      );
      // Not the default 20 s request timeout.
      expect(r.ms).toBeLessThan(10_000);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});

describe("monitor against a scripted controller", () => {
  afterEach(killClients);

  /** Acks, then sends what a controller passes on to every client, including others' responses. */
  async function notifyingServer(): Promise<{ wss: WebSocketServer; port: number }> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    wss.on("connection", (ws) => {
      ws.once("message", () => {
        ws.send(encodeAck("fake-controller", "2.8"));
        const topic = "zeek/management/controller";
        const worker = { name: "worker-01", instance: "agent-a", role: "WORKER", state: "CRASHED", env: {} } as const;
        setTimeout(() => {
          ws.send(encodeEventMessage(topic, ControllerApi.get_nodes_response.make("someone-else", [])));
          ws.send(
            encodeEventMessage(topic, AgentApi.notify_log.make("agent-a", "node worker-01 (pid 4242) exited with code 1", "worker-01")),
          );
          ws.send(encodeEventMessage(topic, AgentApi.notify_change.make("agent-a", worker, "RUNNING", "CRASHED")));
          ws.send(encodeEventMessage(topic, { name: "Some::other_event", args: [] }));
          ws.send(encodeEventMessage(topic, AgentApi.notify_error.make("agent-a", "failed to restart node worker-01", undefined)));
          // Re-issued under the controller's prefix reads the same.
          const relayed = AgentApi.notify_change.make("agent-a", { ...worker, state: "RUNNING" }, "CRASHED", "RUNNING");
          ws.send(encodeEventMessage(topic, { ...relayed, name: "Management::Controller::API::notify_change" }));
        }, 200);
      });
    });
    await new Promise((r) => wss.once("listening", r));
    return { wss, port: (wss.address() as { port: number }).port };
  }

  it("--json prints one JSON line per change, log and error and nothing else; the link going away ends it with 1", async () => {
    const { wss, port } = await notifyingServer();
    try {
      const child = spawn(
        process.execPath,
        [CLI, "--controller", `127.0.0.1:${port}`, "--set", "client.request_timeout_secs=1", "monitor", "--json"],
        {
          env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      running.add(child);
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      await until(() => Promise.resolve(out.split("\n").length > 4 ? true : undefined), 15_000, "four events");
      // Longer than the request timeout: silence is not reported as an error here.
      await new Promise((r) => setTimeout(r, 1500));
      for (const c of wss.clients) c.close();
      expect(await exited).toBe(1);
      running.delete(child);
      const lines = out
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as MonitorJsonLine);
      expect(lines).toEqual([
        {
          time: expect.any(String) as unknown,
          event: "log",
          instance: "agent-a",
          node: "worker-01",
          message: "node worker-01 (pid 4242) exited with code 1",
        },
        { time: expect.any(String) as unknown, event: "change", instance: "agent-a", node: "worker-01", old: "RUNNING", new: "CRASHED" },
        { time: expect.any(String) as unknown, event: "error", instance: "agent-a", message: "failed to restart node worker-01" },
        { time: expect.any(String) as unknown, event: "change", instance: "agent-a", node: "worker-01", old: "CRASHED", new: "RUNNING" },
      ]);
      expect(Number.isNaN(Date.parse(lines[0]!.time))).toBe(false);
      expect(err).toMatch(new RegExp(`^error: lost the connection to controller 127\\.0\\.0\\.1:${port}: .*\\n$`));
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it.skipIf(!HAVE_SCRIPT)("on a terminal prints one readable line per change, log and error", async () => {
    const { wss, port } = await notifyingServer();
    try {
      const run = runTty(["--controller", `127.0.0.1:${port}`, "monitor"], { timeoutMs: 30_000 });
      // The server closes the link once the events are out; monitor then ends with 1.
      setTimeout(() => {
        for (const c of wss.clients) c.close();
      }, 4000);
      const r = await run;
      expect(r.code).toBe(1);
      const lines = r.stdout.split("\n").filter((l) => l !== "");
      expect(lines[0]).toBe(`watching controller 127.0.0.1:${port}; Ctrl-C to stop`);
      const stamp = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  ";
      expect(lines.slice(1, 5)).toEqual([
        expect.stringMatching(new RegExp(`^${stamp}worker-01 on agent-a: node worker-01 \\(pid 4242\\) exited with code 1$`)),
        expect.stringMatching(new RegExp(`^${stamp}worker-01 on agent-a: RUNNING -> CRASHED$`)),
        expect.stringMatching(new RegExp(`^${stamp}agent-a: error: failed to restart node worker-01$`)),
        expect.stringMatching(new RegExp(`^${stamp}worker-01 on agent-a: CRASHED -> RUNNING$`)),
      ]);
      expect(lines[5]).toMatch(/^error: lost the connection to controller /);
      expect(lines).toHaveLength(6);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it("piped without --json keeps zeek-client's output", async () => {
    const { wss, port } = await notifyingServer();
    try {
      const child = spawn(process.execPath, [CLI, "--controller", `127.0.0.1:${port}`, "monitor"], {
        env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      running.add(child);
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      await until(() => Promise.resolve(out.includes("get_nodes_response(") ? true : undefined), 15_000, "the response");
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      running.delete(child);
      expect(out).toContain('received "Management::Controller::API::get_nodes_response(');
      expect(out).not.toContain("notify_change");
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});

// A real controller and one agent that dials it. The tests below run in order and build on
// each other: stage, inspect, deploy, query, restart.
describe("against a real cluster", () => {
  let env: TestEnv;
  let port = 0;
  const zc = (args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<Run> =>
    runCli(["--controller", `127.0.0.1:${port}`, ...args], { cwd: env.dir, ...opts });
  let stagedId = "";

  const STAGE_ONLY_INI = [
    "[instances]",
    "agent-a",
    "",
    "[manager]",
    "instance = agent-a",
    "role = manager",
    "port = 2200",
    "metrics_port = 9000",
    "",
    "[logger-01]",
    "instance = agent-a",
    "role = Supervisor::LOGGER",
    'scripts = site/local.zeek "dir with space/x.zeek"',
    "",
    "[worker-01]",
    "instance = agent-a",
    "role = worker",
    "interface = lo",
    "cpu_affinity = 1",
    'env = FOO=bar BAZ="a b"',
    "",
  ].join("\n");

  const STAGE_ONLY_RENDERED = [
    "[instances]",
    "agent-a",
    "",
    "[logger-01]",
    "instance = agent-a",
    "role = LOGGER",
    'scripts = "dir with space/x.zeek" site/local.zeek',
    "",
    "[manager]",
    "instance = agent-a",
    "role = MANAGER",
    "port = 2200",
    "metrics_port = 9000",
    "",
    "[worker-01]",
    "instance = agent-a",
    "role = WORKER",
    "interface = lo",
    "cpu_affinity = 1",
    'env = BAZ="a b" FOO=bar',
    "",
    "",
  ].join("\n");

  // What actually runs: two nodes, so the test stays light on a small machine.
  const DEPLOY_INI = "[manager]\ninstance = agent-a\nrole = manager\n\n[worker-01]\ninstance = agent-a\nrole = worker\ninterface = lo\n";

  beforeAll(async () => {
    env = new TestEnv("zmgmt-client-");
    const controller = await env.startController({ requestTimeoutSec: 6 });
    port = controller.port;
    await env.startAgent({
      name: "agent-a",
      controllerPort: port,
      extraArgs: QUICK_AGENT_ARGS,
    });
  }, 60_000);

  afterAll(async () => {
    killClients();
    await env?.cleanup();
  }, 60_000);

  it("get-instances lists the agent once it has connected", async () => {
    const r = await until(
      async () => {
        const run = await zc(["get-instances"]);
        return run.code === 0 && "agent-a" in (json(run) as object) ? run : undefined;
      },
      20_000,
      "agent-a to connect",
    );
    expect(Object.keys(json(r) as object)).toEqual(["agent-a"]);
    expect(r.stderr).toBe("");
  });

  it("get-config fails while nothing is staged", async () => {
    const r = await zc(["get-config"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("error: no staged configuration available\n");
  });

  it("stage-config sends the INI and get-config renders it back", async () => {
    const file = join(env.dir, "stage-only.ini");
    writeFileSync(file, STAGE_ONLY_INI);
    const staged = await zc(["stage-config", file]);
    expect(staged.code).toBe(0);
    const out = json(staged) as StageOutput;
    expect(out.errors).toEqual([]);
    expect(out.results.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(staged.stdout).toBe(`{\n  "errors": [],\n  "results": {\n    "id": "${out.results.id}"\n  }\n}\n`);

    const ini = await zc(["get-config"]);
    expect(ini.code).toBe(0);
    expect(ini.stdout).toBe(STAGE_ONLY_RENDERED);

    const asJson = await zc(["get-config", "--staged", "--as-json"]);
    const config = json(asJson) as ConfigOutput;
    expect(config.id).toBe(out.results.id);
    expect(config.nodes.map((n) => n.name)).toEqual(["logger-01", "manager", "worker-01"]);

    // The rendered INI is itself a valid configuration that renders the same way.
    const again = await zc(["stage-config", "-"], { input: ini.stdout });
    expect(again.code).toBe(0);
    const outFile = join(env.dir, "staged.ini");
    expect((await zc(["get-config", "-f", outFile])).code).toBe(0);
    expect(readFileSync(outFile, "utf8")).toBe(STAGE_ONLY_RENDERED);
  });

  it("stage-config reports the controller's validation errors", async () => {
    const r = await zc(["stage-config", "-"], { input: "[instances]\nagent-a\n\n[manager]\ninstance = agent-zz\nrole = manager\n" });
    expect(r.code).toBe(1);
    const out = json(r) as StageOutput;
    expect(out.results).toEqual({});
    expect(out.errors).toEqual([expect.stringContaining("agent-zz")]);
  });

  it("deploy-config stages and deploys; every node reports success", async () => {
    const r = await zc(["deploy-config", "-"], { input: DEPLOY_INI });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = json(r) as StageOutput;
    expect(out.errors).toEqual([]);
    expect(out.results.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.results.nodes).toEqual({
      manager: { instance: "agent-a", success: true },
      "worker-01": { instance: "agent-a", success: true },
    });
    stagedId = out.results.id ?? "";
  });

  it("get-nodes shows the nodes running with pids and ports", async () => {
    const nodes = await until(
      async () => {
        const run = await zc(["get-nodes"]);
        if (run.code !== 0) return undefined;
        const inst = (json(run) as NodesOutput).results["agent-a"] ?? {};
        return inst.manager?.state === "RUNNING" && inst["worker-01"]?.state === "RUNNING" ? inst : undefined;
      },
      20_000,
      "nodes to run",
    );
    expect(nodes["agent-a"]).toMatchObject({ state: "RUNNING", mgmt_role: "AGENT", cluster_role: null });
    expect(nodes.manager).toMatchObject({
      cluster_role: "MANAGER",
      mgmt_role: null,
      pid: expect.any(Number) as unknown,
      port: expect.any(Number) as unknown,
    });
    expect(nodes["worker-01"]).toMatchObject({ cluster_role: "WORKER", mgmt_role: null, pid: expect.any(Number) as unknown });
  });

  it("deploy redeploys the staged configuration", async () => {
    const r = await zc(["deploy"]);
    expect(r.code).toBe(0);
    expect((json(r) as StageOutput).results.id).toBe(stagedId);
  });

  it("get-config --deployed shows the ports the controller assigned", async () => {
    const r = await zc(["get-config", "--deployed", "--as-json"]);
    expect(r.code).toBe(0);
    const manager = (json(r) as ConfigOutput).nodes.find((n) => n.name === "manager");
    expect(manager?.port).toEqual(expect.any(Number));
    expect((await zc(["get-config", "--deployed", "--staged"])).code).toBe(2);
  });

  it("get-id-value answers per node and reports unknown nodes", async () => {
    const r = await until(
      async () => {
        const run = await zc(["--set", "client.pretty_json=false", "get-id-value", "Cluster::node", "manager", "nope"]);
        return run.stdout.includes('"manager"') ? run : undefined;
      },
      10_000,
      "manager to answer",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('{"errors": [{"error": "unknown cluster node", "source": "nope"}], "results": {"manager": "manager"}}\n');
    const all = await zc(["get-id-value", "Cluster::node"]);
    expect(all.code).toBe(0);
    expect(json(all)).toEqual({ errors: [], results: { manager: "manager", "worker-01": "worker-01" } });
  });

  it("restart restarts a node and rejects unknown ones", async () => {
    const ok = await zc(["restart", "worker-01"]);
    expect(ok.code).toBe(0);
    expect(json(ok)).toEqual({ errors: [], results: { "worker-01": true } });
    const bad = await zc(["restart", "nope"]);
    expect(bad.code).toBe(1);
    expect(json(bad)).toEqual({ errors: [{ error: "unknown cluster node", source: "nope" }], results: {} });
  });

  it("hints at the nodes the controller knows when a name is unknown, on stderr only", async () => {
    const typo = await zc(["restart", "wroker-01"]);
    expect(typo.code).toBe(1);
    expect(json(typo)).toEqual({ errors: [{ error: "unknown cluster node", source: "wroker-01" }], results: {} });
    expect(typo.stderr).toBe('hint: no node "wroker-01" (did you mean worker-01?)\n');
    const far = await zc(["get-id-value", "Cluster::node", "xyz"]);
    expect(far.code).toBe(1);
    expect(json(far)).toEqual({ errors: [{ error: "unknown cluster node", source: "xyz" }], results: {} });
    expect(far.stderr).toBe('hint: no node "xyz"; the cluster\'s nodes are manager, worker-01\n');
    expect((await zc(["-q", "restart", "wroker-01"])).stderr).toBe("");
  });

  it.skipIf(!HAVE_SCRIPT)("on a terminal, the controller's validation errors read like local ones", async () => {
    const file = join(env.dir, "bad-instance.ini");
    writeFileSync(file, "[instances]\nagent-a\n\n[manager]\ninstance = agent-zz\nrole = manager\n");
    const remote = await runTty(["--controller", `127.0.0.1:${port}`, "stage-config", file], { cwd: env.dir });
    expect(remote.code).toBe(1);
    expect(remote.stdout).not.toContain('"errors"');
    expect(remote.stdout).toMatch(/^error: .*agent-zz.*\nerror: configuration has errors, not staged\n$/);
    const badRole = join(env.dir, "bad-role.ini");
    writeFileSync(badRole, "[manager]\ninstance = agent-a\nrole = chef\n");
    const local = await runTty(["--controller", `127.0.0.1:${port}`, "stage-config", badRole], { cwd: env.dir });
    expect(local.code).toBe(1);
    expect(local.stdout).toBe(
      `error: invalid node "manager" configuration: role "chef" is invalid (${badRole}, line 3)\nerror: configuration has errors, not sending\n`,
    );
  });

  it("test-timeout: answered with state, times out without", async () => {
    const withState = await zc(["test-timeout", "--with-state"]);
    expect(withState.code).toBe(0);
    expect(withState.stdout).toBe('{\n  "error": "request timed out",\n  "success": false\n}\n');
    const without = await zc(["--set", "client.request_timeout_secs=1", "test-timeout"]);
    expect(without.code).toBe(1);
    expect(without.stderr).toBe(`error: no response received: websocket connection to 127.0.0.1:${port} timed out\n`);
  });

  it("monitor prints the controller's events until Ctrl-C, then exits 0", async () => {
    const child = spawn(process.execPath, [CLI, "--controller", `127.0.0.1:${port}`, "--set", "client.request_timeout_secs=1", "monitor"], {
      cwd: env.dir,
      env: { ...process.env, ZEEK_CLIENT_CONFIG_FILE: "", ZEEK_CLIENT_CONFIG_SETTINGS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    await until(() => Promise.resolve(out.includes("no response received") ? true : undefined), 10_000, "monitor's first timeout");
    await zc(["get-nodes"]);
    await until(() => Promise.resolve(out.includes("get_nodes_response(") ? true : undefined), 10_000, "monitor to see get_nodes_response");
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    running.delete(child);
    expect(out).toContain(`no response received: websocket connection to 127.0.0.1:${port} timed out\n`);
    expect(out).toContain(
      "received \"Management::Controller::API::get_nodes_response(reqid: <class 'zeekclient.brokertypes.String'>, " +
        "results: <class 'zeekclient.brokertypes.Vector'>)\"\n",
    );
  });
});
