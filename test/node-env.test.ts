import { describe, expect, it } from "vitest";
import { clusterLayout } from "../src/agent/agent.js";
import { NodeEnv } from "../src/node/api.js";
import { NodeEnvError, checkClusterLayout, checkNodeConfig, parseJsonEnv } from "../src/node/env-schemas.js";
import type { Configuration, Node } from "../src/management/types.js";

const NODE: Node = {
  name: "worker-01",
  instance: "agent-1",
  role: "WORKER",
  state: "RUNNING",
  port: 2201,
  scripts: ["a.js"],
  options: [{ name: "x", value: "1" }],
  interface: "lo",
  cpuAffinity: 0,
  env: { A: "b" },
  metricsPort: 9001,
};

function failure(run: () => unknown): NodeEnvError {
  try {
    run();
  } catch (err) {
    if (err instanceof NodeEnvError) return err;
    throw err;
  }
  throw new Error("accepted");
}

describe("node environment JSON", () => {
  it("accepts what the agent writes, and falls back when the variable is unset", () => {
    const config: Configuration = { id: "c", instances: [{ name: "agent-1", host: "127.0.0.1" }], nodes: [NODE] };
    const env = { [NodeEnv.config]: JSON.stringify(NODE), [NodeEnv.cluster]: JSON.stringify(clusterLayout(config)) };
    expect(parseJsonEnv(env, NodeEnv.config, checkNodeConfig, {})).toEqual(NODE);
    expect(parseJsonEnv(env, NodeEnv.cluster, checkClusterLayout, {})).toEqual(clusterLayout(config));
    expect(parseJsonEnv({}, NodeEnv.config, checkNodeConfig, {})).toEqual({});
  });

  it("rejects malformed JSON and values of the wrong shape, naming the variable", () => {
    const bad = (value: string) => failure(() => parseJsonEnv({ [NodeEnv.config]: value }, NodeEnv.config, checkNodeConfig, {}));
    expect(bad("{").message).toMatch(new RegExp(`^${NodeEnv.config} holds invalid JSON`));
    expect(bad(JSON.stringify({ ...NODE, port: "2201" })).message).toMatch(/\/port/);
    expect(bad(JSON.stringify({ ...NODE, role: "BOSS" })).message).toMatch(/\/role/);
    expect(bad(JSON.stringify({ ...NODE, env: { A: 1 } })).code).toBe("invalid_node_env");
    const layout = failure(() =>
      parseJsonEnv({ [NodeEnv.cluster]: JSON.stringify({ w: { role: "WORKER" } }) }, NodeEnv.cluster, checkClusterLayout, {}),
    );
    expect(layout.message).toMatch(new RegExp(`^${NodeEnv.cluster} holds an invalid value at /w`));
  });
});
