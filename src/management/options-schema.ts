// Schemas shared by the daemons' option types (controller and agent), and the one way a
// daemon reads its options from JSON: parsed, then checked against its schema, since the
// writing and the reading build may differ and a mismatch would otherwise surface much later.

import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { PeerTlsOptions } from "../broker/peer.js";
import type { TlsServerOptions } from "../broker/server.js";
import type { LogFormat, LogLevel } from "./log.js";

export const PortSchema = Type.Integer({ minimum: 0, maximum: 65535 });

export const LogLevelSchema = Type.Union([Type.Literal("DEBUG"), Type.Literal("INFO"), Type.Literal("WARNING"), Type.Literal("ERROR")]);

/** Format of the stderr copy of the management log. */
export const LogFormatSchema = Type.Union([Type.Literal("pretty"), Type.Literal("json")]);

export const TlsServerSchema = Type.Object(
  {
    certFile: Type.String(),
    keyFile: Type.String(),
    caFile: Type.Optional(Type.String()),
    passphrase: Type.Optional(Type.String()),
    verifyClients: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const PeerTlsSchema = Type.Object(
  {
    caFile: Type.Optional(Type.String()),
    caPath: Type.Optional(Type.String()),
    certFile: Type.Optional(Type.String()),
    keyFile: Type.Optional(Type.String()),
    passphrase: Type.Optional(Type.String()),
    ciphers: Type.Optional(Type.String()),
    rejectUnauthorized: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

// The schemas restate types the broker and the logger own; these fail to compile when
// one side changes without the other.
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export type Holds<T extends true> = T;
export type SchemasMatch = [
  Holds<Same<Static<typeof TlsServerSchema>, TlsServerOptions>>,
  Holds<Same<Static<typeof PeerTlsSchema>, PeerTlsOptions>>,
  Holds<Same<Static<typeof LogLevelSchema>, LogLevel>>,
  Holds<Same<Static<typeof LogFormatSchema>, LogFormat>>,
];

/**
 * Returns a reader of JSON options for `schema`; `fail(message)` builds the role's own typed
 * error, and `what` names the options in messages ("controller options").
 */
export function jsonOptionsReader<T extends TSchema>(
  schema: T,
  what: string,
  fail: (message: string) => Error,
): (text: string | undefined, source: string) => Static<T> {
  const check = TypeCompiler.Compile(schema);
  return (text, source) => {
    if (text === undefined || text === "") throw fail(`${source} is not set`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw fail(`${source} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (check.Check(value)) return value;
    throw fail(`${source} holds invalid ${what}: ${describeErrors(check.Errors(value))}`);
  };
}

function describeErrors(errors: Iterable<{ path: string; message: string }>): string {
  const lines: string[] = [];
  for (const e of errors) {
    lines.push(`${e.path || "/"}: ${e.message}`);
    if (lines.length === 5) break;
  }
  return lines.join("; ");
}
