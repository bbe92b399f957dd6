// The client's link to the controller with zeek-client's connection semantics: one budget of
// `client.peering_attempts` shared by connecting and the handshake, retries only for refused
// connections and timeouts, a per-message response timeout, and zeek-client's error texts.

import { statSync } from "node:fs";
import { isIPv6 } from "node:net";
import WebSocket from "ws";
import type { BrokerData } from "../broker/data.js";
import { type ZeekEvent, dataToEvent, encodeDataMessage, encodeEventMessage, encodeHandshake, WEBSOCKET_PATH } from "../broker/messages.js";
import { clientTlsSocketOptions, type PeerTlsOptions } from "../broker/peer.js";
import type { Codec, EventSpec } from "../broker/schema.js";
import { CONTROLLER_TOPIC } from "../controller/api.js";
import { ControllerClient } from "./controller-client.js";
import { parsePyInt } from "./ini.js";
import type { Logger } from "./log.js";
import { brokerRepr, checkEvent, describeEvent } from "./render.js";
import type { Settings } from "./settings.js";

/** A failure zeek-client reports as one `error:` line before exiting with 1. */
export class ClientFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientFailure";
  }
}

export interface ControllerTarget {
  host: string;
  port: number;
  /** `host:port` as zeek-client writes it in messages. */
  remote: string;
  url: string;
  tls?: PeerTlsOptions;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const ANONYMOUS_CIPHERS = "AECDH-AES256-SHA@SECLEVEL=0";
const AUTHENTICATED_CIPHERS = "HIGH:!aNULL:!MD5";

/**
 * TLS options from the [ssl] section. Without a certificate zeek-client does not verify the
 * server (Broker's default is unauthenticated TLS); with one it verifies against the CA file
 * (or the system's CAs) and presents the certificate.
 *
 * zeek-client's cipher strings are kept. The anonymous one still lets TLS 1.3 negotiate
 * its usual suites, so it reaches servers that present a certificate (ours always does)
 * as well as Zeek 8.0 and older, whose Broker offers only anonymous ECDH by default.
 */
function tlsFromSettings(settings: Settings): PeerTlsOptions {
  const get = (key: string): string => (settings.has("ssl", key) ? settings.get("ssl", key) : "");
  const certificate = get("certificate");
  const keyfile = get("keyfile");
  const cafile = get("cafile");
  const capath = get("capath");
  const passphrase = get("passphrase");
  if (certificate && !isFile(certificate)) throw new Error(`SSL certificate file "${certificate}" not found`);
  if (keyfile && !isFile(keyfile)) throw new Error(`SSL private key file "${keyfile}" not found`);
  if (cafile && !isFile(cafile)) throw new Error(`SSL trusted CAs file "${cafile}" not found`);
  if (capath && !isDir(capath)) throw new Error(`SSL trusted CAs path "${capath}" not found`);
  if (!certificate) return { rejectUnauthorized: false, ciphers: ANONYMOUS_CIPHERS };
  return {
    certFile: certificate,
    ...(keyfile ? { keyFile: keyfile } : {}),
    ...(passphrase ? { passphrase } : {}),
    ...(cafile ? { caFile: cafile } : {}),
    ...(capath ? { caPath: capath } : {}),
    ciphers: AUTHENTICATED_CIPHERS,
    rejectUnauthorized: true,
  };
}

/** Where and how to reach the controller; throws ClientFailure as zeek-client's Controller() does. */
export function resolveTarget(settings: Settings): ControllerTarget {
  const host = settings.get("controller", "host");
  const portText = settings.get("controller", "port");
  const parsed = parsePyInt(portText);
  const fail = (why: string): never => {
    throw new ClientFailure(`cannot configure connection to ${host}:${parsed ?? portText}: ${why}`);
  };
  if (parsed === undefined) return fail(`invalid literal for int() with base 10: '${portText}'`);
  const port = Number(parsed);
  if (parsed < 1n || parsed > 65535n) fail(`controller port number ${parsed} outside valid range`);
  let tls: PeerTlsOptions | undefined;
  try {
    if (settings.getBool("ssl", "enable")) tls = tlsFromSettings(settings);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  // A bare IPv6 address from a settings file would make an invalid URL; zeek-client breaks
  // there, we add the brackets.
  const urlHost = isIPv6(host) ? `[${host}]` : host;
  const url = `${tls ? "wss" : "ws"}://${urlHost}:${port}${WEBSOCKET_PATH}`;
  try {
    new URL(url);
  } catch {
    fail(`invalid controller address "${host}"`);
  }
  return { host, port, remote: `${host}:${port}`, url, ...(tls ? { tls } : {}) };
}

function wsTlsOptions(tls: PeerTlsOptions | undefined): WebSocket.ClientOptions {
  if (!tls) return {};
  return { ...clientTlsSocketOptions(tls), rejectUnauthorized: tls.rejectUnauthorized ?? false };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type ProbeOutcome = { kind: "open" } | { kind: "retry" } | { kind: "fatal"; message: string };

const TLS_CODE = /^(ERR_SSL|ERR_TLS|ERR_OSSL|EPROTO|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH)/;

/**
 * One raw WebSocket used to tell apart what zeek-client tells apart while connecting:
 * refused/timeouts (retry) from other socket, TLS and WebSocket errors (fail at once), and a
 * handshake answered with something that is not an ack.
 */
class Probe {
  private readonly ws: WebSocket;
  private first: string | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private outcome: Promise<ProbeOutcome>;

  constructor(
    private readonly target: ControllerTarget,
    timeoutMs: number,
    private readonly log: Logger,
  ) {
    this.ws = new WebSocket(target.url, { handshakeTimeout: Math.max(1, timeoutMs), ...wsTlsOptions(target.tls) });
    this.outcome = new Promise((resolve) => {
      this.ws.on("open", () => {
        this.ws.send(encodeHandshake([CONTROLLER_TOPIC]));
        resolve({ kind: "open" });
      });
      this.ws.on("error", (err: Error & { code?: string; errors?: Array<{ code?: string }> }) => {
        resolve(this.classify(err));
      });
      this.ws.on("close", () => {
        this.closed = true;
        resolve({ kind: "fatal", message: `websocket error in connect() with controller ${target.remote}: connection closed` });
        this.wake?.();
      });
    });
    this.ws.on("message", (data) => {
      if (this.first === undefined) this.first = data.toString();
      this.wake?.();
    });
  }

  private classify(err: Error & { code?: string; errors?: Array<{ code?: string }> }): ProbeOutcome {
    const remote = this.target.remote;
    const codes = [err.code, ...(err.errors ?? []).map((e) => e.code)].filter((c): c is string => typeof c === "string");
    if (codes.includes("ECONNREFUSED")) {
      this.log.debug(`connection refused for controller ${remote}`);
      return { kind: "retry" };
    }
    if (codes.includes("ETIMEDOUT") || /handshake has timed out/i.test(err.message)) return { kind: "retry" };
    if (codes.some((c) => TLS_CODE.test(c))) {
      return { kind: "fatal", message: `socket TLS error in connect() with controller ${remote}: ${err.message}` };
    }
    if (codes.length === 0 || codes.some((c) => c.startsWith("WS_ERR"))) {
      return { kind: "fatal", message: `websocket error in connect() with controller ${remote}: ${err.message}` };
    }
    return { kind: "fatal", message: `socket error in connect() with controller ${remote}: ${err.message}` };
  }

  connected(): Promise<ProbeOutcome> {
    return this.outcome;
  }

  /** The first frame after the handshake, "closed", or undefined when none came in time. */
  async firstFrame(timeoutMs: number): Promise<string | "closed" | undefined> {
    if (this.first === undefined && !this.closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    if (this.first !== undefined) return this.first;
    return this.closed ? "closed" : undefined;
  }

  close(): void {
    this.ws.on("error", () => undefined);
    this.ws.terminate();
  }
}

/** Why a first frame is not a handshake ack, in zeek-client's words; undefined if it is one. */
export function ackProblem(raw: string): string | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch (err) {
    return `cannot parse JSON data for HandshakeAckMessage: ${err instanceof Error ? err.message : String(err)} -- ${raw}`;
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return "invalid data layout for HandshakeAckMessage: not an object";
  for (const key of ["type", "endpoint", "version"]) {
    if (!(key in obj)) return `invalid data layout for HandshakeAckMessage: required key "${key}" missing`;
  }
  return undefined;
}

export interface ConnectOptions {
  attempts: number;
  retryDelayMs: number;
  requestTimeoutMs: number;
  log: Logger;
}

/** Connects and peers as zeek-client's Controller.connect() does; throws ClientFailure. */
export async function connectController(target: ControllerTarget, options: ConnectOptions): Promise<ControllerConnection> {
  const { log, retryDelayMs, requestTimeoutMs } = options;
  const remote = target.remote;
  const stepMs = Math.max(50, retryDelayMs);
  log.info(`connecting to controller ${remote}`);
  let attempts = options.attempts;
  const connect = (connectTimeoutMs: number): Promise<ControllerClient> =>
    ControllerClient.connect({ url: target.url, requestTimeoutMs, connectTimeoutMs, ...(target.tls ? { tls: target.tls } : {}) });
  const peered = (client: ControllerClient): ControllerConnection => {
    log.info(`peered with controller ${remote}`);
    return new ControllerConnection(client, target, requestTimeoutMs, log);
  };

  // Usually the controller is up: one attempt through the real client, one connection.
  const tookFastPath = attempts > 0;
  if (tookFastPath) {
    attempts--;
    try {
      return peered(await connect(stepMs));
    } catch {
      // Find out why below.
    }
  }

  // Otherwise retry and classify failures with a bare socket, then peer for real.
  let probe: Probe | undefined;
  while (attempts > 0 && probe === undefined) {
    attempts--;
    const p = new Probe(target, stepMs, log);
    const outcome = await p.connected();
    if (outcome.kind === "open") {
      probe = p;
      break;
    }
    p.close();
    if (outcome.kind === "fatal") throw new ClientFailure(outcome.message);
    await sleep(retryDelayMs);
  }
  if (probe === undefined) throw new ClientFailure(`websocket connection to ${remote} timed out in connect()`);
  // The server is reachable, so the first attempt may have failed only because the ack was
  // slow; zeek-client would still have had that attempt for the handshake.
  if (tookFastPath && attempts === 0) attempts = 1;

  try {
    let acked = false;
    while (attempts > 0) {
      attempts--;
      const frame = await probe.firstFrame(stepMs);
      if (frame === "closed") {
        throw new ClientFailure(`websocket error in handshake with controller ${remote}: Connection to remote host was lost.`);
      }
      if (frame !== undefined) {
        const problem = ackProblem(frame);
        if (problem !== undefined) throw new ClientFailure(`protocol data error with controller ${remote}: ${problem}, raw data: ${frame}`);
        acked = true;
        break;
      }
      await sleep(retryDelayMs);
    }
    if (!acked) throw new ClientFailure(`websocket connection to ${remote} timed out in handshake`);
  } finally {
    probe.close();
  }

  try {
    return peered(await connect(Math.max(5000, stepMs * 2)));
  } catch {
    throw new ClientFailure(`websocket connection to ${remote} timed out in handshake`);
  }
}

type Inspected = { event: ZeekEvent } | { skip: true } | { error: string };

/** A peered connection: requests with zeek-client's response matching, and monitoring. */
export class ControllerConnection {
  constructor(
    readonly client: ControllerClient,
    readonly target: ControllerTarget,
    private readonly requestTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  private inspect(topic: string, data: BrokerData): Inspected {
    if (this.log.tracing) this.log.debug(`recv: ${encodeDataMessage(topic, data)}`);
    const invalid = (): Inspected => ({
      error: `protocol data error with controller ${this.target.remote}: invalid event data, ${brokerRepr(data)}`,
    });
    let event: ZeekEvent;
    try {
      event = dataToEvent(data);
    } catch {
      return invalid();
    }
    const check = checkEvent(event);
    if (check === "unknown") {
      this.log.warning(`received unexpected event "${event.name}", skipping`);
      return { skip: true };
    }
    if (check === "invalid") return invalid();
    this.log.debug(`received event "${event.name}"`);
    return { event };
  }

  /**
   * Publishes `event` and waits for `response` with the same reqid. Like zeek-client, the
   * timeout applies to each wait for a message, other events are skipped, and a known event
   * with malformed arguments aborts. Failures throw ClientFailure("no response received: …").
   */
  request<A extends readonly Codec<unknown>[]>(event: ZeekEvent, response: EventSpec<A>): Promise<ReturnType<EventSpec<A>["parse"]>> {
    const peer = this.client.events;
    const remote = this.target.remote;
    const first = event.args[0];
    const reqid = first?.type === "string" ? first.value : "";
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        clearTimeout(timer);
        peer.off("data", onData);
        peer.off("server-error", onServerError);
        peer.off("down", onDown);
      };
      const fail = (message: string): void => {
        cleanup();
        reject(new ClientFailure(`no response received: ${message}`));
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => fail(`websocket connection to ${remote} timed out`), this.requestTimeoutMs);
      };
      const onData = (topic: string, data: BrokerData): void => {
        arm();
        const seen = this.inspect(topic, data);
        if ("error" in seen) return fail(seen.error);
        if ("skip" in seen) return;
        const ev = seen.event;
        const id = ev.args[0];
        if (ev.name !== response.name || id?.type !== "string" || id.value !== reqid) return;
        cleanup();
        try {
          resolve(response.parse(ev));
        } catch (err) {
          reject(new ClientFailure(`no response received: unexpected error with controller ${remote}: ${err instanceof Error ? err.message : String(err)}`));
        }
      };
      const onServerError = (code: string, context: string): void => {
        arm();
        this.log.debug(`skipping non-data message: error ${code}: ${context}`);
      };
      const onDown = (reason: string): void => fail(`unexpected error with controller ${remote}: ${reason}`);
      peer.on("data", onData);
      peer.on("server-error", onServerError);
      peer.on("down", onDown);
      arm();
      if (this.log.tracing) this.log.debug(`send: ${encodeEventMessage(CONTROLLER_TOPIC, event)}`);
      if (!peer.publishEvent(CONTROLLER_TOPIC, event)) fail(`unexpected error with controller ${remote}: not connected`);
    });
  }

  /**
   * zeek-client's monitor: prints each known event's signature and, after every request
   * timeout's worth of silence, the timeout. Returns a function that stops it.
   */
  monitor(print: (line: string) => void): () => void {
    const peer = this.client.events;
    const remote = this.target.remote;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        print(`no response received: websocket connection to ${remote} timed out`);
        arm();
      }, this.requestTimeoutMs);
    };
    const onData = (topic: string, data: BrokerData): void => {
      arm();
      const seen = this.inspect(topic, data);
      if ("error" in seen) print(`no response received: ${seen.error}`);
      else if ("event" in seen) print(`received "${describeEvent(seen.event)}"`);
    };
    const onDown = (reason: string): void => print(`no response received: unexpected error with controller ${remote}: ${reason}`);
    peer.on("data", onData);
    peer.on("server-error", arm);
    peer.on("down", onDown);
    arm();
    return () => {
      clearTimeout(timer);
      peer.off("data", onData);
      peer.off("server-error", arm);
      peer.off("down", onDown);
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Whether a path names an existing regular file (stage-config's precondition). */
export function isRegularFile(path: string): boolean {
  return isFile(path);
}
