// zeekctl's node.cfg/networks.cfg turned into a cluster INI: realistic files, broken ones,
// the promise never to throw on any input, and the built CLI as a user runs it.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { parseClusterConfig } from "../src/client/cluster-config.js";
import { importZeekctl, type ZeekctlImportResult } from "../src/client/zeekctl-import.js";
import type { Node } from "../src/management/types.js";
import { CLI } from "./helpers/cluster.js";

/** The INI must be accepted by the same parser stage-config uses, meaning the same nodes. */
function readBack(result: ZeekctlImportResult): Map<string, Node> {
  expect(result.errors).toEqual([]);
  expect(result.ini).toBeDefined();
  const parsed = parseClusterConfig(result.ini!, { hostname: "elsewhere" });
  expect(parsed.errors).toEqual([]);
  expect(parsed.warnings).toEqual([]);
  return new Map(parsed.config!.nodes.map((n) => [n.name, n]));
}

function summary(node: Node | undefined): Record<string, unknown> {
  if (node === undefined) return {};
  return {
    instance: node.instance,
    role: node.role,
    interface: node.interface,
    cpu: node.cpuAffinity,
    env: node.env,
    scripts: node.scripts,
  };
}

// As shipped with zeekctl: one standalone node, the cluster example commented out.
const STANDALONE = `# ZeekControl node configuration.
#
# A standalone Zeek; only the interface usually needs changing.

[zeek]
type=standalone
host=localhost
interface=eth0

## A cluster would look like this (remove [zeek] above first).
#[manager]
#type=manager
#host=localhost
`;

const SINGLE_HOST = `[logger-1]
type=logger
host=localhost

[manager]
type=manager
host=localhost

[proxy-1]
type=proxy
host=localhost

[worker-1]
type=worker
host=localhost
interface=ens5f0
lb_method=af_packet
lb_procs=4
pin_cpus=2,3,4,5
`;

const MULTI_HOST = `[DEFAULT]
env_vars=TZ=UTC

[logger-1]
type=logger
host=10.1.0.10

[manager]
type=manager
host=10.1.0.10
pin_cpus=1

[proxy-1]
type=proxy
host=10.1.0.11

[proxy-2]
type=proxy
host=10.1.0.11

[sensor-a]
type=worker
host=sensor-a.example.net
interface=eth1
lb_method=custom
lb_procs=2
pin_cpus=0,1
env_vars=TZ=UTC, ZEEK_DNS_RESOLVER=10.1.0.53 ,LABEL=sensor a

[sensor-b]
type=worker
host=sensor-b.example.net
lb_method=interfaces
lb_procs=2
lb_interfaces=eth2,eth3
pin_cpus=4,5,6
aux_scripts=site/sensor-b.zeek

[tap-c]
type=worker
host=sensor-c.example.net
interface=zc:eth4
lb_method=pf_ring
lb_procs=3
pin_cpus=8
af_packet_fanout_id=7
color=blue
`;

