// TLS flags shared by the daemons: the listener's certificate, the client side of links
// they dial, and the listen-address policy. Everything is checked in the foreground, since
// a supervised child that fails on a bad file would only be revived and fail again.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createSecureContext } from "node:tls";
import { Option, type Command } from "commander";
import type { PeerTlsOptions } from "../broker/peer.js";
import type { TlsServerOptions } from "../broker/server.js";
import { ALLOW_INSECURE_LISTEN_FLAG, checkListenSecurity } from "../management/security.js";

export const TLS_PASSPHRASE_ENV = "ZMGMT_TLS_PASSPHRASE";

export interface ListenerTlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsPassphrase?: string;
  tlsVerifyClients?: boolean;
  allowInsecureListen?: boolean;
}

export function addListenerTlsOptions(cmd: Command): Command {
  return cmd
    .option("--tls-cert <file>", "serve wss:// with this certificate (PEM, may include the chain)")
    .option("--tls-key <file>", "private key of --tls-cert (PEM)")
    .option("--tls-ca <file>", "CA bundle that client certificates must chain to (with --tls-verify-clients)")
    .addOption(
      new Option("--tls-passphrase <text>", "passphrase of an encrypted --tls-key (also used for the keys of dialed links)").env(
        TLS_PASSPHRASE_ENV,
      ),
    )
    .option("--tls-verify-clients", "require a client certificate signed by --tls-ca (mutual TLS)")
    .option(ALLOW_INSECURE_LISTEN_FLAG, "allow listening on a non-loopback address without TLS");
}

function readable(flag: string, file: string): string {
  const path = resolve(file);
  try {
    readFileSync(path);
  } catch (err) {
    throw new Error(`${flag} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Absolute, because supervised children run in their own directories.
  return path;
}

/** The listener's TLS options, or undefined for plaintext; throws on unusable flags. */
export function listenerTlsFromFlags(flags: ListenerTlsFlags): TlsServerOptions | undefined {
  if (!flags.tlsCert && !flags.tlsKey) {
    if (flags.tlsCa || flags.tlsVerifyClients) throw new Error("--tls-ca and --tls-verify-clients need --tls-cert and --tls-key");
    return undefined;
  }
  if (!flags.tlsCert || !flags.tlsKey) throw new Error("--tls-cert and --tls-key go together");
  // Node would fall back to the public CAs, which would admit anyone with any certificate.
  if (flags.tlsVerifyClients && !flags.tlsCa) throw new Error("--tls-verify-clients needs --tls-ca");
  const tls: TlsServerOptions = {
    certFile: readable("--tls-cert", flags.tlsCert),
    keyFile: readable("--tls-key", flags.tlsKey),
    ...(flags.tlsCa ? { caFile: readable("--tls-ca", flags.tlsCa) } : {}),
    ...(flags.tlsPassphrase ? { passphrase: flags.tlsPassphrase } : {}),
    ...(flags.tlsVerifyClients ? { verifyClients: true } : {}),
  };
  try {
    createSecureContext({
      cert: readFileSync(tls.certFile),
      key: readFileSync(tls.keyFile),
      ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
    });
  } catch (err) {
    throw new Error(`cannot use --tls-cert/--tls-key: ${err instanceof Error ? err.message : String(err)}`);
  }
  return tls;
}

/**
 * Client-side TLS for a link a daemon dials, or undefined when no flag is given. The peer is
 * always verified (against `ca`, or the system's CAs without it): these links carry
 * commands, and unlike zeek-client there is no older server to stay compatible with.
 */
export function dialTlsFromFlags(
  flags: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined; passphrase?: string | undefined },
  names: { ca: string; cert: string; key: string },
): PeerTlsOptions | undefined {
  if (!flags.ca && !flags.cert && !flags.key) return undefined;
  if (Boolean(flags.cert) !== Boolean(flags.key)) throw new Error(`${names.cert} and ${names.key} go together`);
  const tls: PeerTlsOptions = {
    ...(flags.ca ? { caFile: readable(names.ca, flags.ca) } : {}),
    ...(flags.cert ? { certFile: readable(names.cert, flags.cert) } : {}),
    ...(flags.key ? { keyFile: readable(names.key, flags.key) } : {}),
    ...(flags.passphrase && flags.key ? { passphrase: flags.passphrase } : {}),
    rejectUnauthorized: true,
  };
  try {
    createSecureContext({
      ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
      ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
      ...(tls.passphrase ? { passphrase: tls.passphrase } : {}),
    });
  } catch (err) {
    throw new Error(`cannot use ${names.ca}/${names.cert}/${names.key}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return tls;
}

/**
 * Applies the listen policy in the foreground: throws its error, prints its warning unless
 * the daemon's own log already goes to stderr (it logs the warning as well).
 */
export function enforceListenPolicy(
  role: string,
  host: string,
  tls: TlsServerOptions | undefined,
  allowInsecure: boolean,
  printWarning = true,
): void {
  const verdict = checkListenSecurity(role, host, tls, allowInsecure);
  if (verdict.error) throw new Error(verdict.error);
  if (verdict.warning && printWarning) process.stderr.write(`WARNING: ${verdict.warning}\n`);
}
