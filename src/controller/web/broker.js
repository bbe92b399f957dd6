// A browser client of Broker's WebSocket JSON API v1 (the protocol zeek-client speaks):
// Broker data in and out of its JSON form, Zeek events, and request/response matching by
// request id. The page opens two of these: one that only listens (pushes), one that asks,
// because the controller holds back pushes from a peer while one of its requests is open.

/** Broker JSON values from plain ones. */
export const B = {
  none: () => ({ "@data-type": "none", data: {} }),
  str: (v) => ({ "@data-type": "string", data: v }),
  bool: (v) => ({ "@data-type": "boolean", data: v }),
  count: (v) => ({ "@data-type": "count", data: v }),
  set: (items) => ({ "@data-type": "set", data: items }),
  vec: (items) => ({ "@data-type": "vector", data: items }),
};

/** Broker JSON to plain values: records stay arrays (see records.js), none is undefined. */
export function plain(d) {
  if (d === null || typeof d !== "object") return d;
  const t = d["@data-type"];
  const v = d.data;
  switch (t) {
    case "none":
      return undefined;
    case "vector":
    case "set":
      return v.map(plain);
    case "table":
      return v.map((e) => [plain(e.key), plain(e.value)]);
    case "enum-value":
      // Zeek spells enums with their module: Management::RUNNING.
      return String(v).slice(String(v).lastIndexOf(":") + 1);
    case "port":
      return Number.parseInt(String(v), 10);
    default:
      return v;
  }
}

/** A Zeek event as a data message's payload: [1, 1, [name, args]]. */
export function eventData(name, args) {
  return B.vec([B.count(1), B.count(1), B.vec([B.str(name), B.vec(args)])]);
}

/** The event a data message carries, with plain arguments; undefined for anything else. */
export function messageEvent(msg) {
  if (msg.type !== "data-message" || msg["@data-type"] !== "vector") return undefined;
  const outer = msg.data;
  if (!Array.isArray(outer) || outer.length !== 3) return undefined;
  const body = outer[2];
  if (!body || body["@data-type"] !== "vector" || body.data.length < 2) return undefined;
  const [name, args] = body.data;
  if (name["@data-type"] !== "string" || args["@data-type"] !== "vector") return undefined;
  return { name: name.data, args: args.data.map(plain) };
}

function newRequestId() {
  // crypto.randomUUID needs a secure context; a plain-HTTP dashboard on a LAN address is not one.
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `dash-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class RequestError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/**
 * One WebSocket to the controller, reconnecting with backoff. `onEvent(event)` hears every
 * event on the subscribed topic that is not an answer to our own request; `onStatus(text)`
 * hears "connecting", "open" and "closed: reason".
 */
export class BrokerClient {
  constructor({ url, topic, onEvent = () => {}, onStatus = () => {} }) {
    this.url = url;
    this.topic = topic;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.pending = new Map();
    this.ws = undefined;
    this.ready = false;
    this.waiters = [];
    this.delayMs = 250;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    this.ws?.close();
  }

  open() {
    this.onStatus("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify([this.topic]));
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = (e) => {
      this.ready = false;
      for (const [, p] of this.pending) p.reject(new RequestError("disconnected", "connection to the controller lost"));
      this.pending.clear();
      this.onStatus(`closed${e.reason ? `: ${e.reason}` : ""}`);
      if (this.stopped) return;
      setTimeout(() => this.open(), this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, 5000);
    };
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === "ack") {
      this.ready = true;
      this.delayMs = 250;
      this.onStatus("open");
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    if (msg.type === "error") {
      this.onStatus(`error: ${msg.code} ${msg.context}`);
      return;
    }
    const event = messageEvent(msg);
    if (!event) return;
    const reqid = typeof event.args[0] === "string" ? event.args[0] : undefined;
    const waiting = reqid !== undefined ? this.pending.get(reqid) : undefined;
    if (waiting && event.name === waiting.response) {
      this.pending.delete(reqid);
      clearTimeout(waiting.timer);
      waiting.resolve(event.args.slice(1));
      return;
    }
    this.onEvent(event);
  }

  whenReady() {
    return this.ready ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Sends `name` (a `*_request` event) with a fresh request id before `args`, and resolves
   * with the arguments of the matching `*_response` after the id.
   */
  async request(name, args, timeoutMs = 30000) {
    await this.whenReady();
    const reqid = newRequestId();
    const response = name.replace(/_request$/, "_response");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reqid);
        reject(new RequestError("timeout", `no answer to ${name.split("::").pop()} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(reqid, { response, resolve, reject, timer });
      const data = eventData(name, [B.str(reqid), ...args]);
      this.ws.send(JSON.stringify({ type: "data-message", topic: this.topic, ...data }));
    });
  }
}