describe("import-zeekctl: realistic node.cfg files", () => {
  it("turns zeekctl's default standalone node.cfg into a one-manager cluster and says so", () => {
    const result = importZeekctl(STANDALONE, { localInstance: "agent-here" });
    const nodes = readBack(result);
    expect([...nodes.keys()]).toEqual(["zeek"]);
    expect(summary(nodes.get("zeek"))).toMatchObject({ instance: "agent-here", role: "MANAGER", interface: "eth0" });
    expect(result.warnings).toEqual([expect.stringMatching(/^node\.cfg:5: \[zeek\] zmgmt has no standalone mode/)]);
    expect(result.ini).toMatch(/^\[instances\]\nagent-here\n/m);
  });

  it("expands lb_procs into pinned workers on one local instance", () => {
    const result = importZeekctl(SINGLE_HOST, { localInstance: "agent-box" });
    const nodes = readBack(result);
    expect([...nodes.keys()].sort()).toEqual(["logger-1", "manager", "proxy-1", "worker-1-1", "worker-1-2", "worker-1-3", "worker-1-4"]);
    for (const node of nodes.values()) expect(node.instance).toBe("agent-box");
    expect(nodes.get("logger-1")!.role).toBe("LOGGER");
    expect(nodes.get("proxy-1")!.role).toBe("PROXY");
    expect([1, 2, 3, 4].map((i) => nodes.get(`worker-1-${i}`)!.cpuAffinity)).toEqual([2, 3, 4, 5]);
    for (let i = 1; i <= 4; i++) {
      expect(summary(nodes.get(`worker-1-${i}`))).toMatchObject({ role: "WORKER", interface: "af_packet::ens5f0", env: {} });
    }
    // Exactly one CPU per process: nothing to warn about pinning.
    expect(result.warnings.filter((w) => w.includes("pin_cpus"))).toEqual([]);
    expect(result.warnings).toEqual([expect.stringMatching(/^node\.cfg:17: \[worker-1\] lb_method=af_packet:/)]);
  });

  it("maps hosts to instances, env_vars to env, and warns about what zmgmt cannot express", () => {
    const result = importZeekctl(MULTI_HOST);
    const nodes = readBack(result);
    const parsed = parseClusterConfig(result.ini!);
    expect(parsed.config!.instances.map((i) => i.name).sort()).toEqual([
      "agent-10.1.0.10",
      "agent-10.1.0.11",
      "agent-sensor-a.example.net",
      "agent-sensor-b.example.net",
      "agent-sensor-c.example.net",
    ]);
    expect(summary(nodes.get("manager"))).toMatchObject({ instance: "agent-10.1.0.10", role: "MANAGER", cpu: 1, env: { TZ: "UTC" } });
    expect(summary(nodes.get("proxy-2"))).toMatchObject({ instance: "agent-10.1.0.11", role: "PROXY" });
    expect(summary(nodes.get("sensor-a-1"))).toEqual({
      instance: "agent-sensor-a.example.net",
      role: "WORKER",
      interface: "eth1",
      cpu: 0,
      env: { TZ: "UTC", ZEEK_DNS_RESOLVER: "10.1.0.53", LABEL: "sensor a" },
      scripts: undefined,
    });
    expect(nodes.get("sensor-a-2")!.cpuAffinity).toBe(1);
    // lb_method=interfaces: one interface per process, in the listed order.
    expect(summary(nodes.get("sensor-b-1"))).toMatchObject({ interface: "eth2", cpu: 4, scripts: ["local", "site/sensor-b.zeek"] });
    expect(summary(nodes.get("sensor-b-2"))).toMatchObject({ interface: "eth3", cpu: 5 });
    // One CPU for three processes: shared, as zeekctl does.
    expect([1, 2, 3].map((i) => nodes.get(`tap-c-${i}`)!.cpuAffinity)).toEqual([8, 8, 8]);
    expect(nodes.get("tap-c-1")!.interface).toBe("zc:eth4");
    expect(nodes.size).toBe(11);

    const w = result.warnings.join("\n");
    expect(w).toMatch(/node\.cfg:36: \[sensor-b\] only the first 2 of the 3 CPUs in pin_cpus are used/);
    expect(w).toMatch(/node\.cfg:37: \[sensor-b\] aux_scripts become the node's scripts/);
    expect(w).toMatch(/node\.cfg:45: \[tap-c\] 3 processes but 1 CPU in pin_cpus/);
    expect(w).toMatch(/node\.cfg:43: \[tap-c\] lb_method=pf_ring: zmgmt does not set up PF_RING/);
    expect(w).toMatch(/node\.cfg:46: \[tap-c\] ignoring af_packet_fanout_id/);
    expect(w).toMatch(/node\.cfg:47: \[tap-c\] ignoring "color": not a zeekctl node option/);
    expect(w).toMatch(/node\.cfg:25: \[sensor-a\] lb_method=custom/);
  });

  it("gives one host one instance whatever its spelling, and says how an address was renamed", () => {
    const result = importZeekctl(
      "[m]\ntype=manager\nhost=Sensor.Example\n[w]\ntype=worker\nhost=sensor.example\ninterface=eth0\n[p]\ntype=proxy\nhost=2001:db8::7\n",
    );
    const nodes = readBack(result);
    expect(nodes.get("m")!.instance).toBe("agent-sensor.example");
    expect(nodes.get("w")!.instance).toBe("agent-sensor.example");
    expect(nodes.get("p")!.instance).toBe("agent-2001-db8--7");
    expect(result.warnings).toEqual(['node.cfg:10: host "2001:db8::7" becomes instance "agent-2001-db8--7"']);
  });

  it("doubles % so that interpolation on read-back gives zeekctl's value", () => {
    const result = importZeekctl("[m]\ntype=manager\nhost=localhost\nenv_vars=RATE=50%%,X=%%(y)s\n");
    expect(readBack(result).get("m")!.env).toEqual({ RATE: "50%", X: "%(y)s" });
  });

  it("turns networks.cfg into Site::local_nets, as a comment or as a script every node loads", () => {
    const networks = "# local networks\n10.0.0.0/8      Private\n\n192.168.0.0/16\n2001:db8::/32   Documentation\n";
    const commented = importZeekctl(SINGLE_HOST, { networksCfg: networks });
    readBack(commented);
    expect(commented.networksScript).toBe(
      "# Site::local_nets from zeekctl's networks.cfg.\nredef Site::local_nets += {\n\t10.0.0.0/8,\t# Private\n\t192.168.0.0/16,\n\t[2001:db8::]/32,\t# Documentation\n};\n",
    );
    expect(commented.ini).toContain("#   \t[2001:db8::]/32,\t# Documentation\n");
    expect(commented.ini).toContain("zmgmt has no setting for it");

    const loaded = importZeekctl(SINGLE_HOST, { networksCfg: networks, networksScriptPath: "/etc/zeek/local-networks.zeek" });
    for (const node of readBack(loaded).values()) expect(node.scripts).toEqual(["/etc/zeek/local-networks.zeek", "local"]);
  });
});

describe("import-zeekctl: broken input", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["syntax", "[m]\ntype=manager\nhost=localhost\njunk line\n", /^node\.cfg:4: expected a \[section\] header or KEY=VALUE$/],
    ["no header", "type=manager\n", /^node\.cfg:1: KEY=VALUE before the first \[section\] header$/],
    ["duplicate section", "[m]\ntype=manager\nhost=h\n[m]\n", /^node\.cfg:4: section \[m\] is defined twice$/],
    ["duplicate key", "[m]\ntype=manager\ntype=logger\n", /^node\.cfg:3: \[m\] type is given twice$/],
    ["empty", "# nothing\n", /^node\.cfg: no nodes defined$/],
    ["no type", "[m]\nhost=localhost\n", /^node\.cfg:1: \[m\] node has no type/],
    ["unknown type", "[m]\n\ntype=boss\nhost=localhost\n", /^node\.cfg:3: \[m\] unknown node type "boss"/],
    ["no host", "[m]\ntype=manager\n", /^node\.cfg:1: \[m\] node has no host$/],
    ["lb_procs on a manager", "[m]\ntype=manager\nhost=h\nlb_procs=2\n", /^node\.cfg:4: \[m\] lb_procs is only allowed for workers/],
    [
      "lb_procs zero",
      "[m]\ntype=manager\nhost=h\n[w]\ntype=worker\nhost=h\nlb_method=custom\nlb_procs=0\n",
      /^node\.cfg:8: \[w\] lb_procs must be a whole number/,
    ],
    ["lb_method without lb_procs", "[w]\ntype=worker\nhost=h\nlb_method=custom\n", /^node\.cfg:4: \[w\] lb_method needs lb_procs/],
    ["unknown lb_method", "[w]\ntype=worker\nhost=h\nlb_method=magic\nlb_procs=2\n", /^node\.cfg:4: \[w\] unknown lb_method "magic"/],
    ["negative cpu", "[m]\ntype=manager\nhost=h\npin_cpus=1,-2\n", /^node\.cfg:4: \[m\] pin_cpus must list CPU numbers/],
    ["env without =", "[m]\ntype=manager\nhost=h\nenv_vars=A=1,B\n", /^node\.cfg:4: \[m\] env_vars entry "B" has no '='/],
    [
      "lb_interfaces count",
      "[w]\ntype=worker\nhost=h\nlb_method=interfaces\nlb_procs=3\nlb_interfaces=eth1,eth2\n",
      /^node\.cfg:6: \[w\] lb_interfaces lists 2 interfaces but lb_procs is 3/,
    ],
    ["interpolation", "[m]\ntype=manager\nhost=h\ninterface=%(nic)s\n", /^node\.cfg:4: \[m\] Bad value substitution/],
    ["reserved name", "[instances]\ntype=manager\nhost=h\n", /^node\.cfg:1: \[instances\] a node named "instances" cannot be expressed/],
    [
      "standalone with others",
      "[zeek]\ntype=standalone\nhost=localhost\n[w]\ntype=worker\nhost=localhost\ninterface=eth0\n",
      /^node\.cfg:1: \[zeek\] a standalone node cannot be combined/,
    ],
    [
      "name collision",
      "[m]\ntype=manager\nhost=h\n[w]\ntype=worker\nhost=h\ninterface=e\nlb_method=custom\nlb_procs=2\n[w-2]\ntype=worker\nhost=h\ninterface=e\n",
      /^node\.cfg: node name "w-2" would be used twice \(first by \[w\]\)/,
    ],
    ["no manager", "[w]\ntype=worker\nhost=h\ninterface=eth0\n", /^node\.cfg: configuration has nodes but no MANAGER node/],
    ["bad env name", "[m]\ntype=manager\nhost=h\nenv_vars=BAD-NAME=1\n", /^node\.cfg: node 'm' env variable name 'BAD-NAME' is not valid/],
    [
      "value zeek-client cannot read back",
      '[m]\ntype=manager\nhost=h\nenv_vars=GREETING=say "hi" now\n',
      /^node\.cfg:1: node "m": its env cannot be written so that zeek-client reads it back/,
    ],
  ];
  for (const [what, text, expected] of cases) {
    it(`rejects ${what} with a located message and no INI`, () => {
      const result = importZeekctl(text);
      expect(result.ini).toBeUndefined();
      expect(result.errors.length).toBeGreaterThan(0);
      expect(result.errors[0]).toMatch(expected);
    });
  }

  it("rejects a networks.cfg entry that is not a network, naming its line", () => {
    const result = importZeekctl(SINGLE_HOST, {
      networksCfg: "10.0.0.0/8\n\n10.1.2.3  host, not a net\n::/200\n",
      networksCfgName: "nets",
    });
    expect(result.ini).toBeUndefined();
    expect(result.errors).toEqual([
      'nets:3: "10.1.2.3" is not a network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)',
      'nets:4: "::/200" is not a network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)',
    ]);
  });

  it("never throws, and any INI it prints reads back without errors", () => {
    const line = fc.oneof(
      fc.constantFrom(
        "[manager]",
        "[w]",
        "[DEFAULT]",
        "[instances]",
        "",
        "# c",
        "  indented",
        "type=manager",
        "type=worker",
        "type=standalone",
      ),
      fc.constantFrom("host=localhost", "host=10.0.0.1", "host=a b", "interface=eth0", "lb_method=af_packet", "lb_method=interfaces"),
      fc.constantFrom("lb_procs=3", "lb_procs=-1", "pin_cpus=1,2", "pin_cpus=x", "env_vars=A=1,B=2", 'env_vars=""', "lb_interfaces=a,b,c"),
      fc.string().map((s) => `x${s}`),
      fc.tuple(fc.constantFrom("env_vars", "interface", "aux_scripts", "host", "[", "type"), fc.string()).map(([k, v]) => `${k}=${v}`),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(line, { maxLength: 20 }).map((ls) => ls.join("\n")),
        ),
        fc.option(fc.string()),
        (text, nets) => {
          const result = importZeekctl(text, nets === null ? {} : { networksCfg: nets });
          if (result.ini === undefined) {
            expect(result.errors.length).toBeGreaterThan(0);
          } else {
            expect(result.errors).toEqual([]);
            expect(parseClusterConfig(result.ini).errors).toEqual([]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("zmgmt import-zeekctl (built CLI)", () => {
  const dir = mkdtempSync(join(tmpdir(), "zmgmt-zeekctl-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    return new Promise((resolve) => {
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it("prints the INI on stdout and the warnings on stderr", async () => {
    writeFileSync(join(dir, "node.cfg"), MULTI_HOST);
    const r = await run(["import-zeekctl", "node.cfg"]);
    expect(r.code).toBe(0);
    const parsed = parseClusterConfig(r.stdout);
    expect(parsed.errors).toEqual([]);
    expect(parsed.config!.nodes).toHaveLength(11);
    expect(r.stderr).toContain('warning: node.cfg:47: [tap-c] ignoring "color": not a zeekctl node option\n');
    expect(r.stderr).not.toMatch(/^error/m);
  });

  it("writes -o FILE and the networks script, naming the local instance", async () => {
    writeFileSync(join(dir, "single.cfg"), SINGLE_HOST);
    writeFileSync(join(dir, "networks.cfg"), "10.0.0.0/8  Private\n");
    const r = await run([
      "import-zeekctl",
      "single.cfg",
      "--networks",
      "networks.cfg",
      "--networks-script",
      "local-networks.zeek",
      "--local-instance",
      "agent-sensor",
      "-o",
      "cluster.ini",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const parsed = parseClusterConfig(readFileSync(join(dir, "cluster.ini"), "utf8"));
    expect(parsed.errors).toEqual([]);
    expect(parsed.config!.instances.map((i) => i.name)).toEqual(["agent-sensor"]);
    const script = join(dir, "local-networks.zeek");
    for (const node of parsed.config!.nodes) expect(node.scripts).toEqual([script, "local"]);
    expect(readFileSync(script, "utf8")).toContain("\t10.0.0.0/8,\t# Private\n");
  });

  it("exits 1 with a line-numbered error and prints no INI for broken input", async () => {
    writeFileSync(
      join(dir, "broken.cfg"),
      "[manager]\ntype=manager\nhost=localhost\n\n[worker-1]\ntype=worker\nhost=localhost\nlb_procs=many\n",
    );
    const r = await run(["import-zeekctl", "broken.cfg", "-o", "never.ini"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe('error: broken.cfg:8: [worker-1] lb_procs must be a whole number from 1 to 4096, not "many"\n');
    expect(() => readFileSync(join(dir, "never.ini"))).toThrow();

    const missing = await run(["import-zeekctl", "nope.cfg"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("error: cannot read node.cfg nope.cfg (ENOENT)\n");
  });
});
