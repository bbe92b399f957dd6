import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { assignBrokerPorts, assignMetricsPorts, fillObservedHosts, prepareReadyConfig } from "../src/controller/ports.js";
import type { ClusterRole, Configuration, Instance, Node } from "../src/management/types.js";
import { validateConfiguration } from "../src/management/validation.js";

function inst(name: string, host = "0.0.0.0", listenPort?: number): Instance {
  return listenPort === undefined ? { name, host } : { name, host, listenPort };
}

function node(name: string, instance: string, role: ClusterRole, extra: Partial<Node> = {}): Node {
  return { name, instance, role, state: "RUNNING", env: {}, ...extra };
}

function cfg(instances: Instance[], nodes: Node[]): Configuration {
  return { id: "cfg-1", instances, nodes };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function field(config: Configuration, key: "port" | "metricsPort"): Record<string, number | undefined> {
  return Object.fromEntries(config.nodes.map((n) => [n.name, n[key]]));
}

/** The stage-config-auto-assign input: proxy-01 pins 1234. */
function autoAssignConfig(): Configuration {
  return cfg(
    [inst("instance-1")],
    [
      node("manager", "instance-1", "MANAGER"),
      node("logger-01", "instance-1", "LOGGER"),
      node("proxy-01", "instance-1", "PROXY", { port: 1234 }),
      node("worker-01", "instance-1", "WORKER", { interface: "eth0" }),
    ],
  );
}

describe("fillObservedHosts", () => {
  it("fills unknown hosts of checked-in agents and nothing else", () => {
    const config = deepFreeze(cfg([inst("a"), inst("b", "10.0.0.5"), inst("c"), inst("d")], []));
    const known = new Map([
      ["a", { host: "192.168.1.2" }],
      ["b", { host: "192.168.1.3" }],
      ["d", { host: "0.0.0.0" }],
    ]);
    const out = fillObservedHosts(config, known);
    expect(out.instances.map((i) => i.host)).toEqual(["192.168.1.2", "10.0.0.5", "0.0.0.0", "0.0.0.0"]);
    expect(config.instances[0]!.host).toBe("0.0.0.0");
  });
});

describe("Broker port assignment", () => {
  it("stage-config-auto-assign: manager 2200, logger-01 2201, proxy-01 keeps 1234, worker none", () => {
    const { config, errors } = assignBrokerPorts(autoAssignConfig());
    expect(errors).toEqual([]);
    expect(field(config, "port")).toEqual({
      manager: 2200,
      "logger-01": 2201,
      "proxy-01": 1234,
      "worker-01": undefined,
    });
  });

  it("stage-config-auto-assign-new-range: start 3000", () => {
    const base = autoAssignConfig();
    delete base.nodes[2]!.port;
    const { config } = assignBrokerPorts(base, { startPort: 3000 });
    expect(field(config, "port")).toEqual({
      manager: 3000,
      "logger-01": 3001,
      "proxy-01": 3002,
      "worker-01": undefined,
    });
  });

  it("stage-config-auto-assign-multi-instance: one global counter, instance then role then name", () => {
    const input = cfg(
      [inst("instance-1"), inst("instance-2")],
      [
        // Deliberately shuffled: the order must come from sorting, not from the input.
        node("worker-01", "instance-2", "WORKER", { interface: "eth0" }),
        node("proxy-04", "instance-2", "PROXY"),
        node("proxy-02", "instance-1", "PROXY"),
        node("logger-02", "instance-2", "LOGGER"),
        node("proxy-01", "instance-1", "PROXY"),
        node("proxy-03", "instance-2", "PROXY"),
        node("logger-01", "instance-1", "LOGGER"),
        node("manager", "instance-1", "MANAGER"),
      ],
    );
    const { config, errors } = assignBrokerPorts(input);
    expect(errors).toEqual([]);
    expect(field(config, "port")).toEqual({
      manager: 2200,
      "logger-01": 2201,
      "proxy-01": 2202,
      "proxy-02": 2203,
      "logger-02": 2204,
      "proxy-03": 2205,
      "proxy-04": 2206,
      "worker-01": undefined,
    });
    // Node order is kept as given.
    expect(config.nodes.map((n) => n.name)).toEqual(input.nodes.map((n) => n.name));
  });

  it("deploy-minimal: manager 2200, logger 2201", () => {
    const { config } = assignBrokerPorts(
      cfg([inst("instance-1")], [node("logger", "instance-1", "LOGGER"), node("manager", "instance-1", "MANAGER")]),
    );
    expect(field(config, "port")).toEqual({ manager: 2200, logger: 2201 });
  });

  it("skips agent ports and explicit ports of any node on any instance, but not the controller port", () => {
    const { config } = assignBrokerPorts(
      cfg(
        [inst("instance-1", "0.0.0.0", 2200), inst("instance-2")],
        [
          node("manager", "instance-1", "MANAGER"),
          node("logger", "instance-1", "LOGGER"),
          node("w", "instance-2", "WORKER", { port: 2201 }),
          node("proxy", "instance-2", "PROXY"),
        ],
      ),
      { startPort: 2149 },
    );
    expect(field(config, "port")).toEqual({ manager: 2149, logger: 2150, w: 2201, proxy: 2151 });
  });

  it("reports running past 65535 instead of wrapping", () => {
    const { config, errors } = assignBrokerPorts(
      cfg(
        [inst("instance-1")],
        [node("manager", "instance-1", "MANAGER"), node("logger", "instance-1", "LOGGER"), node("proxy", "instance-1", "PROXY")],
      ),
      { startPort: 65535 },
    );
    expect(field(config, "port")).toEqual({ manager: 65535, logger: undefined, proxy: undefined });
    expect(errors).toEqual([
      "Broker port auto-assignment starting at 65535 ran past 65535 before reaching nodes logger, " +
        "proxy; lower the start port or give these nodes explicit ports",
    ]);
  });

  it("rejects an invalid start port", () => {
    const { config, errors } = assignBrokerPorts(autoAssignConfig(), { startPort: 0 });
    expect(errors).toEqual(["Broker port auto-assignment start port 0 is not a valid TCP port; configure a start port from 1 to 65535"]);
    expect(config.nodes[0]!.port).toBeUndefined();
  });
});

describe("metrics port assignment", () => {
  function promConfig(): Configuration {
    return cfg(
      [inst("instance-1", "127.0.0.1")],
      [
        node("worker", "instance-1", "WORKER", { interface: "eth0" }),
        node("logger", "instance-1", "LOGGER"),
        node("manager", "instance-1", "MANAGER"),
      ],
    );
  }

  it("prometheus-defaults: manager 9000, logger 9001, worker 9002", () => {
    const { config, errors } = prepareReadyConfig(promConfig());
    expect(errors).toEqual([]);
    expect(field(config, "metricsPort")).toEqual({ manager: 9000, logger: 9001, worker: 9002 });
    expect(field(config, "port")).toEqual({ manager: 2200, logger: 2201, worker: undefined });
  });

  it("prometheus-startport: 3000, 3001, 3002", () => {
    const { config } = prepareReadyConfig(promConfig(), { metricsStartPort: 3000 });
    expect(field(config, "metricsPort")).toEqual({ manager: 3000, logger: 3001, worker: 3002 });
  });

  function twoInstances(): Configuration {
    return cfg(
      [inst("agent-inst1"), inst("agent-inst2")],
      [
        node("manager", "agent-inst1", "MANAGER"),
        node("logger", "agent-inst1", "LOGGER"),
        node("worker", "agent-inst2", "WORKER", { interface: "eth0" }),
      ],
    );
  }

  it("prometheus-multihost: the worker on the second host starts at 9000 again", () => {
    const known = new Map([
      ["agent-inst1", { host: "172.20.0.2" }],
      ["agent-inst2", { host: "172.20.0.3" }],
    ]);
    const { config } = prepareReadyConfig(twoInstances(), { known });
    expect(config.instances.map((i) => i.host)).toEqual(["172.20.0.2", "172.20.0.3"]);
    expect(field(config, "metricsPort")).toEqual({ manager: 9000, logger: 9001, worker: 9000 });
  });

  it("prometheus-singlehost-multi-instance: same address, numbering continues", () => {
    const known = new Map([
      ["agent-inst1", { host: "127.0.0.1" }],
      ["agent-inst2", { host: "127.0.0.1" }],
    ]);
    const { config } = prepareReadyConfig(twoInstances(), { known });
    expect(field(config, "metricsPort")).toEqual({ manager: 9000, logger: 9001, worker: 9002 });
  });

  it("all unknown hosts share one bucket (upstream quirk)", () => {
    const { config } = prepareReadyConfig(twoInstances());
    expect(field(config, "metricsPort")).toEqual({ manager: 9000, logger: 9001, worker: 9002 });
  });

  it("equivalent IPv6 spellings share a bucket", () => {
    const input = twoInstances();
    input.instances[0]!.host = "::1";
    input.instances[1]!.host = "0:0:0:0:0:0:0:1";
    const { config } = assignMetricsPorts(input);
    expect(field(config, "metricsPort")).toEqual({ manager: 9000, logger: 9001, worker: 9002 });
  });

  it("prometheus-custom: explicit ports kept, logger stays unset with auto-assignment off", () => {
    const input = cfg(
      [inst("instance-1")],
      [
        node("manager", "instance-1", "MANAGER", { metricsPort: 3000 }),
        node("logger", "instance-1", "LOGGER"),
        node("worker", "instance-1", "WORKER", { interface: "eth0", metricsPort: 3003 }),
      ],
    );
    const off = prepareReadyConfig(input, { autoAssignMetricsPorts: false });
    expect(field(off.config, "metricsPort")).toEqual({ manager: 3000, logger: undefined, worker: 3003 });
    const on = prepareReadyConfig(input);
    expect(field(on.config, "metricsPort")).toEqual({ manager: 3000, logger: 9000, worker: 3003 });
  });

  it("seeds the used set with every node's explicit metrics port (HEAD, not v8.1.0)", () => {
    const input = cfg(
      [inst("instance-1")],
      [
        node("manager", "instance-1", "MANAGER"),
        node("logger", "instance-1", "LOGGER"),
        node("proxy", "instance-1", "PROXY", { metricsPort: 9001 }),
        node("worker-1", "instance-1", "WORKER", { metricsPort: 9000 }),
        node("worker-2", "instance-1", "WORKER", { metricsPort: 9003 }),
        node("worker-3", "instance-1", "WORKER"),
      ],
    );
    const { config } = assignMetricsPorts(input);
    expect(field(config, "metricsPort")).toEqual({
      manager: 9002,
      logger: 9004,
      proxy: 9001,
      "worker-1": 9000,
      "worker-2": 9003,
      "worker-3": 9005,
    });
  });

  it("avoids Broker and agent ports on the same host only", () => {
    const input = cfg(
      [inst("a", "10.0.0.1", 9000), inst("b", "10.0.0.2")],
      [
        node("manager", "a", "MANAGER", { port: 9001 }),
        node("logger", "a", "LOGGER"),
        node("proxy", "b", "PROXY", { port: 9003 }),
        node("worker", "b", "WORKER"),
      ],
    );
    const { config } = assignMetricsPorts(input);
    expect(field(config, "metricsPort")).toEqual({ manager: 9002, logger: 9003, proxy: 9000, worker: 9001 });
  });

  it("gives NONE nodes nothing", () => {
    const input = cfg([inst("i")], [node("n", "i", "NONE"), node("m", "i", "MANAGER")]);
    const { config } = prepareReadyConfig(input);
    expect(config.nodes[0]!.port).toBeUndefined();
    expect(config.nodes[0]!.metricsPort).toBeUndefined();
  });

  it("reports running past 65535 per bucket", () => {
    const input = cfg(
      [inst("a", "10.0.0.1"), inst("b", "10.0.0.2")],
      [node("m", "a", "MANAGER"), node("l", "a", "LOGGER"), node("w", "b", "WORKER")],
    );
    const { config, errors } = assignMetricsPorts(input, { startPort: 65535 });
    expect(field(config, "metricsPort")).toEqual({ m: 65535, l: undefined, w: 65535 });
    expect(errors).toEqual([
      "Metrics port auto-assignment starting at 65535 ran past 65535 before reaching nodes l; " +
        "lower the start port or give these nodes explicit ports",
    ]);
  });
});

describe("prepareReadyConfig", () => {
  it("never mutates its input and returns an independent copy", () => {
    const staged = autoAssignConfig();
    staged.nodes[0]!.env = { A: "1" };
    staged.nodes[0]!.scripts = ["x.zeek"];
    const snapshot = structuredClone(staged);
    deepFreeze(staged);
    const known = new Map([["instance-1", { host: "127.0.0.1" }]]);
    const { config } = prepareReadyConfig(staged, { known });
    expect(staged).toEqual(snapshot);
    expect(config.instances[0]!.host).toBe("127.0.0.1");
    expect(config.nodes[0]!.env).not.toBe(staged.nodes[0]!.env);
    expect(config.nodes[0]!.scripts).not.toBe(staged.nodes[0]!.scripts);
    expect(config.id).toBe(staged.id);
  });

  it("honours both auto-assignment switches", () => {
    const { config } = prepareReadyConfig(autoAssignConfig(), {
      autoAssignBrokerPorts: false,
      autoAssignMetricsPorts: false,
    });
    expect(field(config, "port")).toEqual({ manager: undefined, "logger-01": undefined, "proxy-01": 1234, "worker-01": undefined });
    expect(Object.values(field(config, "metricsPort")).every((p) => p === undefined)).toBe(true);
  });

  it("uses the configured Broker start port", () => {
    const { config } = prepareReadyConfig(autoAssignConfig(), { brokerStartPort: 4000 });
    expect(field(config, "port")).toMatchObject({ manager: 4000, "logger-01": 4001 });
  });

  it("property: valid configs come out with unique, non-conflicting ports", () => {
    const names = ["n1", "n2", "n3", "n4", "n5", "n6"];
    const configArb = fc
      .tuple(
        fc.array(fc.constantFrom("10.0.0.1", "10.0.0.2", "0.0.0.0"), { minLength: 1, maxLength: 3 }),
        fc.array(
          fc.record({
            role: fc.constantFrom<ClusterRole>("LOGGER", "PROXY", "WORKER"),
            inst: fc.nat(2),
            port: fc.option(fc.integer({ min: 2195, max: 2210 }), { nil: undefined }),
            metricsPort: fc.option(fc.integer({ min: 8998, max: 9006 }), { nil: undefined }),
          }),
          { maxLength: 5 },
        ),
        fc.option(fc.integer({ min: 2195, max: 2210 }), { nil: undefined }),
      )
      .map(([hosts, specs, listenPort]) => {
        const instances = hosts.map((h, i) => inst(`i${i}`, h, i === 0 ? listenPort : undefined));
        const nodes = [node("mgr", "i0", "MANAGER")];
        specs.forEach((s, k) => {
          const extra: Partial<Node> = {};
          if (s.port !== undefined) extra.port = s.port;
          if (s.metricsPort !== undefined) extra.metricsPort = s.metricsPort;
          nodes.push(node(names[k]!, `i${s.inst % hosts.length}`, s.role, extra));
        });
        return cfg(instances, nodes);
      });

    fc.assert(
      fc.property(configArb, (staged) => {
        fc.pre(validateConfiguration(staged).length === 0);
        const { config, errors } = prepareReadyConfig(staged);
        expect(errors).toEqual([]);
        const explicit = new Set(staged.nodes.map((n) => n.port).filter((p) => p !== undefined));
        const agent = new Set(staged.instances.map((i) => i.listenPort).filter((p) => p !== undefined));
        const assigned: number[] = [];
        config.nodes.forEach((n, k) => {
          const before = staged.nodes[k]!;
          if (before.port !== undefined) expect(n.port).toBe(before.port);
          else if (n.role === "WORKER") expect(n.port).toBeUndefined();
          else assigned.push(n.port!);
          if (before.metricsPort !== undefined) expect(n.metricsPort).toBe(before.metricsPort);
          expect(n.metricsPort).toBeDefined();
        });
        for (const p of assigned) {
          expect(explicit.has(p)).toBe(false);
          expect(agent.has(p)).toBe(false);
        }
        expect(new Set(assigned).size).toBe(assigned.length);
        // An assigned metrics port collides with nothing else on its host.
        const hostOf = new Map(config.instances.map((i) => [i.name, i.host]));
        config.nodes.forEach((n, k) => {
          if (staged.nodes[k]!.metricsPort !== undefined) return;
          const h = hostOf.get(n.instance);
          const taken = [
            ...config.nodes.filter((o) => o !== n && hostOf.get(o.instance) === h).map((o) => o.metricsPort),
            ...config.nodes.filter((o) => hostOf.get(o.instance) === h).map((o) => o.port),
            ...config.instances.filter((i) => i.host === h).map((i) => i.listenPort),
          ];
          expect(taken).not.toContain(n.metricsPort);
        });
      }),
      { numRuns: 300 },
    );
  });
});
