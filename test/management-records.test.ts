import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { B } from "../src/broker/data.js";
import { decodeData, encodeDataText } from "../src/broker/codec.js";
import { ProtocolError } from "../src/broker/errors.js";
import { dataToEvent, decodeDataMessage } from "../src/broker/messages.js";
import { ControllerApi } from "../src/controller/api.js";
import { AgentApi } from "../src/agent/api.js";
import { ConfigurationCodec, NodeCodec, NodeStatusCodec, ResultCodec, makeResult, resultToString } from "../src/management/records.js";
import { CLUSTER_ROLES, STATES, type Configuration, type Node } from "../src/management/types.js";

// The `config` argument zeek-client sent for the example INI (wire-protocol notes §6).
const CAPTURED_CONFIG = `{"@data-type": "vector", "data": [
  {"@data-type": "string", "data": "f3d59a9e-e83a-11f1-992c-02fc00000001"},
  {"@data-type": "set", "data": [
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "agent-b"}, {"@data-type": "address", "data": "0.0.0.0"}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "agent-a"}, {"@data-type": "address", "data": "10.0.0.1"}, {"@data-type": "port", "data": "2151/tcp"}]}]},
  {"@data-type": "set", "data": [
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "worker-01"}, {"@data-type": "string", "data": "agent-b"}, {"@data-type": "enum-value", "data": "Supervisor::WORKER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "string", "data": "eth0"}, {"@data-type": "integer", "data": 2}, {"@data-type": "table", "data": [{"key": {"@data-type": "string", "data": "BAZ"}, "value": {"@data-type": "string", "data": "a b"}}, {"key": {"@data-type": "string", "data": "FOO"}, "value": {"@data-type": "string", "data": "bar"}}]}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "logger-01"}, {"@data-type": "string", "data": "agent-a"}, {"@data-type": "enum-value", "data": "Supervisor::LOGGER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "none", "data": {}}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "dir with space/x.zeek"}, {"@data-type": "string", "data": "site/local.zeek"}]}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "table", "data": []}, {"@data-type": "none", "data": {}}]},
    {"@data-type": "vector", "data": [{"@data-type": "string", "data": "manager"}, {"@data-type": "string", "data": "agent-a"}, {"@data-type": "enum-value", "data": "Supervisor::MANAGER"}, {"@data-type": "enum-value", "data": "Management::RUNNING"}, {"@data-type": "port", "data": "2200/tcp"}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "none", "data": {}}, {"@data-type": "table", "data": []}, {"@data-type": "port", "data": "9000/tcp"}]}]}]}`;

