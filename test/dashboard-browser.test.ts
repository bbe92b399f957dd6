// The web dashboard in a real browser (chromium via playwright-core) against a real
// cluster: controller, agent with its supervisor, and nodes as separate processes. The page
// talks to the controller the way zeek-client does, over its WebSocket.

import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControllerClient, resultNodeStatuses } from "../src/client/controller-client.js";
import type { Configuration, Node } from "../src/management/types.js";
import { browserMissing, launchBrowser } from "./helpers/browser.js";
import { TestEnv } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";

const NODES = ["manager", "proxy-01", "worker-01", "worker-02"];

function node(name: string, role: Node["role"]): Node {
  return { name, instance: "agent-1", role, state: "RUNNING", env: {} };
}

function config(extraWorker = false): Configuration {
  return {
    id: randomUUID(),
    instances: [{ name: "agent-1", host: "0.0.0.0" }],
    nodes: [
      node("manager", "MANAGER"),
      node("proxy-01", "PROXY"),
      node("worker-01", "WORKER"),
      node("worker-02", "WORKER"),
      ...(extraWorker ? [node("worker-03", "WORKER")] : []),
    ],
  };
}

async function pidsFromController(client: ControllerClient): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of await client.getNodes()) {
    for (const s of resultNodeStatuses(r) ?? []) if (s.mgmtRole === "NONE" && s.state === "RUNNING" && s.pid) out.set(s.node, s.pid);
  }
  return out;
}

function cell(page: Page, nodeName: string, field: string) {
  return page.locator(`tr[data-node="${nodeName}"] [data-field="${field}"]`);
}

async function pidOnPage(page: Page, nodeName: string): Promise<number> {
  return Number(await cell(page, nodeName, "pid").textContent());
}

