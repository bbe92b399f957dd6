// The client's link to the controller with zeek-client's connection semantics: one socket,
// one budget of `client.peering_attempts` shared by connecting and the handshake, retries
// for connects that time out, a per-message response timeout, and zeek-client's error texts.

import { statSync } from "node:fs";
import { isIPv6 } from "node:net";
import { Connection, isConnectError, type ConnectError, type PeerTlsOptions } from "../broker/connection.js";
import type { BrokerData } from "../broker/data.js";
import { ProtocolError } from "../broker/errors.js";
import { type ZeekEvent, dataToEvent, encodeDataMessage, encodeEventMessage, WEBSOCKET_PATH } from "../broker/messages.js";
import { CONTROLLER_TOPIC, DEFAULT_CONTROLLER_WEBSOCKET_PORT, ZmgmtControllerApi } from "../controller/api.js";
import { AGENT_TOPIC_PREFIX, AgentApi } from "../agent/api.js";
import { ControllerClient } from "./controller-client.js";
import { parsePyInt } from "./ini.js";
import type { Logger } from "./log.js";
import { notificationOf, type Notification } from "./monitor.js";
import { checkEvent, describeEvent } from "./known-events.js";
import { brokerRepr } from "./render.js";
import type { Settings } from "./settings.js";

const ZMGMT_RESPONSES: ReadonlySet<string> = new Set(
  Object.values(ZmgmtControllerApi)
    .map((spec) => spec.name)
    .filter((name) => name.endsWith("_response")),
);

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A failed connect in zeek-client's words, except that a refused connection says so. */
export function connectFailureMessage(err: ConnectError, remote: string): string {
  const stage = err.phase === "connect" ? "connect()" : "handshake";
  switch (err.code) {
    case "connection_refused":
      return `connection refused by controller ${remote}: is the controller running and listening there?`;
    case "timeout":
      return `websocket connection to ${remote} timed out in ${stage}`;
    case "tls_failure":
      return `socket TLS error in ${stage} with controller ${remote}: ${err.detail}`;
    case "not_broker_endpoint":
      return (
        `websocket error in ${stage} with controller ${remote}: ${err.detail} (an HTTP server answered, not a Broker WebSocket ` +
        `endpoint: a web or metrics port? The controller listens on ${DEFAULT_CONTROLLER_WEBSOCKET_PORT} by default)`
      );
    case "handshake_rejected":
      if (err.frame !== undefined)
        return `protocol data error with controller ${remote}: ${ackProblem(err.frame) ?? err.detail}, raw data: ${err.frame}`;
      return `websocket error in ${stage} with controller ${remote}: ${err.detail}`;
    case "closed":
      return `websocket error in ${stage} with controller ${remote}: ${err.detail}`;
    case "dns_failure":
    case "socket_error":
      return `socket error in ${stage} with controller ${remote}: ${err.detail}`;
  }
}

/**
 * Connects and peers over one socket as zeek-client's Controller.connect() does: one budget
 * of attempts shared by connecting and the handshake, retrying only connects that time out.
 * Unlike zeek-client, a refused connection fails at once instead of after the whole budget.
 * Throws ClientFailure.
 */
export async function connectController(target: ControllerTarget, options: ConnectOptions): Promise<ControllerConnection> {
  const { log, retryDelayMs } = options;
  const remote = target.remote;
  // zeek-client's socket timeout is the retry delay; a floor keeps tiny settings usable.
  const stepMs = Math.max(50, retryDelayMs);
  log.info(`connecting to controller ${remote}`);
  let attempts = options.attempts;
  while (attempts > 0) {
    attempts--;
    const connection = new Connection({
      url: target.url,
      topics: [CONTROLLER_TOPIC],
      openTimeoutMs: stepMs,
      // What connecting left of the budget goes to the handshake, each attempt one receive
      // timeout plus one delay; at least one, as the server has proven reachable.
      ackTimeoutMs: Math.max(1, attempts) * (stepMs + retryDelayMs),
      ...(target.tls ? { tls: target.tls } : {}),
    });
    const greeting = watchGreeting(connection);
    try {
      await connection.connect();
    } catch (err) {
      await connection.close();
      if (!isConnectError(err)) throw err;
      if (err.code === "timeout" && err.phase === "connect") {
        await sleep(retryDelayMs);
        continue;
      }
      throw new ClientFailure(connectFailureMessage(err, remote));
    }
    log.info(`peered with controller ${remote}`);
    return new ControllerConnection(connection, target, options, greeting);
  }
  throw new ClientFailure(`websocket connection to ${remote} timed out in connect()`);
}

/**
 * The controller as the CLI talks to it: one connection, the typed ControllerClient with
 * zeek-client's response semantics (the timeout applies to each wait for a message, other
 * events are skipped, a known event with malformed arguments aborts, a lost link fails),
 * and monitoring.
 */
export class ControllerConnection {
  readonly client: ControllerClient;
  private readonly requestTimeoutMs: number;
  private readonly log: Logger;

