// JSON as Python's json module reads and writes it. zeek-client prints everything through
// json.dumps(sort_keys=True, indent=2), and get-id-value round-trips Zeek's to_json() text
// through json.loads, so int/float identity (10 vs 10.0), big integers, ASCII escaping and
// key order must follow Python, not JSON.stringify.
// (Not json-bigint or lossless-json: they keep big integers, but neither writes Python's
// float repr, ensure_ascii escapes and separators.)

import { compareCodePoints } from "./cluster-config.js";

/** A Python float, kept distinct from ints so that 10.0 prints as `10.0`. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/**
 * A JSON value in Python's terms. JavaScript numbers count as ints when they are integral and
 * as floats otherwise; bigints are ints beyond the safe range.
 */
export type PyJson = null | boolean | string | number | bigint | PyFloat | PyJson[] | PyDict;
export interface PyDict {
  [key: string]: PyJson;
}

/** An object without a prototype, so any key (even `__proto__`) is an ordinary entry. */
export function pyDict(entries: Iterable<[string, PyJson]> = []): PyDict {
  const d = Object.create(null) as PyDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Python's repr() of a float, e.g. `10.0`, `1e-05`, `1e+16`, `inf` handled by the caller. */
export function pyFloatRepr(x: number): string {
  if (Object.is(x, -0)) return "-0.0";
  if (x === 0) return "0.0";
  // toExponential() without digits gives the shortest round-tripping digits, as repr() does.
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential());
  if (m === null) return String(x);
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? "");
  const exp = Number(m[4]);
  const decpt = exp + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp);
  return `${sign}${mantissa}e${exp < 0 ? "-" : "+"}${e < 10 ? "0" : ""}${e}`;
}

function floatText(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  return pyFloatRepr(x);
}

const ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/** A JSON string literal with ensure_ascii: everything outside space..tilde is escaped. */
export function pyJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const esc = ESCAPES[ch];
    if (esc !== undefined) out += esc;
    else if (code < 0x20 || code > 0x7e) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

function scalarText(v: PyJson): string | undefined {
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "string") return pyJsonString(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : floatText(v);
  if (v instanceof PyFloat) return floatText(v.value);
  return undefined;
}

/** json.dumps(value, sort_keys=True, indent=indent); `indent` null gives the one-line form. */
export function pyDumps(value: PyJson, indent: number | null = 2): string {
  const write = (v: PyJson, level: number): string => {
    const scalar = scalarText(v);
    if (scalar !== undefined) return scalar;
    const isList = Array.isArray(v);
    const items: string[] = isList
      ? v.map((item) => write(item, level + 1))
      : Object.keys(v as PyDict)
          .sort(compareCodePoints)
          .map((k) => `${pyJsonString(k)}: ${write((v as PyDict)[k]!, level + 1)}`);
    const [open, close] = isList ? ["[", "]"] : ["{", "}"];
    if (items.length === 0) return open + close;
    if (indent === null) return open + items.join(", ") + close;
    const inner = "\n" + " ".repeat(indent * (level + 1));
    const outer = "\n" + " ".repeat(indent * level);
    return open + inner + items.join("," + inner) + outer + close;
  };
  return write(value, 0);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** json.JSONDecodeError, with Python's message layout. */
export class PyJsonDecodeError extends Error {
  constructor(msg: string, doc: string, pos: number) {
    const before = doc.slice(0, pos);
    const lineno = before.split("\n").length;
    const colno = pos - (before.lastIndexOf("\n") + 1) + 1;
    super(`${msg}: line ${lineno} column ${colno} (char ${pos})`);
    this.name = "PyJsonDecodeError";
  }
}

const WS = new Set([" ", "\t", "\n", "\r"]);
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

/** json.loads(text): ints stay ints (bigint when large), floats become PyFloat. */
export function pyLoads(doc: string): PyJson {
  let pos = 0;
  const fail = (msg: string, at = pos): never => {
    throw new PyJsonDecodeError(msg, doc, at);
  };
  const skipWs = (): void => {
    while (pos < doc.length && WS.has(doc[pos]!)) pos++;
  };

  const parseString = (): string => {
    const start = pos - 1;
    let out = "";
    for (;;) {
      if (pos >= doc.length) fail("Unterminated string starting at", start);
      const ch = doc[pos]!;
      if (ch === '"') {
        pos++;
        return out;
      }
      if (ch === "\\") {
        const e = doc[pos + 1];
        if (e === undefined) fail("Unterminated string starting at", start);
        const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        const escaped = e === undefined ? undefined : simple[e];
        if (e === "u") {
          const hex = doc.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape", pos + 1);
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else if (escaped !== undefined) {
          out += escaped;
          pos += 2;
        } else {
          fail("Invalid \\escape", pos);
        }
        continue;
      }
      if (ch.charCodeAt(0) < 0x20) fail("Invalid control character at", pos);
      out += ch;
      pos++;
    }
  };

  const parseValue = (): PyJson => {
    const ch = doc[pos];
    if (ch === '"') {
      pos++;
      return parseString();
    }
    if (ch === "{") {
      pos++;
      const obj = pyDict();
      skipWs();
      if (doc[pos] === "}") {
        pos++;
        return obj;
      }
      for (;;) {
        if (doc[pos] !== '"') fail("Expecting property name enclosed in double quotes");
        pos++;
        const key = parseString();
        skipWs();
        if (doc[pos] !== ":") fail("Expecting ':' delimiter");
        pos++;
        skipWs();
        obj[key] = parseValue();
        skipWs();
        if (doc[pos] === "}") {
          pos++;
          return obj;
        }
        if (doc[pos] !== ",") fail("Expecting ',' delimiter");
        pos++;
        skipWs();
      }
    }
    if (ch === "[") {
      pos++;
      const arr: PyJson[] = [];
      skipWs();
      if (doc[pos] === "]") {
        pos++;
        return arr;
      }
      for (;;) {
        skipWs();
        arr.push(parseValue());
        skipWs();
        if (doc[pos] === "]") {
          pos++;
          return arr;
        }
        if (doc[pos] !== ",") fail("Expecting ',' delimiter");
        pos++;
      }
    }
    for (const [word, value] of [
      ["null", null],
      ["true", true],
      ["false", false],
      ["NaN", new PyFloat(NaN)],
      ["Infinity", new PyFloat(Infinity)],
      ["-Infinity", new PyFloat(-Infinity)],
    ] as Array<[string, PyJson]>) {
      if (doc.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(doc);
    if (m !== null) {
      pos += m[0].length;
      if (m[1] === undefined && m[2] === undefined) {
        const n = BigInt(m[0]);
        return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
      }
      return new PyFloat(Number(m[0]));
    }
    return fail("Expecting value");
  };

  skipWs();
  const value = parseValue();
  skipWs();
  if (pos !== doc.length) fail("Extra data");
  return value;
}
