// Whether a controller or agent may listen where it was asked to. Whoever can open a
// WebSocket to either one can deploy configurations, i.e. run programs on the cluster's
// hosts, so a plaintext listener on a reachable address must be a deliberate choice.

import { isIP } from "node:net";
import type { TlsServerOptions } from "../broker/server.js";

/** The flag that accepts a plaintext listener on a non-loopback address. */
export const ALLOW_INSECURE_LISTEN_FLAG = "--allow-insecure-listen";

/** Literal loopback addresses and `localhost`; any other name counts as reachable. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

export interface ListenVerdict {
  /** Set when the listener must not start. */
  error?: string;
  /** Set when it may start but the operator should know the risk. */
  warning?: string;
}

/**
 * The policy: loopback is always fine; elsewhere TLS is required unless explicitly waived,
 * and TLS without client certificates earns a warning, since TLS alone only protects the
 * traffic, not who may send it.
 */
export function checkListenSecurity(role: string, host: string, tls: TlsServerOptions | undefined, allowInsecure: boolean): ListenVerdict {
  if (isLoopbackHost(host)) return {};
  if (!tls) {
    if (allowInsecure) {
      return {
        warning: `${role} listens on ${host} without TLS (${ALLOW_INSECURE_LISTEN_FLAG}): anyone who can reach the port can control the cluster`,
      };
    }
    return {
      error:
        `refusing to listen on ${host} without TLS: anyone who can reach the ${role}'s port could control the cluster. ` +
        `Give --tls-cert and --tls-key (ideally with --tls-ca and --tls-verify-clients), listen on 127.0.0.1, ` +
        `or pass ${ALLOW_INSECURE_LISTEN_FLAG} to accept the risk`,
    };
  }
  if (!tls.verifyClients) {
    return {
      warning: `${role} listens on ${host} with TLS but without client certificate verification (--tls-verify-clients): anyone who can reach the port can control the cluster`,
    };
  }
  return {};
}