describe.skipIf(browserMissing !== undefined)("dashboard in a browser", () => {
  let env: TestEnv;
  let browser: Browser;
  let client: ControllerClient;
  let url: string;

  beforeAll(async () => {
    env = new TestEnv("zmgmt-dash-");
    browser = await launchBrowser();
    const controller = await env.startController({ requestTimeoutSec: 40 });
    await env.startAgent({
      name: "agent-1",
      controllerPort: controller.port,
      extraArgs: ["--restart-delay", "0.2", "--stop-timeout", "3", "--request-timeout", "30"],
    });
    client = await ControllerClient.connect({ url: `127.0.0.1:${controller.port}`, requestTimeoutMs: 30_000 });
    await eventually(async () => (await client.getInstances()).success, 15_000, "agent-1 to check in");
    expect((await client.stageConfiguration(config()))[0]!.success).toBe(true);
    expect((await client.deploy()).filter((r) => !r.success)).toEqual([]);
    await eventually(async () => (await pidsFromController(client)).size === NODES.length, 15_000, "every node RUNNING");
    url = `http://127.0.0.1:${controller.port}/`;
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await browser?.close();
    await env?.cleanup();
  });

  it("lists every node of the cluster, grouped by instance and role, with the pids the controller reports", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    await expect.poll(() => page.locator('[data-testid="connection"]').textContent(), { timeout: 10_000 }).toBe("live");
    for (const name of NODES) {
      await expect.poll(() => cell(page, name, "state").textContent(), { timeout: 10_000 }).toBe("RUNNING");
    }
    const pids = await pidsFromController(client);
    for (const name of NODES) expect(await pidOnPage(page, name)).toBe(pids.get(name));
    // Grouped: one block for the instance, roles in cluster order.
    const roles = await page.locator('[data-instance="agent-1"] tbody[data-role]').all();
    expect(await Promise.all(roles.map((r) => r.getAttribute("data-role")))).toEqual(["MANAGER", "PROXY", "WORKER"]);
    expect(await page.locator('[data-testid="instances"]').textContent()).toContain("agent-1");
    expect(await page.locator('[data-testid="config-state"]').textContent()).toBe("the staged configuration is deployed");
    expect(await page.locator('[data-testid="history"]').textContent()).toMatch(/succeeded/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows a node killed with kill -9 as CRASHED and revived with a new pid within 2 s, then RUNNING, without a reload", async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => cell(page, "worker-01", "state").textContent(), { timeout: 10_000 }).toBe("RUNNING");
    await expect.poll(() => pidOnPage(page, "worker-01"), { timeout: 10_000 }).toBeGreaterThan(0);
    // Record every state and pid the row shows, with when, so a short-lived CRASHED is not
    // missed between polls and the timing is the page's own.
    // (Page code as text: the test project is type-checked without the DOM library.)
    await page.evaluate(`(() => {
      const seen = [];
      window.seen = seen;
      const observe = () => {
        const row = document.querySelector('tr[data-node="worker-01"]');
        const state = row?.querySelector('[data-field="state"]')?.textContent ?? "";
        const pid = row?.querySelector('[data-field="pid"]')?.textContent ?? "";
        const last = seen[seen.length - 1];
        if (last?.state !== state || last?.pid !== pid) seen.push({ at: Date.now(), state, pid });
      };
      new MutationObserver(observe).observe(document.body, { subtree: true, childList: true, characterData: true });
      observe();
    })()`);
    const before = await pidOnPage(page, "worker-01");
    const started = Date.now();
    process.kill(before, "SIGKILL");
    const seen = (): Promise<Array<{ at: number; state: string; pid: string }>> => page.evaluate("window.seen");
    const newPid = (st: { pid: string }): boolean => st.pid !== "" && Number(st.pid) !== before;
    // The crash and the revival (the supervisor's new process, shown with its pid) must show
    // within 2 s; RUNNING follows once the new process has checked in, which on a loaded
    // machine can take a Node.js start-up of several seconds, so it gets a longer bound.
    await expect
      .poll(async () => (await seen()).some((st) => st.state === "RUNNING" && newPid(st)), { timeout: 15_000, interval: 50 })
      .toBe(true);
    const list = await seen();
    const timeline = list.map((st) => `${st.at - started} ms ${st.state} ${st.pid}`).join(", ");
    const crashed = list.findIndex((st) => st.state === "CRASHED");
    expect(crashed, timeline).toBeGreaterThan(0);
    const revived = list.findIndex((st, i) => i > crashed && newPid(st));
    expect(revived, timeline).toBeGreaterThan(crashed);
    expect(list[crashed]!.at - started, timeline).toBeLessThan(2000);
    expect(list[revived]!.at - started, timeline).toBeLessThan(2000);
    expect(list[list.length - 1]!.state, timeline).toBe("RUNNING");
    await expect.poll(() => cell(page, "worker-01", "last-exit").textContent(), { timeout: 10_000 }).toMatch(/SIGKILL/);
    expect(Number(list[list.length - 1]!.pid)).toBe((await pidsFromController(client)).get("worker-01"));
    await page.close();
  });

  it("restarts a node from its Restart button: the row then shows a new pid", async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => cell(page, "worker-02", "state").textContent(), { timeout: 10_000 }).toBe("RUNNING");
    await expect.poll(() => pidOnPage(page, "worker-02"), { timeout: 10_000 }).toBeGreaterThan(0);
    const before = await pidOnPage(page, "worker-02");
    await page.locator('tr[data-node="worker-02"] button[data-action="restart"]').click();
    await expect
      .poll(
        async () =>
          (await cell(page, "worker-02", "state").textContent()) === "RUNNING" && ![0, before].includes(await pidOnPage(page, "worker-02")),
        {
          timeout: 20_000,
        },
      )
      .toBe(true);
    const after = await pidOnPage(page, "worker-02");
    expect(after).toBe((await pidsFromController(client)).get("worker-02"));
    expect(() => process.kill(before, 0)).toThrow();
    await page.close();
  });

  it("shows each node's process facts (uptime, restarts, CPU, memory) and its output tail", async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => cell(page, "manager", "memory").textContent(), { timeout: 15_000 }).toMatch(/\d+(\.\d)? MiB/);
    expect(await cell(page, "manager", "restarts").textContent()).toMatch(/^\d+$/);
    expect(await cell(page, "manager", "uptime").textContent()).toMatch(/^\d+[smhd]/);
    expect(await cell(page, "manager", "cpu").textContent()).toMatch(/^\d+\.\d %$/);
    const pid = await pidOnPage(page, "manager");
    await page.locator('tr[data-node="manager"] button[data-action="logs"]').click();
    // The built-in node program says who it is on stdout when it starts.
    await expect.poll(() => page.locator('[data-testid="log-lines"]').textContent(), { timeout: 15_000 }).toContain(`pid ${pid}`);
    await page.close();
  });

  it("shows workers' capture health as the built-in node can report it: not available, and why", async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => cell(page, "worker-01", "capture").textContent(), { timeout: 15_000 }).toBe("n/a");
    expect(await cell(page, "worker-01", "capture").getAttribute("title")).toMatch(/not a Zeek node/);
    expect(await cell(page, "worker-01", "capture").getAttribute("class")).not.toMatch(/drops/);
    // Only workers capture.
    expect(await cell(page, "manager", "capture").textContent()).toBe("");
    await page.close();
  });

  it("shows a staged configuration that differs from the deployed one, and deploys it from the page", async () => {
    expect((await client.stageConfiguration(config(true)))[0]!.success).toBe(true);
    const page = await browser.newPage();
    await page.goto(url);
    await expect.poll(() => page.locator('[data-testid="config-state"]').textContent(), { timeout: 10_000 }).toMatch(/differs/);
    expect(await page.locator('[data-testid="config-diff"] .add').allTextContents()).toContain("+ [worker-03]\n");
    await page.locator('[data-testid="deploy"]').click();
    await expect.poll(() => cell(page, "worker-03", "state").textContent(), { timeout: 30_000 }).toBe("RUNNING");
    await expect
      .poll(() => page.locator('[data-testid="config-state"]').textContent(), { timeout: 10_000 })
      .toBe("the staged configuration is deployed");
    // Newest first: the page's deploy, by a client, succeeded.
    const firstRow = page.locator('[data-testid="history"] tbody tr').first();
    const historyText = async (): Promise<string> => (await page.locator('[data-testid="history"]').textContent()) ?? "";
    await expect.poll(() => firstRow.textContent(), { timeout: 10_000, message: await historyText() }).toMatch(/succeeded.*client/);
    // The README's screenshot: set ZMGMT_DASHBOARD_SCREENSHOT=docs/dashboard.png to retake it.
    const screenshot = process.env["ZMGMT_DASHBOARD_SCREENSHOT"];
    if (screenshot) {
      await page.setViewportSize({ width: 1400, height: 1000 });
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    await page.close();
  });
});
