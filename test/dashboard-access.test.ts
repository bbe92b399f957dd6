// Who may use the dashboard, checked over real HTTP and WebSocket connections to a real
// controller process listening on a non-loopback address of this machine: no credentials
// means no page and none of zmgmt's own requests; a read-only token may look but not act;
// a read-write token may do both; a page of another origin gets no WebSocket at all.

import { randomBytes, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { dataToEvent, decodeServerFrame, encodeEventMessage, type ZeekEvent } from "../src/broker/messages.js";
import type { Codec, EventSpec } from "../src/broker/schema.js";
import { CONTROLLER_TOPIC, ControllerApi, ZmgmtControllerApi } from "../src/controller/api.js";
import type { Result } from "../src/management/types.js";
import { browserMissing, launchBrowser } from "./helpers/browser.js";
import { TestEnv, freePort } from "./helpers/cluster.js";
import { eventually } from "./helpers/ws.js";

/** A local IPv4 address that is not loopback, if this machine has one. */
function nonLoopbackAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal && !a.address.startsWith("127.")) return a.address;
  }
  return undefined;
}

const address = nonLoopbackAddress();
if (address === undefined) console.warn("skipping dashboard access tests: this machine has no non-loopback IPv4 address");

function firstString(event: ZeekEvent): string | undefined {
  const first = event.args[0];
  return first?.type === "string" ? first.value : undefined;
}

type Opened = { ws: WebSocket } | { status: number };

function openWs(url: string, headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => resolve({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once("error", (err) => reject(err));
  });
}

/** Subscribes, sends one request event and returns the decoded answer to it. */
async function ask<A extends readonly Codec<unknown>[]>(
  ws: WebSocket,
  event: ZeekEvent,
  response: EventSpec<A>,
): Promise<ReturnType<EventSpec<A>["parse"]>> {
  const frames: string[] = [];
  ws.on("message", (d) => frames.push((d as Buffer).toString("utf8")));
  ws.send(JSON.stringify([CONTROLLER_TOPIC]));
  await eventually(() => frames.some((f) => decodeServerFrame(f).kind === "ack"), 5000, "the ack");
  ws.send(encodeEventMessage(CONTROLLER_TOPIC, event));
  const reqid = firstString(event);
  return eventually(
    () => {
      for (const f of frames) {
        const frame = decodeServerFrame(f);
        if (frame.kind !== "data") continue;
        const e = dataToEvent(frame.message.data);
        if (e.name === response.name && firstString(e) === reqid) return response.parse(e);
      }
      return undefined;
    },
    10_000,
    `the answer to ${event.name}`,
  );
}