  constructor(
    private readonly connection: Connection,
    readonly target: ControllerTarget,
    options: ConnectOptions,
    private readonly greeting: Greeting = watchGreeting(connection),
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.log = options.log;
    const log = this.log;
    this.client = new ControllerClient(connection, {
      requestTimeoutMs: this.requestTimeoutMs,
      wait: {
        perMessage: true,
        failOnDown: true,
        inspect: (topic, data) => {
          const seen = this.inspect(topic, data, true);
          if ("error" in seen) throw new ClientFailure(`no response received: ${seen.error}`);
          return "event" in seen ? seen.event : undefined;
        },
      },
      onPublish: (event: ZeekEvent) => {
        // A greeting that came before the request was sent would otherwise go unseen.
        if (this.greeting.agent !== undefined)
          throw new ClientFailure(`no response received: ${notAControllerMessage(this.target.remote, this.greeting.agent)}`);
        if (log.tracing) log.debug(`send: ${encodeEventMessage(CONTROLLER_TOPIC, event)}`);
      },
    });
    connection.on("server-error", (code, context) => log.debug(`skipping non-data message: error ${code}: ${context}`));
  }

  /**
   * A request's failure in zeek-client's words. A request that timed out is worth one more
   * look: an agent accepts a client's WebSocket like a controller but never answers, so the
   * timeout alone would send the operator looking for a hung controller.
   */
  async failure(err: unknown): Promise<unknown> {
    if (!(err instanceof ProtocolError)) return err;
    const remote = this.target.remote;
    if (err.code === "request_timeout") {
      const timedOut = `no response received: websocket connection to ${remote} timed out`;
      const agent = this.greeting.agent ?? (await probeAgent(this.target));
      return new ClientFailure(agent === undefined ? timedOut : `${timedOut}; ${notAControllerMessage(remote, agent)}`);
    }
    return new ClientFailure(`no response received: unexpected error with controller ${remote}: ${err.message}`);
  }

  /** `zmgmtAnswers`: zmgmt's own responses count as known (while awaiting a request's answer). */
  private inspect(topic: string, data: BrokerData, zmgmtAnswers = false): Inspected {
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
    if (event.name === AgentApi.notify_agent_hello.name) {
      const name = event.args[0]?.type === "string" ? event.args[0].value : "?";
      return { error: notAControllerMessage(this.target.remote, name) };
    }
    if (zmgmtAnswers && ZMGMT_RESPONSES.has(event.name)) return { event };
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
   * zeek-client's monitor: prints each known event's signature and, after every request
   * timeout's worth of silence, the timeout. Returns a function that stops it.
   */
  monitor(print: (line: string) => void): () => void {
    const link = this.connection;
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
    link.on("data", onData);
    link.on("server-error", arm);
    link.on("down", onDown);
    arm();
    return () => {
      clearTimeout(timer);
      link.off("data", onData);
      link.off("server-error", arm);
      link.off("down", onDown);
    };
  }

  /**
   * The readable monitor: only the cluster's notifications reach `on`; responses meant for
   * other clients and the silence between events are not reported. Returns a function that
   * stops it.
   */
  watch(on: (notification: Notification) => void, onDown: (message: string) => void): () => void {
    const link = this.connection;
    const onData = (topic: string, data: BrokerData): void => {
      if (this.log.tracing) this.log.debug(`recv: ${encodeDataMessage(topic, data)}`);
      let event: ZeekEvent;
      try {
        event = dataToEvent(data);
      } catch {
        return;
      }
      const notification = notificationOf(event);
      if (notification) on(notification);
      else this.log.debug(`skipping event "${event.name}"`);
    };
    const down = (reason: string): void => onDown(`lost the connection to controller ${this.target.remote}: ${reason}`);
    link.on("data", onData);
    link.on("down", down);
    return () => {
      link.off("data", onData);
      link.off("down", down);
    };
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** The agent that greeted a connection as its controller, if one did: then it is no controller. */
interface Greeting {
  agent?: string;
}

/** Must be attached before connecting: a greeting may travel right behind the handshake ack. */
function watchGreeting(connection: Connection): Greeting {
  const greeting: Greeting = {};
  connection.on("data", (_topic: string, data: BrokerData) => {
    try {
      const event = dataToEvent(data);
      if (event.name === AgentApi.notify_agent_hello.name) greeting.agent = AgentApi.notify_agent_hello.parse(event)[0];
    } catch {
      // Not a greeting; a request's own wait judges everything else.
    }
  });
  return greeting;
}

function notAControllerMessage(remote: string, agent: string): string {
  return (
    `${remote} is agent "${agent}", not a controller (agents take no client requests): ` +
    `point --controller at the controller's address, port ${DEFAULT_CONTROLLER_WEBSOCKET_PORT} by default`
  );
}

/**
 * The name of the agent listening at the target, or undefined when no agent greets us there
 * in time. An agent greets whoever subscribes to its topics with notify_agent_hello, as it
 * would a controller that dialed it; a controller sends nothing of the kind.
 */
export async function probeAgent(target: ControllerTarget, waitMs = 2000): Promise<string | undefined> {
  const probe = new Connection({
    url: target.url,
    topics: [AGENT_TOPIC_PREFIX],
    openTimeoutMs: waitMs,
    ackTimeoutMs: waitMs,
    ...(target.tls ? { tls: target.tls } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  const hello = new Promise<string | undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), waitMs);
    probe.on("data", (_topic: string, data: BrokerData) => {
      try {
        const event = dataToEvent(data);
        if (event.name === AgentApi.notify_agent_hello.name) resolve(AgentApi.notify_agent_hello.parse(event)[0]);
      } catch {
        // Anything else is not a greeting.
      }
    });
  });
  try {
    await probe.connect();
    return await hello;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    await probe.close().catch(() => undefined);
  }
}

type Inspected = { event: ZeekEvent } | { skip: true } | { error: string };

/** Whether a path names an existing regular file (stage-config's precondition). */
export function isRegularFile(path: string): boolean {
  return isFile(path);
}
