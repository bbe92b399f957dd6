// The shipped systemd units (contrib/systemd): they parse as unit files, carry the keys the
// README's operating notes rely on (the agent's stop semantics, capture capabilities), and
// their ExecStart lines are zmgmt invocations the CLI accepts, flag by flag.

import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Command, CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { registerClientCommands } from "../src/client/commands.js";
import { registerDaemonCommands } from "../src/cli/daemons.js";
import { registerUpCommand } from "../src/cli/up.js";
import { shlexSplit } from "../src/management/shlex.js";
import { CLI } from "./helpers/cluster.js";

const run = promisify(execFile);
const UNIT_DIR = resolve(import.meta.dirname, "../contrib/systemd");
const BIN = resolve(import.meta.dirname, "../bin/zmgmt.js");

type Unit = Map<string, Map<string, string[]>>;

/** systemd's unit syntax: sections, `key=value` (keys may repeat), comments, `\` continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const physical = text.split("\n");
  for (let i = 0; i < physical.length; i++) {
    let line = physical[i]!.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < physical.length) line = `${line.slice(0, -1).trimEnd()} ${physical[++i]!.trim()}`;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      if (unit.has(header[1]!)) throw new Error(`line ${i + 1}: section [${header[1]}] repeated`);
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1}: not a section header or key=value: ${line}`);
    if (!section) throw new Error(`line ${i + 1}: key outside a section`);
    const values = section.get(kv[1]!) ?? [];
    values.push(kv[2]!.trim());
    section.set(kv[1]!, values);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string {
  const values = unit.get(section)?.get(key);
  if (!values) throw new Error(`[${section}] ${key} missing`);
  expect(values, `[${section}] ${key} set once`).toHaveLength(1);
  return values[0]!;
}

/** The argv systemd would run, with the specifiers these units use filled in. */
function execArgv(unit: Unit): string[] {
  const line = value(unit, "Service", "ExecStart").replace(/%H/g, "host-1").replace(/%%/g, "%");
  expect(line).not.toMatch(/%[A-Za-z]/);
  return shlexSplit(line);
}

/**
 * Parses argv with the real command tree, every subcommand's action replaced by one that
 * records its options: unknown flags, bad choices and bad numbers fail as they would at start.
 */
async function parseStrictly(args: string[]): Promise<{ command: string; opts: Record<string, unknown> }> {
  const program = new Command("zmgmt").exitOverride();
  let errors = "";
  program.configureOutput({ writeErr: (s) => (errors += s), writeOut: () => undefined });
  registerClientCommands(program);
  registerDaemonCommands(program);
  registerUpCommand(program);
  let seen: { command: string; opts: Record<string, unknown> } | undefined;
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({ writeErr: (s) => (errors += s), writeOut: () => undefined });
    sub.action(function (this: Command) {
      seen = { command: this.name(), opts: this.opts() };
    });
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) throw new Error(`zmgmt ${args.join(" ")}: ${errors || err.message}`);
    throw err;
  }
  if (!seen) throw new Error(`zmgmt ${args.join(" ")} ran no command`);
  return seen;
}

function seconds(text: string): number {
  const m = /^(\d+)(s|min)?$/.exec(text);
  if (!m) throw new Error(`unsupported time span ${text}`);
  return Number(m[1]) * (m[2] === "min" ? 60 : 1);
}

const units = {
  controller: parseUnit(readFileSync(join(UNIT_DIR, "zmgmt-controller.service"), "utf8")),
  agent: parseUnit(readFileSync(join(UNIT_DIR, "zmgmt-agent.service"), "utf8")),
};

const haveSystemdAnalyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" }).status === 0;
if (!haveSystemdAnalyze) console.warn("skipping systemd-analyze verify of the units: systemd-analyze is not available here");

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("systemd units", () => {
  it("have the sections and keys a service needs, and harden both daemons", () => {
    for (const [name, unit] of Object.entries(units)) {
      expect([...unit.keys()], name).toEqual(["Unit", "Service", "Install"]);
      expect(value(unit, "Unit", "Description")).toMatch(/zmgmt/);
      expect(value(unit, "Unit", "After")).toContain("network-online.target");
      expect(value(unit, "Service", "Type")).toBe("simple");
      expect(value(unit, "Service", "User")).toBe("zmgmt");
      expect(value(unit, "Service", "Restart")).toBe("on-failure");
      expect(value(unit, "Service", "NoNewPrivileges")).toBe("yes");
      expect(value(unit, "Service", "ProtectSystem")).toBe("strict");
      expect(value(unit, "Service", "ProtectHome")).toBe("yes");
      expect(value(unit, "Service", "PrivateTmp")).toBe("yes");
      expect(value(unit, "Install", "WantedBy")).toBe("multi-user.target");
      // The state directory systemd creates is the one the daemon is told to use.
      const argv = execArgv(unit);
      expect(`/var/lib/${value(unit, "Service", "StateDirectory")}`).toBe(argv[argv.indexOf("--state-dir") + 1]);
      expect(value(unit, "Service", "WorkingDirectory")).toBe(argv[argv.indexOf("--state-dir") + 1]);
    }
    // The controller needs no privilege at all.
    expect(value(units.controller, "Service", "CapabilityBoundingSet")).toBe("");
    expect(value(units.controller, "Service", "AmbientCapabilities")).toBe("");
  });

  it("agent: capture capabilities reach the nodes, and stopping the unit stops them", () => {
    const svc = (k: string): string => value(units.agent, "Service", k);
    const caps = (k: string): string[] => svc(k).split(/\s+/).sort();
    expect(caps("AmbientCapabilities")).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    expect(caps("CapabilityBoundingSet")).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    expect(svc("RestrictAddressFamilies").split(/\s+/)).toContain("AF_PACKET");
    // SIGTERM to the supervisor alone, which stops its nodes in order; then a SIGKILL sweep
    // of the control group, only after the supervisor's own escalation had time to finish.
    expect(svc("KillMode")).toBe("mixed");
    const argv = execArgv(units.agent);
    const stopTimeout = Number(argv[argv.indexOf("--stop-timeout") + 1]);
    expect(stopTimeout).toBeGreaterThan(0);
    expect(seconds(svc("TimeoutStopSec"))).toBeGreaterThan(stopTimeout + 5);
  });

  it("ExecStart lines are zmgmt invocations the CLI accepts", { timeout: 60_000 }, async () => {
    const expected = { controller: "controller", agent: "agent" } as const;
    for (const [name, unit] of Object.entries(units) as Array<[keyof typeof expected, Unit]>) {
      const [program, ...args] = execArgv(unit);
      expect(program).toMatch(/^\/.*\/zmgmt$/);
      expect(args[0]).toBe(expected[name]);

      const parsed = await parseStrictly(args);
      expect(parsed.command).toBe(expected[name]);
      expect(parsed.opts["logStderr"]).toBe(true);
      expect(parsed.opts["logFormat"]).toBe("pretty");

      // The built CLI agrees: with --help it exits 0 and describes that command.
      const help = await run(process.execPath, [CLI, ...args, "--help"], { timeout: 30_000 });
      expect(help.stdout).toMatch(new RegExp(`^Usage: zmgmt ${expected[name]} `));
    }
    await expect(parseStrictly(["agent", "--log-format", "xml"])).rejects.toThrow(/Allowed choices are pretty, json/);
    await expect(parseStrictly(["controller", "--no-such-flag"])).rejects.toThrow(/unknown option '--no-such-flag'/);
  });

  it.skipIf(!haveSystemdAnalyze)("systemd itself reads them without complaint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmgmt-units-"));
    dirs.push(dir);
    // verify insists that the program exists; the repository's launcher stands in for it.
    for (const file of ["zmgmt-controller.service", "zmgmt-agent.service"]) {
      const text = readFileSync(join(UNIT_DIR, file), "utf8").replace(/^ExecStart=\S+/m, `ExecStart=${BIN}`);
      writeFileSync(join(dir, file), text);
    }
    const r = await run("systemd-analyze", ["verify", join(dir, "zmgmt-controller.service"), join(dir, "zmgmt-agent.service")], {
      timeout: 30_000,
    }).catch((e: unknown) => {
      // execFile's error carries the output of the failed run.
      const err = e as { stdout?: string; stderr?: string; message: string };
      return { stdout: err.stdout ?? "", stderr: err.stderr ?? err.message };
    });
    // Unknown keys and bad values are reported on stderr (with exit code 0).
    expect(r.stderr).toBe("");
  });
});
