// Python's text semantics as configparser sees them: str.strip()/split()/repr(), int(),
// float(), the getboolean() words and text-mode line splitting. Kept apart from the INI
// reader so each can be read on its own; both mirror CPython.

// Python string helpers. configparser relies on str.strip()/str.isspace(), whose whitespace set
// differs from JavaScript's (\x1c-\x1f and \x85 count, \ufeff does not).

const PY_WS = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WS_CHAR = new RegExp(`[${PY_WS}]`);
const PY_LEADING_WS = new RegExp(`^[${PY_WS}]+`);
const PY_TRAILING_WS = new RegExp(`[${PY_WS}]+$`);
export const PY_NON_WS = new RegExp(`[^${PY_WS}]`);
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`);

export function isPySpace(ch: string): boolean {
  return ch.length > 0 && PY_WS_CHAR.test(ch);
}

export function pyStrip(s: string): string {
  return s.replace(PY_LEADING_WS, "").replace(PY_TRAILING_WS, "");
}

export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING_WS, "");
}

/** Python's str.split() without arguments: runs of whitespace separate, empty parts vanish. */
export function pySplitWhitespace(s: string): string[] {
  return s.split(PY_WS_RUN).filter((part) => part.length > 0);
}

/** configparser's optionxform. */
export function optionxform(name: string): string {
  return name.toLowerCase();
}

const NON_PRINTABLE = /[\p{C}\p{Z}]/u;

/** Python's repr() of a str, which configparser uses in its error messages. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch !== " " && NON_PRINTABLE.test(ch)) {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x100) out += "\\x" + cp.toString(16).padStart(2, "0");
      else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
      else out += "\\U" + cp.toString(16).padStart(8, "0");
    } else out += ch;
  }
  return out + quote;
}

/** Python's `"%2d" % n`. */
export function pad2(n: number): string {
  return String(n).padStart(2, " ");
}

const DECIMAL_DIGIT = /\p{Nd}/u;

// Python's int()/float() accept any Unicode decimal digit. Unicode guarantees that each
// script's digits form a contiguous 0..9 run, so a digit's value is its distance from the
// start of its run, modulo 10 for adjacent runs.
function asciiDigits(s: string): string {
  let out = "";
  for (const ch of s) {
    if (ch >= "0" && ch <= "9") {
      out += ch;
      continue;
    }
    if (!DECIMAL_DIGIT.test(ch)) {
      out += ch;
      continue;
    }
    let start = ch.codePointAt(0)!;
    while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
    out += String((ch.codePointAt(0)! - start) % 10);
  }
  return out;
}

const PY_INT = /^[+-]?[0-9](?:_?[0-9])*$/;

/** Python's int(text) for base 10, or undefined where Python raises ValueError. */
export function parsePyInt(text: string): bigint | undefined {
  const s = asciiDigits(pyStrip(text));
  if (!PY_INT.test(s)) return undefined;
  return BigInt(s.replace(/_/g, ""));
}

const PY_DIGITPART = "[0-9](?:_?[0-9])*";
const PY_FLOAT = new RegExp(
  `^[+-]?(?:(?:${PY_DIGITPART}(?:\\.(?:${PY_DIGITPART})?)?|\\.${PY_DIGITPART})(?:[eE][+-]?${PY_DIGITPART})?|inf|infinity|nan)$`,
  "i",
);

/** Python's float(text), or undefined where Python raises ValueError. */
export function parsePyFloat(text: string): number | undefined {
  const s = asciiDigits(pyStrip(text));
  if (!PY_FLOAT.test(s)) return undefined;
  const lower = s.toLowerCase().replace(/_/g, "");
  const body = lower.replace(/^[+-]/, "");
  const negative = lower.startsWith("-");
  if (body === "nan") return NaN;
  if (body === "inf" || body === "infinity") return negative ? -Infinity : Infinity;
  return Number(lower);
}

const BOOLEAN_STATES: Record<string, boolean> = {
  "1": true,
  yes: true,
  true: true,
  on: true,
  "0": false,
  no: false,
  false: false,
  off: false,
};

/** configparser's getboolean() word list, or undefined for anything else. */
export function parsePyBoolean(text: string): boolean | undefined {
  const key = text.toLowerCase();
  return Object.prototype.hasOwnProperty.call(BOOLEAN_STATES, key) ? BOOLEAN_STATES[key] : undefined;
}

/** Splits like a Python text-mode file: `\n`, `\r\n` and `\r` end lines, each reported as `\n`. */
export function universalLines(text: string): string[] {
  const lines: string[] = [];
  const re = /\r\n|\r|\n/g;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    lines.push(text.slice(start, m.index) + "\n");
    start = m.index + m[0].length;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}
