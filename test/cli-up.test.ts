// The README's first command: `zmgmt up` brings a whole local cluster up and Ctrl-C takes
// it all down again.

import { afterEach, describe, expect, it } from "vitest";
import { TestEnv, freePort, freePortRange, pidAlive, processesUnder } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";
import { ControllerClient, resultNodeStatuses } from "../src/client/controller-client.js";

let env: TestEnv;
afterEach(async () => {
  await env?.cleanup();
});

describe("zmgmt up", () => {
  it("deploys the default cluster, shows it coming up, and stops everything on SIGINT", async () => {
    env = new TestEnv();
    const controllerPort = await freePort();
    const up = env.spawnCli([
      "up",
      "--state-dir",
      "state",
      "--controller-listen",
      `127.0.0.1:${controllerPort}`,
      "--agent-listen",
      "127.0.0.1:0",
      "--broker-start-port",
      String(await freePortRange(8)),
      "--metrics-start-port",
      String(await freePortRange(8)),
    ]);
    await eventually(() => up.output().includes("cluster is up"), 30_000, "the cluster to come up").catch((err) => {
      throw new Error(`${(err as Error).message}; output:\n${up.output()}`);
    });
    const out = up.output();
    for (const name of ["manager", "logger-01", "proxy-01", "worker-01", "worker-02"]) expect(out).toMatch(new RegExp(`${name}\\s+\\w+\\s+RUNNING`));

    // It is a real cluster: a client sees it, including the co-located controller.
    const client = await ControllerClient.connect({ url: `127.0.0.1:${controllerPort}` });
    const statuses = (await client.getNodes()).flatMap((r) => resultNodeStatuses(r) ?? []);
    await client.close();
    expect(statuses.filter((s) => s.mgmtRole === "NONE").map((s) => s.state)).toEqual(Array(5).fill("RUNNING"));
    const controller = statuses.find((s) => s.mgmtRole === "CONTROLLER")!;
    expect(controller.port).toBe(controllerPort);
    const pids = statuses.map((s) => s.pid!).filter(Boolean);
    expect(pids.length).toBe(7);

    process.kill(up.pid, "SIGINT");
    await eventually(() => up.child.exitCode !== null, 20_000, "zmgmt up to exit");
    expect(up.child.exitCode).toBe(0);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    expect(processesUnder(env.dir)).toEqual([]);
  });
});
