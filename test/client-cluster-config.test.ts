import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  compareCodePoints,
  parseClusterConfig,
  renderClusterConfigIni,
  renderClusterConfigJson,
  type ParseClusterConfigResult,
} from "../src/client/cluster-config.js";
import { CLUSTER_ROLES, type Configuration, type Instance, type Node } from "../src/management/types.js";
import { ConfigurationCodec } from "../src/management/records.js";
import { decodeDataText, encodeDataText } from "../src/broker/codec.js";

// The example of the wire-protocol notes, section 6.
const EXAMPLE_INI = `[instances]
agent-a = 10.0.0.1:2151
agent-b

[manager]
instance = agent-a
role = manager
port = 2200
metrics_port = 9000

[logger-01]
instance = agent-a
role = logger
scripts = site/local.zeek "dir with space/x.zeek"

[worker-01]
instance = agent-b
role = worker
interface = eth0
cpu_affinity = 2
env = FOO=bar BAZ="a b"
`;

// What zeek-client's get-config printed for it (captured).
const EXAMPLE_RENDERED = `[instances]
agent-a = 10.0.0.1:2151
agent-b

[logger-01]
instance = agent-a
role = LOGGER
scripts = "dir with space/x.zeek" site/local.zeek

[manager]
instance = agent-a
role = MANAGER
port = 2200
metrics_port = 9000

[worker-01]
instance = agent-b
role = WORKER
interface = eth0
cpu_affinity = 2
env = BAZ="a b" FOO=bar

`;

// The `config` argument zeek-client sent for the example (captured).
const CAPTURED_REQUEST = `{"@data-type": "vector", "data": [
  {"@data-type": "string", "data": "f3d59a9e-e83a-11f1-992c-02fc00000001"},
  {"@data-type": "set", "data": [
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "agent-b"}, {"@data-type": "address", "data": "0.0.0.0"}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "agent-a"}, {"@data-type": "address", "data": "10.0.0.1"}, {"@data-type": "port", "data": "2151/tcp"}]}]},
  {"@data-type": "set", "data": [
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "worker-01"}, {"@data-type": "string", "data": "agent-b"}, {"@data-type": "enum-value", "data": "Supervisor::WORKER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "string", "data": "eth0"}, {"@data-type": "integer", "data": 2}, {"@data-type": "table", "data": [{"key": {"@data-type": "string", "data": "BAZ"}, "value": {"@data-type": "string", "data": "a b"}}, {"key": {"@data-type": "string", "data": "FOO"}, "value": {"@data-type": "string", "data": "bar"}}]}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "logger-01"}, {"@data-type": "string", "data": "agent-a"}, {"@data-type": "enum-value", "data": "Supervisor::LOGGER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "none", "data": {}}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "dir with space/x.zeek"}, {"@data-type": "string", "data": "site/local.zeek"}]}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "table", "data": []}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "manager"}, {"@data-type": "string", "data": "agent-a"}, {"@data-type": "enum-value", "data": "Supervisor::MANAGER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "port", "data": "2200/tcp"}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "table", "data": []}, {"@data-type": "port", "data": "9000/tcp"}]}]}]}`;

const EXPECTED_INSTANCES: Instance[] = [
  { name: "agent-a", host: "10.0.0.1", listenPort: 2151 },
  { name: "agent-b", host: "0.0.0.0" },
];

