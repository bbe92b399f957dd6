// How an agent proves its instance name to the controller. Without mutual TLS it presents a
// per-instance secret, derived from the controller's agent master secret, so the controller
// keeps one file and an operator hands each host only the secret of its own instance; with
// mutual TLS, a client certificate whose CN or DNS SAN is the instance name works too.
// The claim travels in headers of the WebSocket upgrade, so it is settled before the peer
// can publish anything, and stock zeek-client (which sends neither header) stays a client.
//
// The other direction, the controller dialing an agent that waits for it (c2a), is proved
// the same way: the controller derives the instance's secret from its master secret and
// presents a proof made from it, which the agent checks against its own copy of that secret.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { dirname, join } from "node:path";
import type { TLSSocket } from "node:tls";

/** The instance name an agent claims (URI-encoded, as header values are ASCII). */
export const AGENT_NAME_HEADER = "x-zmgmt-agent";
/** The instance's secret (hex), see {@link instanceSecret}. */
export const AGENT_SECRET_HEADER = "x-zmgmt-agent-secret";
/** The controller's proof when it dials an agent, see {@link controllerProof}. */
export const CONTROLLER_PROOF_HEADER = "x-zmgmt-controller-proof";
/** The controller's master secret, below its own directory. */
export const AGENT_MASTER_SECRET_FILE = "agent-master-secret";

/** Broker error codes the controller sends an agent it will not take; the agent gives up on them. */
export const AGENT_UNAUTHORIZED = "agent_unauthorized";
export const AGENT_REFUSED = "agent_refused";
/** Broker error code of an agent that will not take a connection's requests (or its proof). */
export const CONTROLLER_UNAUTHORIZED = "controller_unauthorized";
/** Hub principal an agent gives a connection that proved it is the controller. */
export const CONTROLLER_PRINCIPAL = "controller";
/** Exit code of an agent process the controller refused; its supervisor stops instead of reviving it. */
export const AGENT_REFUSED_EXIT_CODE = 78;

export class AgentSecretError extends Error {
  readonly code = "agent_secret_unusable";
  constructor(message: string) {
    super(message);
    this.name = "AgentSecretError";
  }
}

const PRINCIPAL_PREFIX = "agent:";

/** The hub principal of a connection that proved it is the agent of `instance`. */
export function agentPrincipal(instance: string): string {
  return PRINCIPAL_PREFIX + instance;
}

/** The instance a principal proves, or undefined for anything but an agent. */
export function principalInstance(principal: string | undefined): string | undefined {
  return principal?.startsWith(PRINCIPAL_PREFIX) ? principal.slice(PRINCIPAL_PREFIX.length) : undefined;
}

/** The secret of one instance: only the controller's master secret can produce it. */
export function instanceSecret(master: string, instance: string): string {
  return createHmac("sha256", master).update(`zmgmt agent ${instance}`).digest("hex");
}

/** Constant-time, also in the length of what the peer sent (both sides are hashed first). */
function sameSecret(expected: string, presented: string): boolean {
  return timingSafeEqual(createHash("sha256").update(expected).digest(), createHash("sha256").update(presented).digest());
}

export function secretMatches(master: string, instance: string, presented: string): boolean {
  return sameSecret(instanceSecret(master, instance), presented);
}

/**
 * What the controller presents to the agent of an instance with that instance's secret.
 * A value derived from the secret rather than the secret itself: whatever answers at an
 * agent's configured address learns nothing that would let it pose as that agent to the
 * controller.
 */
export function controllerProof(secret: string): string {
  return createHmac("sha256", secret).update("zmgmt controller").digest("hex");
}

/** Headers the controller sends when it dials the agent of `instance`. */
export function controllerHeaders(master: string, instance: string): Record<string, string> {
  return { [CONTROLLER_PROOF_HEADER]: controllerProof(instanceSecret(master, instance)) };
}

export function controllerProofMatches(secret: string, presented: string): boolean {
  return sameSecret(controllerProof(secret), presented);
}

/** First line of a secret file; refuses empty files, since an empty secret proves nothing. */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new AgentSecretError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  const secret = text.split(/\r?\n/)[0]!.trim();
  if (secret.length < 16) throw new AgentSecretError(`${what} ${file} holds no secret (16 characters at least)`);
  return secret;
}

