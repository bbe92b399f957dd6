// Throwaway certificate authorities and certificates for TLS tests, made with openssl in a
// directory the test owns (and removes), so no key ever lands in the repository.

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

export interface CertFiles {
  cert: string;
  key: string;
}

export interface LeafOptions {
  /** Subject CN. */
  cn: string;
  /** subjectAltName entries as openssl writes them, e.g. `DNS:agent-b`, `IP:127.0.0.1`. */
  san?: string[];
  /** serverAuth as well as clientAuth. */
  server?: boolean;
}

/** Makes CAs and certificates they sign, all under `dir`. */
export class TestPki {
  private serial = 1000;

  constructor(readonly dir: string) {
    writeFileSync(this.file("openssl.cnf"), OPENSSL_CONFIG);
  }

  private file(name: string): string {
    return join(this.dir, name);
  }

  private ssl(...args: string[]): void {
    execFileSync("openssl", args, { cwd: this.dir, stdio: ["ignore", "ignore", "pipe"] });
  }

  private static readonly NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  /** A self-signed CA; returns its certificate file (the key sits next to it). */
  ca(name: string): string {
    const f = (ext: string): string => this.file(`${name}.${ext}`);
    this.ssl(
      "req",
      "-x509",
      "-new",
      "-config",
      this.file("openssl.cnf"),
      "-extensions",
      "ca_ext",
      ...TestPki.NEW_KEY,
      "-keyout",
      f("key"),
      "-out",
      f("pem"),
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    );
    return f("pem");
  }

  /** A certificate `name` signed by the CA whose certificate is `caCert` (from {@link ca}). */
  leaf(name: string, caCert: string, options: LeafOptions): CertFiles {
    const f = (ext: string): string => this.file(`${name}.${ext}`);
    const caKey = caCert.replace(/\.pem$/, ".key");
    const ext = [
      "basicConstraints = CA:FALSE",
      "keyUsage = critical,digitalSignature",
      `extendedKeyUsage = ${options.server ? "serverAuth,clientAuth" : "clientAuth"}`,
      ...(options.san?.length ? [`subjectAltName = ${options.san.join(",")}`] : []),
    ];
    writeFileSync(f("ext"), `${ext.join("\n")}\n`);
    this.ssl(
      "req",
      "-new",
      "-config",
      this.file("openssl.cnf"),
      ...TestPki.NEW_KEY,
      "-keyout",
      f("key"),
      "-out",
      f("csr"),
      "-subj",
      `/CN=${options.cn}`,
    );
    this.ssl(
      "x509",
      "-req",
      "-in",
      f("csr"),
      "-CA",
      caCert,
      "-CAkey",
      caKey,
      "-set_serial",
      String(this.serial++),
      "-days",
      "2",
      "-extfile",
      f("ext"),
      "-out",
      f("pem"),
    );
    return { cert: f("pem"), key: f("key") };
  }
}
