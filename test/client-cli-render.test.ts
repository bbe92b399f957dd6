// The pure half of the client commands: controller Results → zeek-client's output objects,
// exit codes and log lines, checked against the wire-protocol notes' captured examples.

import { describe, expect, it } from "vitest";
import { B, type BrokerData } from "../src/broker/data.js";
import { dataToEvent, decodeDataMessage } from "../src/broker/messages.js";
import { ControllerApi } from "../src/controller/api.js";
import { NodeOutputsCodec } from "../src/management/records.js";
import type { Configuration, Result } from "../src/management/types.js";
import { parseClusterConfig } from "../src/client/cluster-config.js";
import { ackProblem } from "../src/client/connection.js";
import { Logger } from "../src/client/log.js";
import { humanLine, jsonLine, notificationOf } from "../src/client/monitor.js";
import { AgentApi } from "../src/agent/api.js";
import { PyFloat, pyDumps, pyFloatRepr, pyLoads } from "../src/client/pyjson.js";
import { checkEvent, describeEvent } from "../src/client/known-events.js";
import {
  formatConfig,
  renderDeploy,
  renderGetConfig,
  renderGetIdValue,
  renderGetInstances,
  renderGetNodes,
  renderRestart,
  renderStage,
  renderTestTimeout,
  sortResults,
} from "../src/client/render.js";
import { deployTable, idValueTable, instancesTable, nodesTable, restartTable } from "../src/client/tables.js";

const print = (json: unknown, pretty = true): string => pyDumps(json as never, pretty ? 2 : null);

function res(fields: Partial<Result> = {}): Result {
  return { reqid: "r", success: true, ...fields };
}

const str = (s: string): BrokerData => B.str(s);