/** Writes a secret readable by its owner only. */
export function writeSecretFile(file: string, secret: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The master secret in the controller's directory, created on first use. */
export function loadOrCreateMasterSecret(controllerDir: string): { file: string; secret: string } {
  const file = join(controllerDir, AGENT_MASTER_SECRET_FILE);
  if (existsSync(file)) return { file, secret: readSecretFile(file, "agent master secret") };
  const secret = randomBytes(32).toString("hex");
  writeSecretFile(file, secret);
  return { file, secret };
}

/**
 * For an agent on the controller's own host (`zmgmt up`, `agent --with-controller`): writes
 * its instance secret, derived from that controller's master secret, to
 * `<stateDir>/nodes/<instance>/agent-secret` and returns the file, so no set-up step is needed.
 */
export function writeLocalAgentSecret(controllerDir: string, stateDir: string, instance: string): string {
  const file = join(stateDir, "nodes", instance, "agent-secret");
  writeSecretFile(file, instanceSecret(loadOrCreateMasterSecret(controllerDir).secret, instance));
  return file;
}

/** Headers an agent sends when it dials its controller. */
export function agentHeaders(instance: string, secret: string | undefined): Record<string, string> {
  return {
    [AGENT_NAME_HEADER]: encodeURIComponent(instance),
    ...(secret !== undefined ? { [AGENT_SECRET_HEADER]: secret } : {}),
  };
}

/** CN and DNS subject alternative names of a verified client certificate. */
export function certificateNames(req: IncomingMessage): string[] {
  const socket = req.socket as Partial<TLSSocket>;
  if (!clientCertificateVerified(req) || typeof socket.getPeerCertificate !== "function") return [];
  const cert = socket.getPeerCertificate();
  const names: string[] = [];
  const cn = (cert.subject as { CN?: unknown } | undefined)?.CN as string | string[] | undefined;
  if (typeof cn === "string") names.push(cn);
  else if (Array.isArray(cn)) names.push(...cn);
  for (const part of (cert.subjectaltname ?? "").split(",")) {
    const m = /^\s*DNS:(.*)$/.exec(part);
    if (m) names.push(m[1]!.trim());
  }
  return names;
}

/** Whether the peer presented a client certificate the listener's CA verified. */
export function clientCertificateVerified(req: IncomingMessage): boolean {
  return (req.socket as Partial<TLSSocket>).authorized === true;
}

export type AgentVerdict = { kind: "client" } | { kind: "agent"; instance: string } | { kind: "refused"; message: string };

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * What a connection is: a client (it claims no instance), the agent of the instance it
 * claims (secret or certificate proves it), or refused. Messages never include secrets.
 */
export function verifyAgent(req: IncomingMessage, master: string | undefined): AgentVerdict {
  const claimed = header(req, AGENT_NAME_HEADER);
  if (claimed === undefined) return { kind: "client" };
  let instance: string;
  try {
    instance = decodeURIComponent(claimed);
  } catch {
    return { kind: "refused", message: "malformed agent name header" };
  }
  if (instance.length === 0) return { kind: "refused", message: "empty agent name" };
  const presented = header(req, AGENT_SECRET_HEADER);
  if (presented !== undefined && master !== undefined && secretMatches(master, instance, presented)) return { kind: "agent", instance };
  const names = certificateNames(req);
  if (names.includes(instance)) return { kind: "agent", instance };
  const secretWhy =
    presented === undefined ? "it presented no agent secret (--agent-secret-file)" : "its agent secret is not the one for that name";
  // A certificate for another name is an operator's mix-up far more often than an attack;
  // naming what it carries points at the wrong file (certificate names are not secret).
  const certWhy =
    names.length > 0
      ? `, and its client certificate names ${names.map((n) => JSON.stringify(n)).join(", ")}, not that instance`
      : presented === undefined
        ? " and no client certificate for that name"
        : "";
  const why = secretWhy + certWhy;
  return {
    kind: "refused",
    message:
      `the controller does not accept agent ${JSON.stringify(instance)}: ${why}. ` +
      "Get the secret with `zmgmt agent-secret NAME` on the controller's host, or use a client certificate whose CN or DNS SAN is the instance name",
  };
}

/**
 * How an agent that waits for its controller (c2a) protects itself: with its instance
 * secret, only a connection presenting the controller's proof is the controller (a client
 * certificate alone does not do, since agents' certificates often come from the same CA);
 * without one, under mutual TLS, any certificate the listener's CA verified; otherwise
 * nothing, and anyone reaching the port is taken for the controller.
 */
export type ControllerGuard = { kind: "secret"; secret: string } | { kind: "certificate" } | { kind: "none" };

export type ControllerVerdict = { kind: "controller" } | { kind: "other" } | { kind: "refused"; message: string };

/**
 * What a connection to an agent is: its controller (proved as the guard asks), another peer
 * (one claiming nothing: its requests are refused, see the agent), or refused because it
 * presented a proof that does not match. Messages never include secrets or proofs.
 */
export function verifyController(req: IncomingMessage, instance: string, guard: ControllerGuard): ControllerVerdict {
  switch (guard.kind) {
    case "none":
      return { kind: "controller" };
    case "certificate":
      return clientCertificateVerified(req) ? { kind: "controller" } : { kind: "other" };
    case "secret": {
      const presented = header(req, CONTROLLER_PROOF_HEADER);
      if (presented === undefined) return { kind: "other" };
      if (controllerProofMatches(guard.secret, presented)) return { kind: "controller" };
      return {
        kind: "refused",
        message:
          `agent ${JSON.stringify(instance)} does not accept this controller: its proof is not the one for that instance. ` +
          "The agent's --agent-secret-file must be `zmgmt agent-secret NAME` of this controller's master secret",
      };
    }
  }
}
