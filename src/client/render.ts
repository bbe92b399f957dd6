// Controller responses → the JSON objects zeek-client prints, plus the exit code and log
// lines that go with them. Pure functions: no sockets, no stdout, so every rule can be
// checked against zeek-client's behaviour in isolation.

import type { BrokerData } from "../broker/data.js";
import { formatPort, formatTimespan, formatTimestamp } from "../broker/codec.js";
import { ConfigurationCodec, InstanceVecCodec, NodeOutputsCodec, NodeStatusVecCodec, resultToString } from "../management/records.js";
import type { Configuration, Result } from "../management/types.js";
import { compareCodePoints, renderClusterConfigIni, renderClusterConfigJson } from "./cluster-config.js";
import type { LogRecord } from "./log.js";
import { PyFloat, PyJsonDecodeError, pyDict, pyDumps, pyLoads, type PyDict, type PyJson } from "./pyjson.js";

export interface Rendered {
  /** The object printed on stdout; absent when nothing is printed. */
  json?: PyJson;
  exitCode: number;
  /** What zeek-client logs along the way, in order. */
  logs: LogRecord[];
}

// ---------------------------------------------------------------------------------------------
// Broker values as zeek-client shows them.

/** Broker's wire form of a value as a Python structure (what brokertypes' repr() dumps). */
export function brokerWire(d: BrokerData): PyJson {
  const wrap = (data: PyJson): PyDict =>
    pyDict([
      ["@data-type", d.type],
      ["data", data],
    ]);
  switch (d.type) {
    case "none":
      return wrap(pyDict());
    case "boolean":
    case "count":
    case "integer":
    case "string":
    case "address":
    case "subnet":
    case "enum-value":
      return wrap(d.value);
    case "real":
      return wrap(new PyFloat(d.value));
    case "port":
      return wrap(formatPort(d.value.number, d.value.protocol));
    case "timestamp":
      return wrap(formatTimestamp(d.value));
    case "timespan":
      return wrap(formatTimespan(d.value));
    case "set":
    case "vector":
      return wrap(d.value.map(brokerWire));
    case "table":
      return wrap(
        d.value.map(([k, v]) =>
          pyDict([
            ["key", brokerWire(k)],
            ["value", brokerWire(v)],
          ]),
        ),
      );
  }
}

/** Python's repr() of a brokertypes value (or of None). */
export function brokerRepr(d: BrokerData | undefined): string {
  return d === undefined ? "None" : pyDumps(brokerWire(d), null);
}

/** Python's str() of a brokertypes value (or of None). */
export function brokerStr(d: BrokerData | undefined): string {
  return d === undefined ? "None" : pyDumps(brokerWire(d), 4);
}

