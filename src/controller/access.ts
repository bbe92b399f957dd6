// Who may use the controller's dashboard and its zmgmt-only requests. The WebSocket
// endpoint itself keeps its rule (see ../management/security.ts): loopback, TLS client
// certificates, or an operator's explicit choice to expose it. On top of that:
//
// - the dashboard (plain HTTP) and zmgmt's own requests need credentials unless the
//   request arrives over loopback: a verified TLS client certificate or an access token;
// - a read-only token may look but not act (stage, deploy, restart, stop, start);
// - a browser page of another origin may not open a WebSocket to the controller at all,
//   since a browser would otherwise let any web site drive a loopback controller.
//
// The principal decided at the upgrade travels with every message of that connection
// (Origin.principal), so the page's WebSocket requests obey the same rule as its HTTP ones.

import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { isLoopbackRequest } from "../broker/server.js";
import { isLoopbackHost } from "../management/security.js";
import { ControllerApi, ZmgmtControllerApi } from "./api.js";

export type AccessLevel = "read-write" | "read-only";

/** Principal names the controller's hub assigns (see authorizeUpgrade). */
export const Principal = {
  /** The request came over loopback (or the listener is loopback). */
  loopback: "loopback",
  /** A TLS client certificate the listener verified. */
  certificate: "certificate",
  readWriteToken: "token:read-write",
  readOnlyToken: "token:read-only",
  /** A non-loopback peer with no credentials; allowed what upstream allows, nothing more. */
  anonymous: "anonymous",
} as const;

/** The cookie the dashboard's token login sets; the page's WebSocket carries it. */
export const TOKEN_COOKIE = "zmgmt_token";
/** Query parameter of the token login (`/?token=...`). */
export const TOKEN_QUERY = "token";

export class AccessTokensError extends Error {
  readonly code = "invalid_access_tokens";
  constructor(message: string) {
    super(message);
    this.name = "AccessTokensError";
  }
}

/**
 * Reads an access token file: one `read-write TOKEN` or `read-only TOKEN` per line, `#`
 * comments and blank lines ignored. Tokens shorter than 16 characters are refused, since
 * they would be guessable over the network.
 */
export function parseAccessTokens(text: string, source = "access token file"): Map<string, AccessLevel> {
  const tokens = new Map<string, AccessLevel>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [level, token, ...rest] = line.split(/\s+/);
    const where = `${source} line ${i + 1}`;
    if (level !== "read-write" && level !== "read-only") {
      throw new AccessTokensError(`${where}: expected "read-write TOKEN" or "read-only TOKEN"`);
    }
    if (token === undefined || rest.length > 0) throw new AccessTokensError(`${where}: expected one token after ${level}`);
    if (token.length < 16) throw new AccessTokensError(`${where}: a token needs at least 16 characters`);
    if (tokens.has(token)) throw new AccessTokensError(`${where}: duplicate token`);
    tokens.set(token, level);
  });
  return tokens;
}

export function readAccessTokens(file: string): Map<string, AccessLevel> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new AccessTokensError(`cannot read access token file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseAccessTokens(text, file);
}

/** Requests that change the cluster; refused to read-only tokens. */
const ACTIONS = new Set<string>([
  ControllerApi.stage_configuration_request.name,
  ControllerApi.deploy_request.name,
  ControllerApi.restart_request.name,
  ZmgmtControllerApi.stop_nodes_request.name,
  ZmgmtControllerApi.start_nodes_request.name,
]);

/** zmgmt's own client requests; agents' Zmgmt::Agent::API events are not gated here. */
const ZMGMT_CLIENT_PREFIX = "Zmgmt::Controller::API::";

export interface AccessOptions {
  listenHost: string;
  tokens?: Map<string, AccessLevel>;
}

export class ControllerAccess {
  private readonly tokens: Map<string, AccessLevel>;
  private readonly loopbackListener: boolean;

  constructor(options: AccessOptions) {
    this.tokens = options.tokens ?? new Map<string, AccessLevel>();
    this.loopbackListener = isLoopbackHost(options.listenHost);
  }

  /**
   * The principal of a request: a presented token decides (a wrong one is refused, as
   * false), then a verified client certificate, then loopback, else anonymous.
   */
  principalOf(req: IncomingMessage): string | false {
    const presented = presentedToken(req);
    if (presented !== undefined) {
      const level = this.lookup(presented);
      if (level === undefined) return false;
      return level === "read-write" ? Principal.readWriteToken : Principal.readOnlyToken;
    }
    if ((req.socket as Partial<TLSSocket>).authorized === true) return Principal.certificate;
    if (this.loopbackListener || isLoopbackRequest(req)) return Principal.loopback;
    return Principal.anonymous;
  }

  /** For HubServerOptions.authorize. */
  authorizeUpgrade(req: IncomingMessage): string | false {
    if (!sameOrigin(req)) return false;
    return this.principalOf(req);
  }

  /** The token a login URL carries, with its level; undefined when unknown. */
  lookup(token: string): AccessLevel | undefined {
    const wanted = Buffer.from(token);
    for (const [known, level] of this.tokens) {
      const candidate = Buffer.from(known);
      if (candidate.length === wanted.length && timingSafeEqual(candidate, wanted)) return level;
    }
    return undefined;
  }
}

/** What a principal may do; undefined principals are in-process or pre-dashboard peers. */
export function accessLevelOf(principal: string | undefined): AccessLevel | "none" {
  switch (principal) {
    case Principal.readOnlyToken:
      return "read-only";
    case Principal.anonymous:
      return "none";
    default:
      return "read-write";
  }
}

/**
 * Why a request from this principal is refused, or undefined when it may proceed. Anonymous
 * peers keep what they have always had (upstream's requests), but not zmgmt's own.
 */
export function refusalFor(principal: string | undefined, eventName: string): string | undefined {
  const level = accessLevelOf(principal);
  if (level === "none" && eventName.startsWith(ZMGMT_CLIENT_PREFIX)) {
    return "credentials required: a client certificate or an access token (non-loopback listener)";
  }
  if (level === "read-only" && ACTIONS.has(eventName)) return "read-only access: actions need a read-write token";
  return undefined;
}

function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    return m ? m[1] : "";
  }
  const cookie = readCookie(req.headers.cookie, TOKEN_COOKIE);
  if (cookie !== undefined) return cookie;
  return undefined;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return "";
      }
    }
  }
  return undefined;
}

/**
 * Browsers always send Origin on a WebSocket upgrade; non-browser clients send none or
 * (like zeek-client's library) one built from the URL they dial, which matches Host.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    const o = new URL(origin);
    const defaultPort = o.protocol === "https:" ? "443" : "80";
    const h = new URL(`http://${req.headers.host ?? ""}`);
    return o.hostname.toLowerCase() === h.hostname.toLowerCase() && (o.port || defaultPort) === (h.port || defaultPort);
  } catch {
    // "null" (sandboxed pages, file:) and anything unparsable is some other origin.
    return false;
  }
}