describe.skipIf(address === undefined)("dashboard and zmgmt requests on a non-loopback listener", () => {
  let env: TestEnv;
  let base: string;
  let wsUrl: string;
  const rw = randomBytes(24).toString("hex");
  const ro = randomBytes(24).toString("hex");
  const sockets: WebSocket[] = [];
  const keep = (o: Opened): WebSocket => {
    if (!("ws" in o)) throw new Error(`upgrade refused with HTTP ${o.status}`);
    sockets.push(o.ws);
    return o.ws;
  };

  beforeAll(async () => {
    env = new TestEnv("zmgmt-dash-access-");
    const tokens = join(env.dir, "tokens");
    writeFileSync(tokens, `# operators\nread-write ${rw}\nread-only ${ro}\n`);
    const port = await freePort();
    const host = address!;
    env.spawnCli([
      "controller",
      "--listen",
      `${host}:${port}`,
      "--allow-insecure-listen",
      "--access-tokens",
      tokens,
      "--state-dir",
      join(env.dir, "state"),
      "--name",
      "controller",
    ]);
    base = `http://${host}:${port}`;
    wsUrl = `ws://${host}:${port}/v1/messages/json`;
    await eventually(async () => (await fetch(`${base}/`).catch(() => undefined)) !== undefined, 15_000, "the controller to listen");
  });

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await env?.cleanup();
  });

  it("refuses the page without credentials and with a wrong token, and serves it with a token", async () => {
    const anonymous = await fetch(`${base}/`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).toMatch(/non-loopback address/);
    expect((await fetch(`${base}/app.js`)).status).toBe(401);
    expect((await fetch(`${base}/`, { headers: { authorization: `Bearer ${"x".repeat(48)}` } })).status).toBe(401);
    expect((await fetch(`${base}/?token=${"x".repeat(48)}`, { redirect: "manual" })).status).toBe(401);

    const login = await fetch(`${base}/?token=${ro}`, { redirect: "manual" });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/");
    const cookie = login.headers.get("set-cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await fetch(`${base}/`, { headers: { cookie: cookie.split(";")[0]! } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/app.js">');
    const access = await fetch(`${base}/access.json`, { headers: { authorization: `Bearer ${ro}` } });
    expect(await access.json()).toEqual({ access: "read-only", principal: "token:read-only" });
    // Paths the dashboard does not serve keep the WebSocket endpoint's answer.
    expect((await fetch(`${base}/nothing-here`)).status).toBe(426);
  });

  it("applies the same rule to WebSocket requests: none of zmgmt's own without credentials, no actions with a read-only token", async () => {
    // A wrong token, or a page of another origin, gets no WebSocket at all.
    expect(await openWs(wsUrl, { authorization: `Bearer ${"y".repeat(48)}` })).toEqual({ status: 401 });
    expect(await openWs(wsUrl, { origin: "http://evil.example" })).toEqual({ status: 401 });

    const history = (): ZeekEvent => ZmgmtControllerApi.get_deploy_history_request.make(randomUUID());
    const failure = (r: Result): string | undefined => (r.success ? undefined : r.error);

    // Without credentials: upstream's requests as before (zeek-client keeps working)...
    const anon = keep(await openWs(wsUrl));
    const [, instances] = await ask(anon, ControllerApi.get_instances_request.make(randomUUID()), ControllerApi.get_instances_response);
    expect(instances.success).toBe(true);
    // ...but not zmgmt's own.
    const anon2 = keep(await openWs(wsUrl));
    const [, refused] = await ask(anon2, history(), ZmgmtControllerApi.get_deploy_history_response);
    expect(failure(refused)).toMatch(/credentials required/);

    const readOnly = keep(await openWs(wsUrl, { authorization: `Bearer ${ro}` }));
    const [, roHistory] = await ask(readOnly, history(), ZmgmtControllerApi.get_deploy_history_response);
    expect(roHistory.success).toBe(true);
    const readOnly2 = keep(await openWs(wsUrl, { cookie: `zmgmt_token=${ro}` }));
    const [, roRestart] = await ask(readOnly2, ControllerApi.restart_request.make(randomUUID(), []), ControllerApi.restart_response);
    expect(roRestart.map(failure)).toEqual([expect.stringMatching(/read-only access/)]);
    const readOnly3 = keep(await openWs(wsUrl, { authorization: `Bearer ${ro}` }));
    const [, roDeploy] = await ask(readOnly3, ControllerApi.deploy_request.make(randomUUID()), ControllerApi.deploy_response);
    expect(roDeploy.map(failure)).toEqual([expect.stringMatching(/read-only access/)]);

    // A read-write token may act: the restart reaches the controller's own logic.
    const readWrite = keep(await openWs(wsUrl, { authorization: `Bearer ${rw}` }));
    const [, rwRestart] = await ask(readWrite, ControllerApi.restart_request.make(randomUUID(), []), ControllerApi.restart_response);
    expect(rwRestart.map(failure)).toEqual(["no instances connected"]);
  });

  describe.skipIf(browserMissing !== undefined)("in a browser", () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it("shows 401 without a token; a read-only token gets a live page whose actions are disabled", async () => {
      const page = await browser.newPage();
      const refused = await page.goto(`${base}/`);
      expect(refused?.status()).toBe(401);
      expect(await page.textContent("body")).toMatch(/401 Unauthorized/);

      const signedIn = await page.goto(`${base}/?token=${ro}`);
      expect(signedIn?.status()).toBe(200);
      expect(page.url()).toBe(`${base}/`);
      await expect.poll(() => page.locator('[data-testid="connection"]').textContent(), { timeout: 10_000 }).toBe("live");
      expect(await page.locator('[data-testid="access"]').textContent()).toBe("read-only");
      expect(await page.locator('[data-testid="deploy"]').isDisabled()).toBe(true);
      // zmgmt's own request, made by the page over its WebSocket, is answered.
      await expect.poll(() => page.textContent("main"), { timeout: 10_000 }).toMatch(/No deployment since the controller started/);
      await page.close();
    });

    it("a read-write token gets a page that may act", async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/?token=${rw}`);
      await expect.poll(() => page.locator('[data-testid="access"]').textContent(), { timeout: 10_000 }).toBe("read-write");
      await expect.poll(() => page.locator('[data-testid="connection"]').textContent(), { timeout: 10_000 }).toBe("live");
      await context.close();
    });
  });
});

describe("--no-dashboard", () => {
  let env: TestEnv;
  afterAll(async () => {
    await env?.cleanup();
  });

  it("leaves GET / to the WebSocket endpoint's 426 answer", async () => {
    env = new TestEnv("zmgmt-no-dash-");
    const { port } = await env.startController({ extraArgs: ["--no-dashboard"] });
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(426);
    const withDash = await env.startController({ name: "c2" });
    expect((await fetch(`http://127.0.0.1:${withDash.port}/`)).status).toBe(200);
  });
});
