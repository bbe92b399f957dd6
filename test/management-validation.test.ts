import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { CLUSTER_ROLES, type ClusterRole, type Configuration, type Instance, type Node } from "../src/management/types.js";
import { compareText, validateConfiguration, type ValidationOptions } from "../src/management/validation.js";

function inst(name: string, listenPort?: number, host = "0.0.0.0"): Instance {
  return listenPort === undefined ? { name, host } : { name, host, listenPort };
}

function node(name: string, instance: string, role: ClusterRole, extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

function cfg(instances: Instance[], nodes: Node[]): Configuration {
  return { id: "test", instances, nodes };
}

/** manager + worker on one instance: valid, and the base most single-check cases extend. */
function minimal(extraNodes: Node[] = [], managerExtra: Partial<Node> = {}): Configuration {
  return cfg(
    [inst("instance-1")],
    [node("manager", "instance-1", "MANAGER", managerExtra), node("worker", "instance-1", "WORKER", { interface: "eth0" }), ...extraNodes],
  );
}

describe("upstream checks (baselines)", () => {
  it("accepts a plain valid configuration", () => {
    expect(validateConfiguration(minimal())).toEqual([]);
  });

  it("accepts an empty configuration and instances without nodes", () => {
    expect(validateConfiguration(cfg([], []))).toEqual([]);
    expect(validateConfiguration(cfg([inst("instance-1"), inst("instance-2")], []))).toEqual([]);
  });

  it("stage-config-conflict-node-agent-ports", () => {
    const config = cfg(
      [inst("instance-1", 3000, "127.0.0.1")],
      [node("manager", "instance-1", "MANAGER", { port: 3000 }), node("worker", "instance-1", "WORKER", { interface: "eth0" })],
    );
    expect(validateConfiguration(config)).toEqual(["node 'manager' port 3000/tcp conflicts with agent port on instance 'instance-1'"]);
  });

  it("agent port conflicts are per instance", () => {
    const config = cfg(
      [inst("instance-1", 3000), inst("instance-2")],
      [node("manager", "instance-2", "MANAGER", { port: 3000 }), node("worker", "instance-1", "WORKER", { interface: "eth0" })],
    );
    expect(validateConfiguration(config)).toEqual([]);
  });

  it("stage-config-conflict-node-controller-port", () => {
    const config = minimal([], { port: 2150 });
    expect(validateConfiguration(config)).toEqual(["node 'manager' port 2150/tcp conflicts with controller port"]);
  });

  it("compares against the configured controller port, and 0 disables the check", () => {
    expect(validateConfiguration(minimal([], { port: 2150 }), { controllerPort: 4000 })).toEqual([]);
    expect(validateConfiguration(minimal([], { port: 4000 }), { controllerPort: 4000 })).toEqual([
      "node 'manager' port 4000/tcp conflicts with controller port",
    ]);
    expect(validateConfiguration(minimal([], { port: 2150 }), { controllerPort: 0 })).toEqual([]);
  });

  it("checks the controller WebSocket port only when it is given (fix of upstream quirk)", () => {
    const config = minimal([], { port: 2149 });
    expect(validateConfiguration(config)).toEqual([]);
    expect(validateConfiguration(config, { controllerWebSocketPort: 2149 })).toEqual([
      "node 'manager' port 2149/tcp conflicts with controller WebSocket port",
    ]);
  });

  it("stage-config-conflict-node-ports: one error for three nodes, other instance fine", () => {
    const config = cfg(
      [inst("instance-1"), inst("instance-2")],
      [
        node("manager", "instance-1", "MANAGER", { port: 5000 }),
        node("worker1", "instance-1", "WORKER", { port: 5000, interface: "eth0" }),
        node("worker2", "instance-1", "WORKER", { port: 5000, interface: "eth0" }),
        node("worker3", "instance-2", "WORKER", { port: 5000, interface: "eth0" }),
      ],
    );
    expect(validateConfiguration(config)).toEqual(["multiple nodes on instance 'instance-1' using port 5000/tcp"]);
  });

  it("stage-config-invalid-naming", () => {
    const config = cfg(
      [inst("instance-1")],
      [node("instance-1", "instance-1", "MANAGER"), node("worker", "instance-1", "WORKER", { interface: "eth0" })],
    );
    expect(validateConfiguration(config)).toEqual(["node and instance names collide: instance-1"]);
  });

  it("reports all colliding names in one sorted error", () => {
    const config = cfg(
      [inst("beta"), inst("alpha"), inst("instance-1")],
      [node("manager", "instance-1", "MANAGER"), node("beta", "instance-1", "WORKER"), node("alpha", "instance-1", "WORKER")],
    );
    expect(validateConfiguration(config)).toEqual(["node and instance names collide: alpha, beta"]);
  });

  it("stage-config-mismatch-instance-names: two sorted errors", () => {
    const config = cfg(
      [inst("instance-1")],
      [node("worker", "instance-3", "WORKER", { interface: "eth0" }), node("manager", "instance-2", "MANAGER")],
    );
    expect(validateConfiguration(config)).toEqual([
      "node 'manager' has undeclared instance name 'instance-2'",
      "node 'worker' has undeclared instance name 'instance-3'",
    ]);
  });

  it("stage-config-auto-assign-disabled", () => {
    const config = cfg(
      [inst("instance-1")],
      [
        node("manager", "instance-1", "MANAGER"),
        node("logger-01", "instance-1", "LOGGER"),
        node("proxy-01", "instance-1", "PROXY"),
        node("worker-01", "instance-1", "WORKER", { interface: "eth0" }),
      ],
    );
    expect(validateConfiguration(config, { autoAssignBrokerPorts: false })).toEqual([
      "Broker port auto-assignment disabled but nodes logger-01, manager, proxy-01 lack ports",
    ]);
    expect(validateConfiguration(config)).toEqual([]);
    expect(validateConfiguration(config, { autoAssignBrokerPorts: true })).toEqual([]);
  });

  it("auto-assignment disabled is fine when every non-worker has a port", () => {
    const config = cfg(
      [inst("instance-1")],
      [node("manager", "instance-1", "MANAGER", { port: 2200 }), node("worker-01", "instance-1", "WORKER", { interface: "eth0" })],
    );
    expect(validateConfiguration(config, { autoAssignBrokerPorts: false })).toEqual([]);
  });

  it("reports each duplicate instance name once", () => {
    const config = cfg([inst("instance-1"), inst("instance-1", 2151), inst("instance-1", 2152)], []);
    expect(validateConfiguration(config)).toEqual(["multiple instances named 'instance-1'"]);
  });

  it("reports each duplicate node name once", () => {
    const config = minimal([
      node("worker", "instance-1", "WORKER", { interface: "eth1" }),
      node("worker", "instance-1", "WORKER", { interface: "eth2" }),
    ]);
    expect(validateConfiguration(config)).toEqual(["multiple nodes named 'worker'"]);
  });

  it("sorts errors by text, uppercase before lowercase as strcmp does", () => {
    const config = cfg(
      [inst("instance-1", 3000)],
      [
        node("manager", "instance-1", "MANAGER", { port: 3000 }),
        node("logger", "instance-1", "LOGGER"),
        node("worker", "instance-9", "WORKER", { interface: "eth0" }),
      ],
    );
    expect(validateConfiguration(config, { autoAssignBrokerPorts: false })).toEqual([
      "Broker port auto-assignment disabled but nodes logger lack ports",
      "node 'manager' port 3000/tcp conflicts with agent port on instance 'instance-1'",
      "node 'worker' has undeclared instance name 'instance-9'",
    ]);
  });
});

describe("additional checks", () => {
  const only = (config: Configuration, options = {}) => validateConfiguration(config, options);

  it("empty instance name", () => {
    const config = cfg([inst("instance-1"), inst("")], minimal().nodes);
    expect(only(config)).toEqual(["instance with empty name; give every instance a unique, non-empty name"]);
  });

  it("empty node name", () => {
    expect(only(minimal([node("", "instance-1", "WORKER")]))).toEqual([
      "node with empty name on instance 'instance-1'; give every node a unique, non-empty name",
    ]);
  });

  it.each([
    ["worker 1", "it contains whitespace"],
    ["worker\t1", "it contains control characters"],
    ["a/b", "it contains '/'"],
    ["..", "'.' and '..' are not usable as directory names"],
    [".", "'.' and '..' are not usable as directory names"],
  ])("unusable node name %j", (name, reason) => {
    const shown = JSON.stringify(name).slice(1, -1);
    expect(only(minimal([node(name, "instance-1", "WORKER")]))).toEqual([
      `node name '${shown}' is unusable: ${reason}; node names become process and directory ` +
        `names, so use letters, digits, '-', '_' and '.'`,
    ]);
  });

  it("accepts ordinary names with dots, dashes and underscores", () => {
    expect(only(minimal([node("worker-1.a_b", "instance-1", "WORKER"), node("a..b", "instance-1", "WORKER")]))).toEqual([]);
  });

  it("unusable instance name", () => {
    const config = cfg([inst("my host")], [node("manager", "my host", "MANAGER")]);
    expect(only(config)).toEqual([
      "instance name 'my host' is unusable: it contains whitespace; instance names become agent " +
        "names, directory names and Broker topic parts, so use letters, digits, '-', '_' and '.'",
    ]);
  });

  it("role NONE", () => {
    expect(only(minimal([node("odd", "instance-1", "NONE")]))).toEqual([
      "node 'odd' has role NONE; set its role to MANAGER, LOGGER, PROXY or WORKER",
    ]);
  });

  it("unknown role", () => {
    expect(only(minimal([node("odd", "instance-1", "manager" as ClusterRole)]))).toEqual([
      "node 'odd' has unknown role 'manager'; set its role to MANAGER, LOGGER, PROXY or WORKER",
    ]);
  });

  it("no manager", () => {
    const config = cfg([inst("instance-1")], [node("worker", "instance-1", "WORKER")]);
    expect(only(config)).toEqual(["configuration has nodes but no MANAGER node; give exactly one node the role MANAGER"]);
  });

  it("more than one manager", () => {
    const config = minimal([node("manager-b", "instance-1", "MANAGER"), node("manager-a", "instance-1", "MANAGER")]);
    expect(only(config)).toEqual([
      "configuration has 3 MANAGER nodes (manager, manager-a, manager-b); a cluster has exactly " + "one, so change the role of the others",
    ]);
  });

  it.each([0, 65536, -1, 1.5, Number.NaN])("node port %s out of range", (port) => {
    expect(only(minimal([], { port }))).toEqual([
      `node 'manager' port ${port} is not a valid TCP port; use a number from 1 to 65535, or leave it unset`,
    ]);
  });

  it("accepts the port range boundaries", () => {
    expect(only(minimal([node("proxy", "instance-1", "PROXY", { port: 65535 })], { port: 1 }))).toEqual([]);
  });

  it("metrics port out of range", () => {
    expect(only(minimal([], { metricsPort: 70000 }))).toEqual([
      "node 'manager' metrics port 70000 is not a valid TCP port; use a number from 1 to 65535, or leave it unset",
    ]);
  });

  it("instance listen port out of range", () => {
    const config = cfg([inst("instance-1", 0)], minimal().nodes);
    expect(only(config)).toEqual([
      "instance 'instance-1' listen port 0 is not a valid TCP port; use a number from 1 to 65535, " +
        "or leave it unset if the agent connects to the controller",
    ]);
  });

  it("negative cpu_affinity, and a fractional one", () => {
    expect(only(minimal([], { cpuAffinity: -1 }))).toEqual([
      "node 'manager' cpu_affinity -1 is negative; use a CPU number (0 or higher), or leave it unset",
    ]);
    expect(only(minimal([], { cpuAffinity: 0.5 }))).toEqual([
      "node 'manager' cpu_affinity 0.5 is not a whole number; use a CPU number (0 or higher), or leave it unset",
    ]);
    expect(only(minimal([], { cpuAffinity: 0 }))).toEqual([]);
  });

  it.each(["1ABC", "A-B", "", "A B", "É"])("invalid env variable name %j", (key) => {
    expect(only(minimal([], { env: { GOOD_1: "x", _ok: "y", [key]: "v" } }))).toEqual([
      `node 'manager' env variable name '${key}' is not valid; names must start with a letter ` +
        `or '_' and contain only letters, digits and '_'`,
    ]);
  });

  it("metrics port equal to another node's Broker port on the same instance", () => {
    const config = minimal([node("logger", "instance-1", "LOGGER", { port: 2200 })], { metricsPort: 2200 });
    expect(only(config)).toEqual([
      "node 'manager' metrics port 2200/tcp conflicts with Broker port of node 'logger' on " +
        "instance 'instance-1'; pick a different metrics port",
    ]);
  });

  it("metrics port equal to the node's own Broker port", () => {
    expect(only(minimal([], { port: 2200, metricsPort: 2200 }))).toEqual([
      "node 'manager' metrics port 2200/tcp conflicts with Broker port of node 'manager' on " +
        "instance 'instance-1'; pick a different metrics port",
    ]);
  });

  it("metrics port equal to the agent port", () => {
    const config = cfg([inst("instance-1", 2151)], minimal([], { metricsPort: 2151 }).nodes);
    expect(only(config)).toEqual([
      "node 'manager' metrics port 2151/tcp conflicts with agent port on instance 'instance-1'; " + "pick a different metrics port",
    ]);
  });

  it("metrics and Broker ports on different instances do not conflict", () => {
    const config = cfg(
      [inst("instance-1", 2151), inst("instance-2")],
      [
        node("manager", "instance-1", "MANAGER", { port: 2200 }),
        node("worker", "instance-2", "WORKER", { metricsPort: 2200 }),
        node("worker2", "instance-2", "WORKER", { metricsPort: 2151 }),
      ],
    );
    expect(only(config)).toEqual([]);
  });

  it("duplicate explicit metrics ports on one instance, reported once", () => {
    const config = minimal(
      [node("w2", "instance-1", "WORKER", { metricsPort: 9000 }), node("w1", "instance-1", "WORKER", { metricsPort: 9000 })],
      { metricsPort: 9000 },
    );
    expect(only(config)).toEqual([
      "multiple nodes on instance 'instance-1' using metrics port 9000/tcp (manager, w1, w2); " + "give each node its own metrics port",
    ]);
  });

  it("same metrics port on different instances is fine", () => {
    const config = cfg(
      [inst("instance-1"), inst("instance-2")],
      [node("manager", "instance-1", "MANAGER", { metricsPort: 9000 }), node("worker", "instance-2", "WORKER", { metricsPort: 9000 })],
    );
    expect(only(config)).toEqual([]);
  });

  it("requireWorkerInterface flags workers without an interface, only when enabled", () => {
    const config = minimal([node("w2", "instance-1", "WORKER"), node("w3", "instance-1", "WORKER", { interface: "" })]);
    expect(only(config)).toEqual([]);
    expect(only(config, { requireWorkerInterface: true })).toEqual([
      "worker node 'w2' has no interface; set the interface it should sniff, or turn off requireWorkerInterface",
      "worker node 'w3' has no interface; set the interface it should sniff, or turn off requireWorkerInterface",
    ]);
  });

  it("the extra checks stay quiet on every upstream baseline config", () => {
    // A baseline that only expects upstream's own message must not grow extra lines.
    const config = cfg(
      [inst("instance-1", 3000, "127.0.0.1")],
      [node("manager", "instance-1", "MANAGER", { port: 3000 }), node("worker", "instance-1", "WORKER", { interface: "eth0" })],
    );
    expect(validateConfiguration(config, { requireWorkerInterface: true })).toHaveLength(1);
  });
});

describe("properties", () => {
  const name = fc.oneof(
    fc.constantFrom("manager", "worker", "instance-1", "instance-2", "", " ", "..", "a/b", "__proto__"),
    fc.string({ maxLength: 6 }),
    fc.string({ unit: "binary", maxLength: 4 }),
  );
  const port = fc.option(
    fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.constantFrom(2150, 2149, 2151, 3000, 5000, 9000, 0, Number.NaN, Infinity, 1.5)),
    { nil: undefined },
  );
  const role = fc.oneof(fc.constantFrom(...CLUSTER_ROLES), fc.string({ maxLength: 4 })) as fc.Arbitrary<ClusterRole>;
  // Like role, deliberately looser than the types: an optional field may also be present
  // holding undefined, and the validator must take that as absent.
  const instanceArb = fc.record(
    { name, host: fc.constantFrom("0.0.0.0", "127.0.0.1", "::1"), listenPort: port },
    { requiredKeys: ["name", "host"] },
  ) as fc.Arbitrary<Instance>;
  const nodeArb = fc.record(
    {
      name,
      instance: name,
      role,
      state: fc.constant("RUNNING" as const),
      port,
      interface: fc.option(fc.constantFrom("eth0", ""), { nil: undefined }),
      cpuAffinity: fc.option(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double()), { nil: undefined }),
      env: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })),
      metricsPort: port,
    },
    { requiredKeys: ["name", "instance", "role", "state", "env"] },
  ) as fc.Arbitrary<Node>;
  const configArb: fc.Arbitrary<Configuration> = fc.record({
    id: fc.string(),
    instances: fc.array(instanceArb, { maxLength: 5 }),
    nodes: fc.array(nodeArb, { maxLength: 8 }),
  });
  const optionsArb = fc.record(
    {
      controllerPort: port,
      controllerWebSocketPort: port,
      autoAssignBrokerPorts: fc.boolean(),
      requireWorkerInterface: fc.boolean(),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<ValidationOptions>;

  it("never throws and always returns sorted strings", () => {
    fc.assert(
      fc.property(configArb, optionsArb, (config, options) => {
        const errors = validateConfiguration(config, options);
        expect(Array.isArray(errors)).toBe(true);
        for (const e of errors) expect(typeof e).toBe("string");
        for (let i = 1; i < errors.length; i++) {
          expect(Buffer.compare(Buffer.from(errors[i - 1]!), Buffer.from(errors[i]!))).toBeLessThanOrEqual(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("a config that passes has unique names and only declared instances", () => {
    fc.assert(
      fc.property(configArb, (config) => {
        fc.pre(validateConfiguration(config).length === 0);
        const instNames = config.instances.map((i) => i.name);
        const nodeNames = config.nodes.map((n) => n.name);
        expect(new Set(instNames).size).toBe(instNames.length);
        expect(new Set(nodeNames).size).toBe(nodeNames.length);
        for (const n of config.nodes) expect(instNames).toContain(n.instance);
      }),
      { numRuns: 300 },
    );
  });

  it("does not touch its input", () => {
    fc.assert(
      fc.property(configArb, (config) => {
        const before = structuredClone(config);
        validateConfiguration(config);
        expect(config).toEqual(before);
      }),
      { numRuns: 100 },
    );
  });

  it("compareText orders by UTF-8 bytes", () => {
    expect(compareText("B", "a")).toBeLessThan(0);
    expect(compareText("a", "a")).toBe(0);
    // U+FF5E sorts before U+1F600 in UTF-8 but after it in UTF-16 code units.
    expect(compareText("\uff5e", "\u{1f600}")).toBeLessThan(0);
  });
});