describe("Management records", () => {
  it("decodes the configuration zeek-client sends", () => {
    const cfg = ConfigurationCodec.decode(decodeData(JSON.parse(CAPTURED_CONFIG)), "config");
    expect(cfg.id).toBe("f3d59a9e-e83a-11f1-992c-02fc00000001");
    expect(cfg.instances).toContainEqual({ name: "agent-a", host: "10.0.0.1", listenPort: 2151 });
    expect(cfg.instances).toContainEqual({ name: "agent-b", host: "0.0.0.0" });
    const worker = cfg.nodes.find((n) => n.name === "worker-01")!;
    expect(worker).toEqual({
      name: "worker-01",
      instance: "agent-b",
      role: "WORKER",
      state: "RUNNING",
      interface: "eth0",
      cpuAffinity: 2,
      env: { BAZ: "a b", FOO: "bar" },
    });
    const logger = cfg.nodes.find((n) => n.name === "logger-01")!;
    expect(logger.scripts).toEqual(["dir with space/x.zeek", "site/local.zeek"]);
    const manager = cfg.nodes.find((n) => n.name === "manager")!;
    expect(manager.port).toBe(2200);
    expect(manager.metricsPort).toBe(9000);
  });

  it("encodes the node status of the spec's get_nodes_response byte for byte", () => {
    const status = NodeStatusCodec.encode({
      node: "worker-01",
      state: "RUNNING",
      mgmtRole: "NONE",
      clusterRole: "WORKER",
      pid: 4243,
      metricsPort: 9001,
    });
    expect(encodeDataText(status)).toBe(
      '{"@data-type":"vector","data":[{"@data-type":"string","data":"worker-01"},{"@data-type":"enum-value","data":"Management::RUNNING"},{"@data-type":"enum-value","data":"Management::NONE"},{"@data-type":"enum-value","data":"Supervisor::WORKER"},{"@data-type":"integer","data":4243},{"@data-type":"none","data":{}},{"@data-type":"port","data":"9001/tcp"}]}',
    );
  });

  it("lays a Result out as six fields with none for unset ones", () => {
    const r = ResultCodec.encode(makeResult("r1", { instance: "agent-testbox", data: B.vec([]) }));
    expect(r.type === "vector" && r.value.map((d) => d.type)).toEqual(["string", "boolean", "string", "vector", "none", "none"]);
    expect(resultToString(makeResult("r1", { success: false, error: "boom", node: "w1" }))).toBe("error (boom) (reqid r1, node w1)");
  });

  it("round-trips generated nodes and configurations", () => {
    const nodeArb: fc.Arbitrary<Node> = fc.record(
      {
        name: fc.string(),
        instance: fc.string(),
        role: fc.constantFrom(...CLUSTER_ROLES),
        state: fc.constantFrom(...STATES),
        port: fc.integer({ min: 1, max: 65535 }),
        scripts: fc.array(fc.string()),
        interface: fc.string(),
        cpuAffinity: fc.integer({ min: -5, max: 512 }),
        env: fc.dictionary(fc.string(), fc.string()),
        metricsPort: fc.integer({ min: 1, max: 65535 }),
      },
      { requiredKeys: ["name", "instance", "role", "state", "env"] },
    );
    fc.assert(
      fc.property(nodeArb, (node) => {
        expect(NodeCodec.decode(decodeData(JSON.parse(encodeDataText(NodeCodec.encode(node)))), "n")).toEqual(node);
      }),
    );
    const cfgArb: fc.Arbitrary<Configuration> = fc.record({
      id: fc.uuid(),
      instances: fc.uniqueArray(fc.record({ name: fc.string(), host: fc.ipV4() }), { selector: (i) => i.name, maxLength: 3 }),
      nodes: fc.uniqueArray(nodeArb, { selector: (n) => n.name, maxLength: 4 }),
    });
    fc.assert(
      fc.property(cfgArb, (cfg) => {
        const back = ConfigurationCodec.decode(decodeData(JSON.parse(encodeDataText(ConfigurationCodec.encode(cfg)))), "c");
        const byName = <T extends { name: string }>(a: T[]) => [...a].sort((x, y) => (x.name < y.name ? -1 : 1));
        expect(back.id).toBe(cfg.id);
        expect(byName(back.instances)).toEqual(byName(cfg.instances));
        expect(byName(back.nodes)).toEqual(byName(cfg.nodes));
      }),
      { numRuns: 200 },
    );
  });

  it("rejects records with too few fields or wrong enums", () => {
    expect(() => NodeStatusCodec.decode(B.vec([B.str("x")]), "s")).toThrow(ProtocolError);
    expect(() =>
      NodeStatusCodec.decode(
        B.vec([
          B.str("x"),
          B.enumv("Supervisor::RUNNING"),
          B.enumv("Management::NONE"),
          B.enumv("Supervisor::WORKER"),
          B.none(),
          B.none(),
          B.none(),
        ]),
        "s",
      ),
    ).toThrow(ProtocolError);
  });

  it("parses events against their declared signatures", () => {
    const ev = ControllerApi.get_id_value_request.make("r1", "Cluster::node", ["manager", "nope"]);
    expect(ControllerApi.get_id_value_request.parse(ev)).toEqual(["r1", "Cluster::node", ["manager", "nope"]]);
    expect(() => ControllerApi.deploy_request.parse({ name: ControllerApi.deploy_request.name, args: [B.count(1)] })).toThrow(
      ProtocolError,
    );
    expect(() => ControllerApi.deploy_request.parse({ name: ControllerApi.deploy_request.name, args: [B.str("a"), B.str("b")] })).toThrow(
      "takes 1 arguments",
    );
    // A defaulted trailing argument (force) may be left out.
    const deploy = AgentApi.deploy_request.parse({
      name: AgentApi.deploy_request.name,
      args: [B.str("r"), ConfigurationCodec.encode({ id: "c", instances: [], nodes: [] })],
    });
    expect(deploy[2]).toBeUndefined();
  });

  it("reads the captured request frame through the event spec", () => {
    const msg = decodeDataMessage(
      '{"@data-type": "vector", "data": [{"@data-type": "count", "data": 1}, {"@data-type": "count", "data": 1}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "Management::Controller::API::get_nodes_request"}, {"@data-type": "vector", "data": [{"@data-type": "string", "data": "f38a0ade"}]}]}], "topic": "zeek/management/controller", "type": "data-message"}',
    );
    expect(ControllerApi.get_nodes_request.parse(dataToEvent(msg.data))).toEqual(["f38a0ade"]);
  });
});