/** A Broker value as zeek-client's JSON output renders it (its json_dumps fallbacks). */
export function brokerToPy(d: BrokerData): PyJson {
  switch (d.type) {
    case "none":
      return null;
    case "boolean":
    case "count":
    case "integer":
    case "string":
    case "address":
    case "subnet":
    case "enum-value":
      return d.value;
    case "real":
      return new PyFloat(d.value);
    case "port":
      return String(d.value.number);
    case "timestamp":
      return formatTimestamp(d.value);
    case "timespan":
      return formatTimespan(d.value);
    case "set":
    case "vector":
      return d.value.map(brokerToPy);
    case "table":
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a container key has no better rendering; kept as it was
      return pyDict(d.value.map(([k, v]) => [String(brokerToPy(k)), brokerToPy(v)]));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Result ordering

/**
 * zeek-client's Result ordering: results with an instance first, by instance name, then by
 * node name where both have one; everything else keeps its order (the sort is stable).
 */
export function compareResults(a: Result, b: Result): number {
  const lt = (x: Result, y: Result): boolean => {
    if (x.instance === undefined && y.instance !== undefined) return false;
    if (x.instance !== undefined && y.instance === undefined) return true;
    if (x.instance !== undefined && y.instance !== undefined) {
      const c = compareCodePoints(x.instance, y.instance);
      if (c !== 0) return c < 0;
    }
    if (x.node !== undefined && y.node !== undefined) return compareCodePoints(x.node, y.node) < 0;
    return false;
  };
  return lt(a, b) ? -1 : lt(b, a) ? 1 : 0;
}

export function sortResults(results: readonly Result[]): Result[] {
  return [...results].sort(compareResults);
}

// ---------------------------------------------------------------------------------------------
// Commands

/** get-instances: `{name: {host, port} | {host} | {}}`. */
export function renderGetInstances(result: Result): Rendered {
  if (!result.success) {
    return { exitCode: 1, logs: [{ level: "error", message: result.error || "no reason given" }] };
  }
  if (result.data === undefined) {
    return {
      exitCode: 1,
      logs: [{ level: "error", message: `received result did not contain instance data: ${resultToString(result)}` }],
    };
  }
  const out = pyDict();
  const logs: LogRecord[] = [];
  try {
    const instances = InstanceVecCodec.decode(result.data, "data").sort((a, b) => compareCodePoints(a.name, b.name));
    // zeek-client converts the whole list before printing anything, so one bad entry
    // leaves the output empty; it still counts as success.
    const converted = pyDict();
    for (const inst of instances) {
      if (inst.listenPort !== undefined)
        converted[inst.name] = pyDict([
          ["host", inst.host],
          ["port", inst.listenPort],
        ]);
      else if (inst.host !== "0.0.0.0") converted[inst.name] = pyDict([["host", inst.host]]);
      else converted[inst.name] = pyDict();
    }
    Object.assign(out, converted);
  } catch (err) {
    logs.push({ level: "error", message: `instance data invalid: ${errorText(err)}` });
  }
  return { json: out, exitCode: 0, logs };
}

/** get-nodes: node states per instance, failures as `{source: instance, error}`. */
export function renderGetNodes(results: readonly Result[]): Rendered {
  const errors: PyJson[] = [];
  const byInstance = pyDict();
  const logs: LogRecord[] = [];
  for (const res of sortResults(results)) {
    const source = res.instance ?? null;
    if (!res.success) {
      errors.push(
        pyDict([
          ["source", source],
          ["error", res.error ?? null],
        ]),
      );
      continue;
    }
    if (res.data === undefined) {
      errors.push(
        pyDict([
          ["source", source],
          ["error", "result does not contain node status data"],
        ]),
      );
      continue;
    }
    const nodes = pyDict();
    byInstance[String(res.instance ?? null)] = nodes;
    try {
      const statuses = NodeStatusVecCodec.decode(res.data, "data").sort((a, b) => compareCodePoints(a.node, b.node));
      for (const ns of statuses) {
        const entry = pyDict([
          ["state", ns.state],
          ["mgmt_role", ns.mgmtRole === "NONE" ? null : ns.mgmtRole],
          ["cluster_role", ns.clusterRole === "NONE" ? null : ns.clusterRole],
        ]);
        if (ns.pid !== undefined) entry["pid"] = ns.pid;
        if (ns.port !== undefined) entry["port"] = ns.port;
        if (ns.metricsPort !== undefined) entry["metrics_port"] = ns.metricsPort;
        nodes[ns.node] = entry;
      }
    } catch (err) {
      logs.push({ level: "error", message: `NodeStatus data invalid: ${errorText(err)}` });
    }
  }
  return {
    json: pyDict([
      ["errors", errors],
      ["results", byInstance],
    ]),
    exitCode: errors.length > 0 ? 1 : 0,
    logs,
  };
}

export interface RenderedConfig {
  config?: Configuration;
  exitCode: number;
  logs: LogRecord[];
}

/** get-config: the Configuration in the Result, or the reason there is none. */
export function renderGetConfig(result: Result): RenderedConfig {
  if (!result.success) {
    return { exitCode: 1, logs: [{ level: "error", message: result.error || "no reason given" }] };
  }
  if (result.data === undefined) {
    return {
      exitCode: 1,
      logs: [{ level: "error", message: `received result did not contain configuration data: ${resultToString(result)}` }],
    };
  }
  try {
    return { config: ConfigurationCodec.decode(result.data, "data"), exitCode: 0, logs: [] };
  } catch (err) {
    return { exitCode: 1, logs: [{ level: "error", message: `invalid configuration data: ${errorText(err)}` }] };
  }
}

/** The text get-config writes: the INI, or the JSON form plus a newline. */
export function formatConfig(config: Configuration, asJson: boolean, pretty = true): string {
  if (!asJson) return renderClusterConfigIni(config);
  return pyDumps(renderClusterConfigJson(config) as unknown as PyJson, pretty ? 2 : null) + "\n";
}

/** stage-config: `{errors: [...], results: {id}}`. */
export function renderStage(results: readonly Result[]): Rendered {
  const errors: PyJson[] = [];
  const out = pyDict();
  let exitCode = 0;
  for (const res of results) {
    if (!res.success) {
      exitCode = 1;
      errors.push(res.error || "no reason given");
      continue;
    }
    if (res.data !== undefined) out["id"] = brokerToPy(res.data);
  }
  return {
    json: pyDict([
      ["errors", errors],
      ["results", out],
    ]),
    exitCode,
    logs: [],
  };
}

/** deploy: `{errors: [...], results: {id, nodes: {node: {instance, success[, stdout, stderr]}}}}`. */
export function renderDeploy(results: readonly Result[]): Rendered {
  const errors: PyJson[] = [];
  const out = pyDict();
  const logs: LogRecord[] = [];
  let exitCode = 0;
  for (const res of results) {
    if (!res.success) exitCode = 1;
    if (!res.success && res.node === undefined && res.error) {
      errors.push(res.error);
      continue;
    }
    if (res.success && res.node === undefined && res.instance === undefined && res.data !== undefined) {
      out["id"] = brokerToPy(res.data);
      continue;
    }
    if (res.instance === undefined) {
      logs.push({ level: "warning", message: `skipping unexpected response ${resultToString(res)}` });
      continue;
    }
    if (res.node === undefined) continue;
    let nodes = out["nodes"] as PyDict | undefined;
    if (nodes === undefined) {
      nodes = pyDict();
      out["nodes"] = nodes;
    }
    const entry = pyDict([
      ["success", res.success],
      ["instance", res.instance],
    ]);
    if (res.data !== undefined) {
      try {
        const outputs = NodeOutputsCodec.decode(res.data, "data");
        entry["stdout"] = outputs.stdout;
        entry["stderr"] = outputs.stderr;
      } catch (err) {
        logs.push({ level: "warning", message: `node "${res.node}" result carries no node outputs: ${errorText(err)}` });
      }
    }
    nodes[res.node] = entry;
  }
  return {
    json: pyDict([
      ["errors", errors],
      ["results", out],
    ]),
    exitCode,
    logs,
  };
}

/** get-id-value: each node's value parsed from its JSON text, failures by node. */
export function renderGetIdValue(results: readonly Result[]): Rendered {
  const errors: PyJson[] = [];
  const out = pyDict();
  for (const res of sortResults(results)) {
    if (!res.success) {
      errors.push(
        pyDict([
          ["source", res.node ?? null],
          ["error", res.error ?? null],
        ]),
      );
      continue;
    }
    if (res.node) {
      if (res.data?.type !== "string") {
        errors.push(
          pyDict([
            ["source", res.node],
            ["error", `invalid result data type ${brokerRepr(res.data)}`],
          ]),
        );
        continue;
      }
      try {
        out[res.node] = pyLoads(res.data.value);
      } catch (err) {
        if (!(err instanceof PyJsonDecodeError)) throw err;
        errors.push(
          pyDict([
            ["source", res.node],
            ["error", `JSON decode error: ${err.message}`],
          ]),
        );
      }
      continue;
    }
    errors.push(pyDict([["error", `result lacking node: ${brokerStr(res.data)}`]]));
  }
  return {
    json: pyDict([
      ["errors", errors],
      ["results", out],
    ]),
    exitCode: errors.length > 0 ? 1 : 0,
    logs: [],
  };
}

/** restart: `{errors: [...], results: {node: success}}`; only controller-side failures are errors. */
export function renderRestart(results: readonly Result[]): Rendered {
  const errors: PyJson[] = [];
  const out = pyDict();
  for (const res of sortResults(results)) {
    if (!res.success && res.instance === undefined) {
      errors.push(
        pyDict([
          ["source", res.node ?? null],
          ["error", res.error ?? null],
        ]),
      );
      continue;
    }
    if (res.node) {
      out[res.node] = res.success;
      continue;
    }
    errors.push(pyDict([["error", `result lacking node: ${resultToString(res)}`]]));
  }
  return {
    json: pyDict([
      ["errors", errors],
      ["results", out],
    ]),
    exitCode: errors.length > 0 ? 1 : 0,
    logs: [],
  };
}

/** test-timeout: `{success, error}`; always exit 0 once an answer arrived. */
export function renderTestTimeout(result: Result): Rendered {
  return {
    json: pyDict([
      ["success", result.success],
      ["error", result.error ?? null],
    ]),
    exitCode: 0,
    logs: [],
  };
}