// Section 3.2: the get_nodes_response as a Zeek controller sends it (one agent, two nodes).
const GET_NODES_RESPONSE = JSON.stringify({
  type: "data-message",
  topic: "zeek/management/controller",
  "@data-type": "vector",
  data: [
    { "@data-type": "count", data: 1 },
    { "@data-type": "count", data: 1 },
    {
      "@data-type": "vector",
      data: [
        { "@data-type": "string", data: "Management::Controller::API::get_nodes_response" },
        {
          "@data-type": "vector",
          data: [
            { "@data-type": "string", data: "f38a0ade-e83a-11f1-9bdd-02fc00000001" },
            {
              "@data-type": "vector",
              data: [
                {
                  "@data-type": "vector",
                  data: [
                    { "@data-type": "string", data: "a1b2c3d4-0000-0000-0000-000000000001" },
                    { "@data-type": "boolean", data: true },
                    { "@data-type": "string", data: "agent-testbox" },
                    {
                      "@data-type": "vector",
                      data: [
                        {
                          "@data-type": "vector",
                          data: [
                            { "@data-type": "string", data: "manager" },
                            { "@data-type": "enum-value", data: "Management::RUNNING" },
                            { "@data-type": "enum-value", data: "Management::NONE" },
                            { "@data-type": "enum-value", data: "Supervisor::MANAGER" },
                            { "@data-type": "integer", data: 4242 },
                            { "@data-type": "port", data: "2200/tcp" },
                            { "@data-type": "port", data: "9000/tcp" },
                          ],
                        },
                        {
                          "@data-type": "vector",
                          data: [
                            { "@data-type": "string", data: "worker-01" },
                            { "@data-type": "enum-value", data: "Management::RUNNING" },
                            { "@data-type": "enum-value", data: "Management::NONE" },
                            { "@data-type": "enum-value", data: "Supervisor::WORKER" },
                            { "@data-type": "integer", data: 4243 },
                            { "@data-type": "none", data: {} },
                            { "@data-type": "port", data: "9001/tcp" },
                          ],
                        },
                      ],
                    },
                    { "@data-type": "none", data: {} },
                    { "@data-type": "none", data: {} },
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ],
});

describe("get-nodes", () => {
  it("renders the section 3.2 response exactly as zeek-client does", () => {
    const event = dataToEvent(decodeDataMessage(GET_NODES_RESPONSE).data);
    expect(checkEvent(event)).toBe("ok");
    const [, results] = ControllerApi.get_nodes_response.parse(event);
    const out = renderGetNodes(results);
    expect(out.exitCode).toBe(0);
    expect(out.logs).toEqual([]);
    expect(print(out.json)).toBe(
      [
        "{",
        '  "errors": [],',
        '  "results": {',
        '    "agent-testbox": {',
        '      "manager": {',
        '        "cluster_role": "MANAGER",',
        '        "metrics_port": 9000,',
        '        "mgmt_role": null,',
        '        "pid": 4242,',
        '        "port": 2200,',
        '        "state": "RUNNING"',
        "      },",
        '      "worker-01": {',
        '        "cluster_role": "WORKER",',
        '        "metrics_port": 9001,',
        '        "mgmt_role": null,',
        '        "pid": 4243,',
        '        "state": "RUNNING"',
        "      }",
        "    }",
        "  }",
        "}",
      ].join("\n"),
    );
  });

  it("reports failures by instance, in zeek-client's result order, and exits 1", () => {
    const out = renderGetNodes([
      res({ success: false, error: "no instances connected" }),
      res({ instance: "b", success: false, error: "timeout" }),
      res({ instance: "a" }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(out.json).toEqual({
      errors: [
        { source: "a", error: "result does not contain node status data" },
        { source: "b", error: "timeout" },
        { source: null, error: "no instances connected" },
      ],
      results: {},
    });
  });

  it("keeps the instance but logs node status it cannot read", () => {
    const out = renderGetNodes([res({ instance: "a", data: B.vec([str("garbage")]) })]);
    expect(out.exitCode).toBe(0);
    expect(out.json).toEqual({ errors: [], results: { a: {} } });
    expect(out.logs[0]!.level).toBe("error");
    expect(out.logs[0]!.message).toMatch(/^NodeStatus data invalid: /);
  });

  it("shows agents with their management role", () => {
    const status = B.vec([
      str("agent-a"),
      B.enumv("Management::RUNNING"),
      B.enumv("Management::AGENT"),
      B.enumv("Supervisor::NONE"),
      B.int(7),
      B.none(),
      B.none(),
    ]);
    const out = renderGetNodes([res({ instance: "agent-a", data: B.vec([status]) })]);
    expect(out.json).toEqual({
      errors: [],
      results: { "agent-a": { "agent-a": { state: "RUNNING", mgmt_role: "AGENT", cluster_role: null, pid: 7 } } },
    });
  });
});

describe("get-instances", () => {
  const inst = (name: string, host: string, port?: number): BrokerData =>
    B.vec([str(name), B.addr(host), port === undefined ? B.none() : B.port(port)]);

  it("prints host and port only as zeek-client does (section 5.5 example)", () => {
    const out = renderGetInstances(res({ data: B.vec([inst("agent-b", "0.0.0.0"), inst("agent-a", "10.0.0.1", 2151)]) }));
    expect(out.exitCode).toBe(0);
    expect(print(out.json)).toBe('{\n  "agent-a": {\n    "host": "10.0.0.1",\n    "port": 2151\n  },\n  "agent-b": {}\n}');
  });

  it("prints a known host without a port, and a port always with its host", () => {
    const out = renderGetInstances(res({ data: B.vec([inst("c", "10.0.0.3"), inst("d", "0.0.0.0", 2151), inst("e", "::1", 2152)]) }));
    expect(out.json).toEqual({ c: { host: "10.0.0.3" }, d: { host: "0.0.0.0", port: 2151 }, e: { host: "::1", port: 2152 } });
  });

  it("fails on a failed result or missing data, but not on malformed instances", () => {
    const failed = renderGetInstances(res({ success: false, error: "boom" }));
    expect(failed).toEqual({ exitCode: 1, logs: [{ level: "error", message: "boom" }] });
    expect(renderGetInstances(res({ success: false })).logs[0]!.message).toBe("no reason given");
    const empty = renderGetInstances(res());
    expect(empty.exitCode).toBe(1);
    expect(empty.logs[0]!.message).toMatch(/^received result did not contain instance data: /);
    const bad = renderGetInstances(res({ data: B.vec([inst("ok", "10.0.0.1"), B.vec([str("bad")])]) }));
    expect(bad.exitCode).toBe(0);
    expect(bad.json).toEqual({});
    expect(bad.logs[0]!.message).toMatch(/^instance data invalid: /);
  });
});

describe("deploy", () => {
  const outputs = (stdout: string, stderr: string): BrokerData => NodeOutputsCodec.encode({ stdout, stderr });

  it("renders the section 5.5 example: one failed node with its outputs, exit 1", () => {
    const out = renderDeploy([
      res({ data: str("cfg-id-123") }),
      res({ instance: "agent-a", node: "manager" }),
      res({ instance: "agent-a", node: "worker-01", success: false, data: outputs("out", "err") }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(out.logs).toEqual([]);
    expect(print(out.json)).toBe(
      [
        "{",
        '  "errors": [],',
        '  "results": {',
        '    "id": "cfg-id-123",',
        '    "nodes": {',
        '      "manager": {',
        '        "instance": "agent-a",',
        '        "success": true',
        "      },",
        '      "worker-01": {',
        '        "instance": "agent-a",',
        '        "stderr": "err",',
        '        "stdout": "out",',
        '        "success": false',
        "      }",
        "    }",
        "  }",
        "}",
      ].join("\n"),
    );
  });

  it("sorts Results by the section 5.5 rules", () => {
    const out = renderDeploy([
      // success=F without node but with an error: the error goes into `errors`
      res({ success: false, error: "earlier deployment x still pending" }),
      res({ success: false, instance: "agent-b", error: "agent trouble" }),
      // success=T without node and instance but with data: the config id
      res({ data: str("cfg-1") }),
      // no instance: skipped with a warning
      res({ node: "stray" }),
      // instance without node: skipped silently
      res({ instance: "agent-c" }),
      // everything else: a node entry
      res({ instance: "agent-a", node: "manager" }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(out.json).toEqual({
      errors: ["earlier deployment x still pending", "agent trouble"],
      results: { id: "cfg-1", nodes: { manager: { instance: "agent-a", success: true } } },
    });
    expect(out.logs).toEqual([{ level: "warning", message: expect.stringMatching(/^skipping unexpected response /) as unknown }]);
  });

  it("fails for a failure that has neither node nor error, and has no nodes entry without node results", () => {
    const out = renderDeploy([res({ success: false, instance: "agent-a" }), res({ data: str("cfg-2") })]);
    expect(out.exitCode).toBe(1);
    expect(out.json).toEqual({ errors: [], results: { id: "cfg-2" } });
  });

  it("reports the controller's refusal", () => {
    const out = renderDeploy([res({ success: false, error: "no configuration available to deploy" })]);
    expect(print(out.json, false)).toBe('{"errors": ["no configuration available to deploy"], "results": {}}');
    expect(out.exitCode).toBe(1);
  });

  it("draws a table with the failed node's output", () => {
    const out = renderDeploy([
      res({ data: str("cfg-id-123") }),
      res({ instance: "agent-a", node: "manager" }),
      res({ instance: "agent-a", node: "worker-01", success: false, data: outputs("", "fatal: no interface") }),
    ]);
    const text = deployTable(out.json as never);
    expect(text).toContain("configuration cfg-id-123");
    expect(text).toMatch(/worker-01.*agent-a.*failed/);
    expect(text).toMatch(/manager.*agent-a.*ok/);
    expect(text).toContain("--- worker-01 stderr ---\nfatal: no interface");
    expect(text).not.toContain("\x1b[");
  });
});

describe("stage-config", () => {
  it("collects errors (with a default text) and exits 1", () => {
    const out = renderStage([res({ success: false, error: "multiple nodes named 'm'" }), res({ success: false })]);
    expect(out.exitCode).toBe(1);
    expect(print(out.json, false)).toBe('{"errors": ["multiple nodes named \'m\'", "no reason given"], "results": {}}');
  });

  it("reports the config id on success", () => {
    const out = renderStage([res({ data: str("abc") })]);
    expect(out.exitCode).toBe(0);
    expect(print(out.json)).toBe('{\n  "errors": [],\n  "results": {\n    "id": "abc"\n  }\n}');
  });
});

describe("get-id-value", () => {
  it("renders the section 5.5 example with an unknown cluster node", () => {
    const out = renderGetIdValue([
      res({ node: "nope", success: false, error: "unknown cluster node" }),
      res({ instance: "agent-a", node: "manager", data: str('"x"') }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(print(out.json, false)).toBe('{"errors": [{"error": "unknown cluster node", "source": "nope"}], "results": {"manager": "x"}}');
  });

  it("keeps Python's number forms and key order of the node's JSON", () => {
    const out = renderGetIdValue([
      res({ instance: "a", node: "n", data: str('{"b": 10.0, "a": 18446744073709551615, "c": [1e-05, 1.5, -0.0, 100]}') }),
    ]);
    expect(out.exitCode).toBe(0);
    expect(print(out.json, false)).toBe(
      '{"errors": [], "results": {"n": {"a": 18446744073709551615, "b": 10.0, "c": [1e-05, 1.5, -0.0, 100]}}}',
    );
  });

  it("turns bad data into errors", () => {
    const out = renderGetIdValue([
      res({ instance: "a", node: "n1", data: B.count(3) }),
      res({ instance: "a", node: "n2", data: str("{oops") }),
      res({ instance: "a", node: "n3" }),
      res({ data: str("1") }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(out.json).toEqual({
      errors: [
        { source: "n1", error: 'invalid result data type {"@data-type": "count", "data": 3}' },
        { source: "n2", error: "JSON decode error: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)" },
        { source: "n3", error: "invalid result data type None" },
        { error: 'result lacking node: {\n    "@data-type": "string",\n    "data": "1"\n}' },
      ],
      results: {},
    });
  });

  it("draws a table of values", () => {
    const out = renderGetIdValue([res({ instance: "a", node: "manager", data: str('{"x": 1}') })]);
    const text = idValueTable(out.json as never);
    expect(text).toMatch(/manager.*\{"x": 1\}/);
  });
});

describe("restart", () => {
  it("renders the section 5.5 example", () => {
    const out = renderRestart([res({ instance: "agent-a", node: "manager" })]);
    expect(out.exitCode).toBe(0);
    expect(print(out.json, false)).toBe('{"errors": [], "results": {"manager": true}}');
  });

  it("counts only controller-side failures as errors", () => {
    const out = renderRestart([
      res({ instance: "agent-a", node: "worker-01", success: false, error: "failed to restart" }),
      res({ node: "nope", success: false, error: "unknown cluster node" }),
      res({ success: false, error: "no active cluster deployment" }),
    ]);
    expect(out.exitCode).toBe(1);
    expect(out.json).toEqual({
      errors: [
        { source: "nope", error: "unknown cluster node" },
        { source: null, error: "no active cluster deployment" },
      ],
      results: { "worker-01": false },
    });
    expect(restartTable(out.json as never)).toMatch(/worker-01.*failed/);
  });
});

describe("test-timeout", () => {
  it("renders the section 5.5 example and exits 0", () => {
    const out = renderTestTimeout(res({ success: false, error: "request timed out" }));
    expect(out.exitCode).toBe(0);
    expect(print(out.json, false)).toBe('{"error": "request timed out", "success": false}');
  });
});

describe("get-config", () => {
  const INI = [
    "[instances]",
    "agent-a = 10.0.0.1:2151",
    "agent-b",
    "",
    "[manager]",
    "instance = agent-a",
    "role = manager",
    "port = 2200",
    "metrics_port = 9000",
    "",
    "[logger-01]",
    "instance = agent-a",
    "role = logger",
    'scripts = site/local.zeek "dir with space/x.zeek"',
    "",
    "[worker-01]",
    "instance = agent-b",
    "role = worker",
    "interface = eth0",
    "cpu_affinity = 2",
    'env = FOO=bar BAZ="a b"',
    "",
  ].join("\n");

  function staged(): Configuration {
    const parsed = parseClusterConfig(INI, { makeId: () => "cfg-1" });
    expect(parsed.errors).toEqual([]);
    return parsed.config!;
  }

  it("prints the section 6 INI from the returned Configuration", () => {
    const data = ControllerApi.get_configuration_response.make("r", res({ data: encodeConfig(staged()) })).args[1]!;
    const [, result] = ControllerApi.get_configuration_response.parse({
      name: ControllerApi.get_configuration_response.name,
      args: [str("r"), data],
    });
    const out = renderGetConfig(result);
    expect(out.exitCode).toBe(0);
    expect(formatConfig(out.config!, false)).toBe(
      [
        "[instances]",
        "agent-a = 10.0.0.1:2151",
        "agent-b",
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
        "instance = agent-b",
        "role = WORKER",
        "interface = eth0",
        "cpu_affinity = 2",
        'env = BAZ="a b" FOO=bar',
        "",
        "",
      ].join("\n"),
    );
  });

  it("prints --as-json with nulls for unset values and no state", () => {
    const text = formatConfig(staged(), true, false);
    expect(text.endsWith("}\n")).toBe(true);
    const obj = JSON.parse(text) as { id: string; instances: unknown[]; nodes: Array<Record<string, unknown>> };
    expect(obj.id).toBe("cfg-1");
    expect(obj.instances).toEqual([{ name: "agent-a", host: "10.0.0.1", port: 2151 }, { name: "agent-b" }]);
    expect(obj.nodes.map((n) => n["name"])).toEqual(["logger-01", "manager", "worker-01"]);
    expect(obj.nodes[1]).toEqual({
      cpu_affinity: null,
      env: {},
      instance: "agent-a",
      interface: null,
      metrics_port: 9000,
      name: "manager",
      options: null,
      port: 2200,
      role: "MANAGER",
      scripts: null,
    });
    expect(text).toContain('"env": {"BAZ": "a b", "FOO": "bar"}');
  });

  it("fails with the controller's reason", () => {
    const out = renderGetConfig(res({ success: false, error: "no staged configuration available" }));
    expect(out).toEqual({ exitCode: 1, logs: [{ level: "error", message: "no staged configuration available" }] });
  });
});

function encodeConfig(config: Configuration): BrokerData {
  return ControllerApi.stage_configuration_request.make("x", config).args[1]!;
}

describe("result ordering", () => {
  it("puts instance results first, by instance then node, and keeps the rest in order", () => {
    const input = [
      res({ error: "first-without-instance" }),
      res({ instance: "b", node: "z" }),
      res({ instance: "a", node: "y" }),
      res({ error: "second-without-instance", node: "aaa" }),
      res({ instance: "a", node: "x" }),
      res({ instance: "a" }),
    ];
    const order = sortResults(input).map((r) => `${r.instance ?? "-"}/${r.node ?? "-"}/${r.error ?? ""}`);
    expect(order).toEqual(["a/x/", "a/y/", "a/-/", "b/z/", "-/-/first-without-instance", "-/aaa/second-without-instance"]);
  });
});

describe("Python JSON", () => {
  it("writes floats like repr()", () => {
    const cases: Array<[number, string]> = [
      [10, "10.0"],
      [1.5, "1.5"],
      [0.1, "0.1"],
      [1e-5, "1e-05"],
      [0.0001, "0.0001"],
      [1e16, "1e+16"],
      [1e15, "1000000000000000.0"],
      [123456789.123, "123456789.123"],
      [-2.5e-10, "-2.5e-10"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
    ];
    for (const [x, text] of cases) expect(pyFloatRepr(x)).toBe(text);
    expect(pyDumps([new PyFloat(NaN), new PyFloat(Infinity), new PyFloat(-Infinity)], null)).toBe("[NaN, Infinity, -Infinity]");
  });

  it("escapes like ensure_ascii and sorts keys by code point", () => {
    expect(pyDumps({ é: 'ü\u007f\n"\\', "\u{1F600}": "\u{1F600}", a: [] }, null)).toBe(
      '{"a": [], "\\u00e9": "\\u00fc\\u007f\\n\\"\\\\", "\\ud83d\\ude00": "\\ud83d\\ude00"}',
    );
    expect(pyDumps({ b: {}, a: [1, { c: null }] }, 2)).toBe('{\n  "a": [\n    1,\n    {\n      "c": null\n    }\n  ],\n  "b": {}\n}');
  });

  it("reads like json.loads", () => {
    expect(pyDumps(pyLoads(' {"__proto__": [true, false, null, "\\u00e9"], "n": -12} '), null)).toBe(
      '{"__proto__": [true, false, null, "\\u00e9"], "n": -12}',
    );
    expect(() => pyLoads("")).toThrow("Expecting value: line 1 column 1 (char 0)");
    expect(() => pyLoads("[1,]")).toThrow("Expecting value: line 1 column 4 (char 3)");
    expect(() => pyLoads('{"a": 1} x')).toThrow("Extra data: line 1 column 10 (char 9)");
  });
});

describe("events", () => {
  it("describes known events the way monitor prints them", () => {
    const ev = ControllerApi.get_nodes_response.make("r", []);
    expect(describeEvent(ev)).toBe(
      "Management::Controller::API::get_nodes_response(reqid: <class 'zeekclient.brokertypes.String'>, results: <class 'zeekclient.brokertypes.Vector'>)",
    );
  });

  it("knows which events zeek-client skips or rejects", () => {
    expect(checkEvent({ name: "Management::Agent::API::notify_agent_hello", args: [] })).toBe("unknown");
    expect(checkEvent({ name: "Management::Controller::API::deploy_response", args: [str("r")] })).toBe("invalid");
    expect(checkEvent({ name: "Management::Controller::API::deploy_response", args: [str("r"), B.set([])] })).toBe("invalid");
    expect(checkEvent(ControllerApi.restart_request.make("r", ["a"]))).toBe("ok");
  });

  it("recognizes a handshake ack", () => {
    expect(ackProblem('{"type": "ack", "endpoint": "e", "version": "2.8"}')).toBeUndefined();
    expect(ackProblem('{"type": "error", "code": "x", "context": "y"}')).toBe(
      'invalid data layout for HandshakeAckMessage: required key "endpoint" missing',
    );
  });
});

describe("tables and logs", () => {
  it("draw get-nodes and get-instances without colors when asked", () => {
    const event = dataToEvent(decodeDataMessage(GET_NODES_RESPONSE).data);
    const [, results] = ControllerApi.get_nodes_response.parse(event);
    const nodes = nodesTable(renderGetNodes([...results, res({ instance: "x", success: false, error: "down" })]).json as never);
    expect(nodes).toMatch(/agent-testbox.*manager.*manager.*RUNNING.*4242.*2200.*9000/);
    expect(nodes).toMatch(/worker-01.*worker.*RUNNING.*4243/);
    expect(nodes).toContain("error: x: down");
    expect(nodes).not.toContain("\x1b[");
    const colored = nodesTable(renderGetNodes(results).json as never, { color: true });
    expect(colored).toContain("\x1b[32mRUNNING\x1b[39m");
    const instances = instancesTable({ "agent-a": { host: "10.0.0.1", port: 2151 }, "agent-b": {} });
    expect(instances).toMatch(/agent-a.*10\.0\.0\.1.*2151.*controller connects to agent/);
    expect(instances).toMatch(/agent-b.*agent connects to controller/);
  });

  it("log in zeek-client's formats and levels", () => {
    const lines: string[] = [];
    const plain = new Logger({ verbosity: 1, write: (t) => lines.push(t) });
    plain.error("e");
    plain.warning("w");
    plain.info("i");
    const rich = new Logger({ verbosity: 3, rich: true, write: (t) => lines.push(t), now: () => new Date(2024, 0, 2, 3, 4, 5) });
    rich.debug("d");
    new Logger({ quiet: true, verbosity: 3, write: (t) => lines.push(t) }).error("never");
    expect(lines).toEqual(["error: e\n", "warning: w\n", "2024-01-02 03:04:05 debug    d\n"]);
  });
});

describe("monitor lines", () => {
  const at = new Date("2026-11-29T10:00:05.123Z");

  it("name the node, its instance and what happened", () => {
    const change = notificationOf(
      AgentApi.notify_change.make(
        "agent-a",
        { name: "worker-01", instance: "agent-a", role: "WORKER", state: "CRASHED", env: {} },
        "RUNNING",
        "CRASHED",
      ),
    )!;
    expect(humanLine(change, at)).toBe("2026-11-29 10:00:05  worker-01 on agent-a: RUNNING -> CRASHED");
    const log = notificationOf(AgentApi.notify_log.make("agent-a", "node worker-01 (pid 7) killed by SIGKILL", "worker-01"))!;
    expect(humanLine(log, at)).toBe("2026-11-29 10:00:05  worker-01 on agent-a: node worker-01 (pid 7) killed by SIGKILL");
    const error = notificationOf(AgentApi.notify_error.make("agent-a", "cannot bind", undefined))!;
    expect(humanLine(error, at)).toBe("2026-11-29 10:00:05  agent-a: error: cannot bind");
    expect(jsonLine(error, at)).toBe('{"time":"2026-11-29T10:00:05.123Z","event":"error","instance":"agent-a","message":"cannot bind"}');
  });

  it("are not made from responses, other events or malformed notifications", () => {
    expect(notificationOf(ControllerApi.get_nodes_response.make("r", []))).toBeUndefined();
    expect(notificationOf({ name: "Other::notify_log", args: [] })).toBeUndefined();
    expect(notificationOf({ name: "Management::Agent::API::notify_change", args: [] })).toBeUndefined();
  });
});