const EXPECTED_NODES: Node[] = [
  { name: "manager", instance: "agent-a", role: "MANAGER", state: "RUNNING", port: 2200, env: {}, metricsPort: 9000 },
  {
    name: "logger-01",
    instance: "agent-a",
    role: "LOGGER",
    state: "RUNNING",
    scripts: ["dir with space/x.zeek", "site/local.zeek"],
    env: {},
  },
  {
    name: "worker-01",
    instance: "agent-b",
    role: "WORKER",
    state: "RUNNING",
    interface: "eth0",
    cpuAffinity: 2,
    env: { FOO: "bar", BAZ: "a b" },
  },
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function ok(text: string, hostname = "testhost"): Configuration {
  const res = parseClusterConfig(text, { fileName: "cluster.ini", hostname });
  expect(res.errors).toEqual([]);
  expect(res.config).toBeDefined();
  return res.config!;
}

function failing(text: string): ParseClusterConfigResult {
  const res = parseClusterConfig(text, { fileName: "cluster.ini", hostname: "testhost" });
  expect(res.config).toBeUndefined();
  expect(res.errors).toHaveLength(1);
  return res;
}

function node(name: string, role: Node["role"], extra: Partial<Node> = {}): Node {
  return { name, instance: "agent-a", role, state: "RUNNING", env: {}, ...extra };
}

describe("the section 6 example", () => {
  it("parses into the Configuration of the captured request", () => {
    const res = parseClusterConfig(EXAMPLE_INI, { fileName: "cluster.ini", hostname: "testhost" });
    expect(res.errors).toEqual([]);
    expect(res.warnings).toEqual([]);
    const config = res.config!;
    expect(config.id).toMatch(UUID);
    expect(config.instances).toEqual(EXPECTED_INSTANCES);
    expect(config.nodes).toEqual(EXPECTED_NODES);

    // Same Broker data as zeek-client sent, apart from the id it chose.
    const captured = decodeDataText(CAPTURED_REQUEST);
    const capturedId = ConfigurationCodec.decode(captured, "config").id;
    expect(encodeDataText(ConfigurationCodec.encode({ ...config, id: capturedId }))).toBe(encodeDataText(captured));
  });

  it("renders back byte for byte as zeek-client's get-config", () => {
    expect(renderClusterConfigIni(ok(EXAMPLE_INI))).toBe(EXAMPLE_RENDERED);
  });

  it("survives INI -> Configuration -> INI -> Configuration", () => {
    const first = ok(EXAMPLE_INI);
    const second = ok(renderClusterConfigIni(first));
    expect(second.id).not.toBe(first.id);
    // Rendering sorts the nodes; the Broker set carrying them has no order anyway.
    const sorted = (c: Configuration) => ({ ...c, id: "", nodes: [...c.nodes].sort((a, b) => compareCodePoints(a.name, b.name)) });
    expect(sorted(second)).toEqual(sorted(first));
    expect(second.nodes.map((n) => n.name)).toEqual(["logger-01", "manager", "worker-01"]);
    expect(renderClusterConfigIni(second)).toBe(EXAMPLE_RENDERED);
  });

  it("renders --as-json with sorted entries, nulls for unset values and {} env", () => {
    const config = ok(EXAMPLE_INI);
    expect(renderClusterConfigJson(config)).toEqual({
      id: config.id,
      instances: [{ name: "agent-a", host: "10.0.0.1", port: 2151 }, { name: "agent-b" }],
      nodes: [
        {
          name: "logger-01",
          instance: "agent-a",
          role: "LOGGER",
          port: null,
          scripts: ["dir with space/x.zeek", "site/local.zeek"],
          options: null,
          interface: null,
          cpu_affinity: null,
          env: {},
          metrics_port: null,
        },
        {
          name: "manager",
          instance: "agent-a",
          role: "MANAGER",
          port: 2200,
          scripts: null,
          options: null,
          interface: null,
          cpu_affinity: null,
          env: {},
          metrics_port: 9000,
        },
        {
          name: "worker-01",
          instance: "agent-b",
          role: "WORKER",
          port: null,
          scripts: null,
          options: null,
          interface: "eth0",
          cpu_affinity: 2,
          env: { BAZ: "a b", FOO: "bar" },
          metrics_port: null,
        },
      ],
    });
  });

  it("gives every parse a fresh id", () => {
    expect(ok(EXAMPLE_INI).id).not.toBe(ok(EXAMPLE_INI).id);
    const fixed = parseClusterConfig(EXAMPLE_INI, { hostname: "h", makeId: () => "fixed" });
    expect(fixed.config!.id).toBe("fixed");
  });
});

describe("node keys", () => {
  it("accepts roles in any case, qualified, and via the type alias (with its warning)", () => {
    const res = parseClusterConfig(
      "[a]\ninstance = i\nrole = Supervisor::WORKER\n[b]\ninstance = i\nrole = pRoXy\n[c]\ninstance = i\ntype = logger\n",
      { hostname: "h" },
    );
    expect(res.errors).toEqual([]);
    expect(res.config!.nodes.map((n) => n.role)).toEqual(["WORKER", "PROXY", "LOGGER"]);
    expect(res.warnings).toEqual(["ignoring unexpected keys: type"]);
  });

  it("ignores state with two warnings, and other keys with one", () => {
    const res = parseClusterConfig("[w1]\nrole = worker\nstate = running\noptions = x\nFoo = 1\n", { hostname: "h" });
    expect(res.errors).toEqual([]);
    expect(res.config!.nodes[0]!.state).toBe("RUNNING");
    expect(res.config!.nodes[0]!.options).toBeUndefined();
    expect(res.warnings).toEqual(['ignoring node "w1" state "running" in configuration', "ignoring unexpected keys: foo, options, state"]);
  });

  it("shlex-splits and sorts scripts, and splits env into VAR=value pairs", () => {
    const c = ok("[w]\nrole = worker\nscripts = z.zeek 'b c.zeek' a.zeek\nenv = A=1=2 B='x y' C=\n");
    expect(c.nodes[0]!.scripts).toEqual(["a.zeek", "b c.zeek", "z.zeek"]);
    expect(c.nodes[0]!.env).toEqual({ A: "1=2", B: "x y", C: "" });
  });

  it("reads cpu_affinity as an int", () => {
    expect(ok("[w]\nrole = worker\ncpu_affinity = 3\n").nodes[0]!.cpuAffinity).toBe(3);
  });

  it("keeps inline comments as part of values (configparser does not strip them)", () => {
    expect(failing("[w]\nrole = worker # note\n").errors).toEqual(['invalid node "w" configuration: role "worker # note" is invalid']);
  });

  it("inherits DEFAULT values in every node", () => {
    const c = ok("[DEFAULT]\ninstance = shared\n[a]\nrole = worker\n[b]\nrole = proxy\n");
    expect(c.nodes.map((n) => n.instance)).toEqual(["shared", "shared"]);
    expect(c.instances).toEqual([{ name: "shared", host: "0.0.0.0" }]);
  });
});

describe("instances", () => {
  it("defaults every node to agent-<hostname> and builds the instance list", () => {
    const c = ok("[m]\nrole = manager\n[w]\nrole = worker\n", "box");
    expect(c.nodes.map((n) => n.instance)).toEqual(["agent-box", "agent-box"]);
    expect(c.instances).toEqual([{ name: "agent-box", host: "0.0.0.0" }]);
    expect(ok("[m]\nrole = manager\n", "").nodes[0]!.instance).toBe("agent-localhost");
  });

  it("without [instances], synthesizes sorted unknown-address instances from the nodes", () => {
    const c = ok("[a]\ninstance = zed\nrole = worker\n[b]\ninstance = alpha\nrole = worker\n[c]\ninstance = zed\nrole = proxy\n");
    expect(c.instances).toEqual([
      { name: "alpha", host: "0.0.0.0" },
      { name: "zed", host: "0.0.0.0" },
    ]);
  });

  it("accepts [v6]:port and bare IPv6 host:port, and renders IPv6 without brackets", () => {
    const c = ok("[instances]\nv6 = [fe80::1]:2151\nbare = ::1:2152\n[m]\ninstance = v6\nrole = manager\n");
    expect(c.instances).toEqual([
      { name: "v6", host: "fe80::1", listenPort: 2151 },
      { name: "bare", host: "::1", listenPort: 2152 },
    ]);
    expect(renderClusterConfigIni(c)).toBe("[instances]\nbare = ::1:2152\nv6 = fe80::1:2151\n\n[m]\ninstance = v6\nrole = MANAGER\n\n");
  });

  it("lower-cases instance names (they are INI keys)", () => {
    expect(ok("[instances]\nAgent-A\n[m]\ninstance = agent-a\nrole = manager\n").instances).toEqual([{ name: "agent-a", host: "0.0.0.0" }]);
  });
});

describe("error texts", () => {
  const cases: Array<[string, string, string]> = [
    ["bad role", "[w]\nrole = x\n", 'invalid node "w" configuration: role "x" is invalid'],
    ["missing role", "[w]\ninstance = a\n", 'invalid node "w" configuration: node requires a role'],
    ["empty role", "[w]\nrole =\n", 'invalid node "w" configuration: node requires a role'],
    [
      "port not an int",
      "[manager]\nrole = manager\nport = eighty\n",
      'invalid node "manager" configuration: cannot convert "manager.port" value "eighty" to int',
    ],
    ["port too big", "[m]\nrole = manager\nport = 70000\n", 'invalid node "m" configuration: port 70000 outside valid range'],
    ["port zero", "[m]\nrole = manager\nport = 0\n", 'invalid node "m" configuration: port 0 outside valid range'],
    [
      "metrics port",
      "[m]\nrole = manager\nmetrics_port = 65536\n",
      'invalid node "m" configuration: metrics port 65536 outside valid range',
    ],
    [
      "metrics port not an int",
      "[m]\nrole = manager\nmetrics_port = x\n",
      'invalid node "m" configuration: cannot convert "m.metrics_port" value "x" to int',
    ],
    [
      "cpu_affinity not an int",
      "[m]\nrole = manager\ncpu_affinity = 1.5\n",
      'invalid node "m" configuration: cannot convert "m.cpu_affinity" value "1.5" to int',
    ],
    ["instance without port", "[instances]\nagent = foo:\n", 'invalid spec for instance "agent": "foo:" should be <host>:<port>'],
    ["instance without host", "[instances]\nagent = :2151\n", 'invalid spec for instance "agent": ":2151" should be <host>:<port>'],
    ["instance without colon", "[instances]\nagent = 10.0.0.1\n", 'invalid spec for instance "agent": "10.0.0.1" should be <host>:<port>'],
    [
      "instance with a name for a host",
      "[instances]\nagent = foo:2151\n",
      `invalid spec for instance "agent": 'foo' does not appear to be an IPv4 or IPv6 address`,
    ],
    ["instance with a bad port", "[instances]\nagent = 10.0.0.1:x\n", 'invalid spec for instance "agent": cannot convert port "x" to int'],
    ["instance port out of range", "[instances]\nagent = 10.0.0.1:0\n", 'invalid spec for instance "agent": port 0 outside valid range'],
    ["valueless node key", "[w]\nrole = worker\ninterface\n", "config item w.interface needs a value"],
    ["mixed instances", "[a]\ninstance = x\nrole = worker\n[b]\nrole = worker\n", "either all or no nodes must state instances"],
    [
      "instances section without node instances",
      "[instances]\nx\n[b]\nrole = worker\n",
      "omit instances section when skipping instances in node definitions",
    ],
    ["bad env item", "[w]\nrole = worker\nenv = FOO\n", 'invalid node "w" configuration: env value "FOO" is invalid'],
    ["unbalanced env quotes", '[w]\nrole = worker\nenv = FOO="a\n', 'invalid node "w" configuration: env value "FOO="a" is invalid'],
    ["unbalanced script quotes", '[w]\nrole = worker\nscripts = "a\n', 'invalid node "w" configuration: No closing quotation'],
    ["duplicate section", "[w]\nrole = worker\n\n[w]\n", "While reading from 'cluster.ini' [line  4]: section 'w' already exists"],
    [
      "duplicate key",
      "[w]\nrole = worker\nROLE = proxy\n",
      "While reading from 'cluster.ini' [line  3]: option 'role' in section 'w' already exists",
    ],
    ["key before a section", "role = worker\n", "File contains no section headers.\nfile: 'cluster.ini', line: 1\n'role = worker\\n'"],
    ["bad interpolation", "[w]\nrole = worker\ninterface = 100%\n", "'%' must be followed by '%' or '(', found: '%'"],
  ];

  for (const [label, text, message] of cases) {
    it(label, () => {
      expect(failing(text).errors).toEqual([message]);
    });
  }

  it("stops at the first error but keeps earlier warnings", () => {
    const res = failing("[a]\nrole = worker\nstate = x\n[b]\nrole = nope\n[c]\nrole = nope2\n");
    expect(res.errors).toEqual(['invalid node "b" configuration: role "nope" is invalid']);
    expect(res.warnings).toEqual(['ignoring node "a" state "x" in configuration', "ignoring unexpected keys: state"]);
  });
});

describe("rendering", () => {
  it("prints keys in fixed order, only when set, and quotes values with whitespace", () => {
    const config: Configuration = {
      id: "x",
      instances: [
        { name: "b", host: "0.0.0.0" },
        { name: "a", host: "10.0.0.2", listenPort: 2151 },
      ],
      nodes: [
        node("z", "WORKER", {
          metricsPort: 9001,
          env: { Z: "1", A: "two words" },
          cpuAffinity: 0,
          interface: "",
          scripts: ["b.zeek", "a b.zeek"],
          port: 3000,
        }),
        node("m", "MANAGER", { scripts: [] }),
      ],
    };
    expect(renderClusterConfigIni(config)).toBe(
      "[instances]\na = 10.0.0.2:2151\nb\n\n" +
        "[m]\ninstance = agent-a\nrole = MANAGER\n\n" +
        '[z]\ninstance = agent-a\nrole = WORKER\nport = 3000\nscripts = "a b.zeek" b.zeek\ninterface = \ncpu_affinity = 0\nenv = A="two words" Z=1\nmetrics_port = 9001\n\n',
    );
  });

  it("prints no [instances] section when there are none", () => {
    expect(renderClusterConfigIni({ id: "x", instances: [], nodes: [node("m", "MANAGER")] })).toBe(
      "[m]\ninstance = agent-a\nrole = MANAGER\n\n",
    );
    expect(renderClusterConfigIni({ id: "x", instances: [], nodes: [] })).toBe("");
  });

  it("--as-json shows host only when known, and always with a port", () => {
    const json = renderClusterConfigJson({
      id: "x",
      instances: [
        { name: "c", host: "0.0.0.0", listenPort: 1 },
        { name: "b", host: "10.0.0.3" },
        { name: "a", host: "0.0.0.0" },
      ],
      nodes: [node("n", "PROXY", { options: [{ name: "o", value: "v" }] })],
    });
    expect(json.instances).toEqual([{ name: "a" }, { name: "b", host: "10.0.0.3" }, { name: "c", host: "0.0.0.0", port: 1 }]);
    expect(json.nodes[0]!.options).toEqual([{ name: "o", value: "v" }]);
  });

  it("sorts by code point, as Python does", () => {
    expect(["b", "B", "é", "\u{1F600}", "\uFFFD"].sort(compareCodePoints)).toEqual(["B", "b", "é", "\uFFFD", "\u{1F600}"]);
  });
});

describe("render -> parse property", () => {
  const word = fc.stringMatching(/^[A-Za-z0-9_./+-]{1,8}$/);
  const spaced = fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => w.join(" "));
  const instanceName = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/);
  const nodeName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,8}$/).filter((n) => n !== "instances" && n !== "DEFAULT");
  const port = fc.integer({ min: 1, max: 65535 });
  const host = fc.oneof(
    fc.ipV4(),
    fc.ipV6().filter((h) => !h.includes("%")),
    fc.constant("0.0.0.0"),
  );
  const instance = fc.oneof(fc.record({ host, listenPort: port }), fc.constant({ host: "0.0.0.0" }));

  const configArb = fc
    .uniqueArray(fc.tuple(instanceName, instance), { selector: ([n]) => n, minLength: 1, maxLength: 4 })
    .chain((insts) => {
      const instances: Instance[] = insts.map(([name, rest]) => ({ name, ...rest })).sort((a, b) => compareCodePoints(a.name, b.name));
      const nodeArb = fc.record(
        {
          instance: fc.constantFrom(...instances.map((i) => i.name)),
          role: fc.constantFrom(...CLUSTER_ROLES),
          port,
          scripts: fc.array(fc.oneof(word, spaced), { minLength: 1, maxLength: 4 }).map((s) => s.sort(compareCodePoints)),
          interface: fc.oneof(word, spaced, fc.constant("")),
          cpuAffinity: fc.integer({ min: -4, max: 1024 }),
          env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,6}$/), fc.oneof(word, spaced, fc.constant(""))),
          metricsPort: port,
        },
        { requiredKeys: ["instance", "role", "env"] },
      );
      return fc.uniqueArray(fc.tuple(nodeName, nodeArb), { selector: ([n]) => n, maxLength: 5 }).map((nodes): Configuration => ({
        id: "generated",
        instances,
        nodes: nodes.map(([name, n]): Node => ({ name, state: "RUNNING", ...n })).sort((a, b) => compareCodePoints(a.name, b.name)),
      }));
    });

  it("generated configs come back unchanged, apart from the id", () => {
    fc.assert(
      fc.property(configArb, (config) => {
        const res = parseClusterConfig(renderClusterConfigIni(config), { hostname: "h" });
        expect(res.errors).toEqual([]);
        expect(res.warnings).toEqual([]);
        expect({ ...res.config!, id: "generated" }).toEqual(config);
      }),
      { numRuns: 300 },
    );
  });
});

describe("error lines", () => {
  it("point at the key or section at fault, and at nothing for syntax errors (their message names the line)", () => {
    const at = (text: string): (number | undefined)[] => parseClusterConfig(text, { hostname: "h" }).errorLines;
    expect(at("# a comment\n[w]\ninstance = a\nRole = chef\n")).toEqual([4]);
    expect(at("[m]\nrole = manager\n\nport = 70000\n")).toEqual([4]);
    expect(at("[m]\nrole = manager\nmetrics_port = x\n")).toEqual([3]);
    expect(at("[w]\ninstance = a\n")).toEqual([1]);
    expect(at("[w]\nrole = worker\ninterface\n")).toEqual([3]);
    expect(at("[instances]\na = host:port\n\n[m]\ninstance = a\nrole = manager\n")).toEqual([2]);
    expect(at("[w]\nrole = worker\nenv = FOO\n")).toEqual([3]);
    expect(at("[m]\nrole = manager\n[m]\nrole = worker\n")).toEqual([undefined]);
    expect(at("[m]\nrole = manager\n")).toEqual([]);
  });
});
