// The page's data: what the controller answered last, merged with what it pushed since.
// Views subscribe and re-render on every change; nothing here touches the DOM.

import { B, BrokerClient } from "./broker.js";
import * as R from "./records.js";

const TOPIC = "zeek/management/controller";
const REFRESH_MS = 5000;
/** Pushes come in bursts (CRASHED, then RUNNING); one refresh after the burst is enough. */
const PUSH_REFRESH_DELAY_MS = 150;
const MAX_EVENTS = 100;

export class Model {
  constructor(location) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/messages/json`;
    this.state = {
      connection: "connecting",
      access: "read-write",
      instances: [],
      nodes: new Map(),
      processes: new Map(),
      statusAvailable: true,
      capture: new Map(),
      captureAvailable: true,
      staged: undefined,
      deployed: undefined,
      history: undefined,
      events: [],
      logs: undefined,
      busy: new Set(),
      notice: undefined,
      updatedAt: undefined,
    };
    this.listeners = new Set();
    this.refreshTimer = undefined;
    this.pushTimer = undefined;
    // Pushes on their own connection: a peer with an open request hears only its answers.
    this.push = new BrokerClient({ url, topic: TOPIC, onEvent: (e) => this.onPush(e), onStatus: (s) => this.set({ connection: s }) });
    this.rpc = new BrokerClient({ url, topic: TOPIC });
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  set(patch) {
    this.state = { ...this.state, ...patch };
    for (const fn of this.listeners) fn(this.state);
  }

  async start() {
    try {
      const r = await fetch("/access.json", { credentials: "same-origin" });
      if (r.ok) this.set({ access: (await r.json()).access });
    } catch {
      // Access stays as assumed; the controller refuses what is not allowed anyway.
    }
    this.push.start();
    this.rpc.start();
    await this.refreshAll();
    this.refreshTimer = setInterval(() => void this.refreshNodes(), REFRESH_MS);
  }

  async refreshAll() {
    await Promise.all([this.refreshNodes(), this.refreshInstances(), this.refreshConfigs(), this.refreshHistory()]);
  }

  async refreshInstances() {
    try {
      const [res] = await this.rpc.request(R.Api.getInstances, []);
      const r = R.result(res);
      if (r.success) this.set({ instances: (r.data ?? []).map(R.instance) });
    } catch (err) {
      this.note(err);
    }
  }

  /** get_nodes, which every controller answers, and zmgmt's process facts where answered. */
  async refreshNodes() {
    await Promise.all([
      this.refreshNodeStates(),
      this.state.statusAvailable ? this.refreshProcesses() : undefined,
      this.state.captureAvailable ? this.refreshCapture() : undefined,
    ]);
  }

  /** Workers' packet counters (zmgmt's netstats request), read from Zeek's own telemetry. */
  async refreshCapture() {
    let answer;
    try {
      [answer] = await this.rpc.request(R.Api.netstats, [], 15000);
    } catch (err) {
      if (err.code === "timeout") this.set({ captureAvailable: false });
      return;
    }
    this.set({ capture: R.captureByNode(answer) });
  }

  async refreshNodeStates() {
    let answer;
    try {
      [answer] = await this.rpc.request(R.Api.getNodes, [], 15000);
    } catch (err) {
      this.note(err);
      return;
    }
    const nodes = new Map();
    for (const raw of answer) {
      const r = R.result(raw);
      if (!r.success || !Array.isArray(r.data)) continue;
      for (const s of r.data.map(R.nodeStatus)) {
        if (s.mgmtRole !== "NONE") continue;
        nodes.set(s.node, { name: s.node, instance: r.instance, role: s.clusterRole, state: s.state, pid: s.pid, port: s.port });
      }
    }
    this.set({ nodes, updatedAt: Date.now() });
  }

  async refreshProcesses() {
    let answer;
    try {
      [answer] = await this.rpc.request(R.Api.nodeStatus, [B.set([])], 15000);
    } catch (err) {
      // A controller without zmgmt's status request never answers it: stop asking.
      if (err.code === "timeout") this.set({ statusAvailable: false });
      return;
    }
    const processes = new Map();
    for (const raw of answer) {
      const r = R.result(raw);
      if (!r.success || !Array.isArray(r.data)) continue;
      for (const p of r.data.map(R.processStatus)) processes.set(p.node, p);
    }
    this.set({ processes });
  }

  async refreshConfigs() {
    const get = async (deployed) => {
      try {
        const [res] = await this.rpc.request(R.Api.getConfiguration, [B.bool(deployed)]);
        const r = R.result(res);
        return r.success ? R.configuration(r.data) : null;
      } catch (err) {
        this.note(err);
        return undefined;
      }
    };
    const [staged, deployed] = await Promise.all([get(false), get(true)]);
    this.set({ staged, deployed });
  }

  async refreshHistory() {
    try {
      const [res] = await this.rpc.request(R.Api.deployHistory, [], 15000);
      const r = R.result(res);
      this.set({ history: r.success ? (r.data ?? []).map(R.deployRecord) : { error: r.error } });
    } catch (err) {
      this.set({ history: { error: err.message } });
    }
  }

  onPush(event) {
    if (event.name === R.Notify.change) {
      const [inst, node, from, to] = event.args;
      const n = R.clusterNode(node);
      const nodes = new Map(this.state.nodes);
      const known = nodes.get(n.name) ?? { name: n.name, instance: inst, role: n.role };
      // The pid shown may be gone; the refresh after the burst brings the current one.
      nodes.set(n.name, { ...known, state: to, pid: undefined });
      this.set({ nodes });
      this.addEvent({ kind: "change", text: `${inst} ${n.name}: ${from} → ${to}` });
      clearTimeout(this.pushTimer);
      this.pushTimer = setTimeout(() => void this.refreshNodes(), PUSH_REFRESH_DELAY_MS);
    } else if (event.name === R.Notify.log || event.name === R.Notify.error) {
      const [inst, msg, node] = event.args;
      this.addEvent({ kind: event.name === R.Notify.error ? "error" : "log", text: `${inst}${node ? ` ${node}` : ""}: ${msg}` });
    }
  }

  addEvent(e) {
    this.set({ events: [{ ...e, at: Date.now() }, ...this.state.events].slice(0, MAX_EVENTS) });
  }

  note(err) {
    this.set({ notice: err instanceof Error ? err.message : String(err) });
  }

  async act(key, fn) {
    const busy = new Set(this.state.busy);
    busy.add(key);
    this.set({ busy, notice: undefined });
    try {
      await fn();
    } catch (err) {
      this.note(err);
    } finally {
      const after = new Set(this.state.busy);
      after.delete(key);
      this.set({ busy: after });
    }
  }

  restart(name) {
    return this.act(`restart:${name}`, async () => {
      const [results] = await this.rpc.request(R.Api.restart, [B.set([B.str(name)])], 60000);
      const failed = results.map(R.result).filter((r) => !r.success);
      if (failed.length > 0) this.note(`restart ${name}: ${failed.map((r) => r.error ?? "failed").join("; ")}`);
      await this.refreshNodes();
    });
  }

  deploy() {
    return this.act("deploy", async () => {
      const [results] = await this.rpc.request(R.Api.deploy, [], 120000);
      const failed = results.map(R.result).filter((r) => !r.success);
      this.note(
        failed.length > 0
          ? `deploy failed: ${failed.map((r) => `${r.node ?? r.instance ?? ""} ${r.error ?? ""}`.trim()).join("; ")}`
          : "deployed the staged configuration",
      );
      await this.refreshAll();
    });
  }

  async showLogs(node, stream = "stdout") {
    this.set({ logs: { node, stream, lines: [], loading: true } });
    try {
      const [res] = await this.rpc.request(R.Api.nodeLogs, [B.vec([B.str(node), B.str(stream), B.count(200), B.none()])], 15000);
      const r = R.result(res);
      this.set({ logs: r.success ? { ...R.nodeLogs(r.data), stream } : { node, stream, lines: [], error: r.error } });
    } catch (err) {
      this.set({ logs: { node, stream, lines: [], error: err.message } });
    }
  }

  closeLogs() {
    this.set({ logs: undefined });
  }
}
