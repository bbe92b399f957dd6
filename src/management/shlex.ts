// Word splitting as Python's shlex.split(s) does it (POSIX mode, no comments), since
// zeek-client splits `scripts`, `env` and ZEEK_CLIENT_CONFIG_SETTINGS that way, and the
// agent splits a node's ZMGMT_NODE_COMMAND the same way.
// Not the npm `shlex` package: its split() also decodes bash's $'...' and $"..." quotes,
// which Python keeps as `$` plus a quoted word, and its errors lack Python's messages.

export type ShlexErrorCode = "no-closing-quotation" | "no-escaped-character";

export class ShlexError extends Error {
  readonly code: ShlexErrorCode;

  constructor(code: ShlexErrorCode) {
    // The messages are Python's, because zeek-client shows them to the user.
    super(code === "no-closing-quotation" ? "No closing quotation" : "No escaped character");
    this.name = "ShlexError";
    this.code = code;
  }
}

// shlex only knows ASCII whitespace, unlike str.split().
const WHITESPACE = new Set([" ", "\t", "\r", "\n"]);

type State = "between" | "word" | "'" | '"' | "escape";

export function shlexSplit(s: string): string[] {
  const words: string[] = [];
  let state: State = "between";
  let token = "";
  let quoted = false;
  // Where an escape returns to: a word, or the double quotes it appeared in.
  let escapedFrom: "word" | '"' = "word";

  const emit = (): void => {
    words.push(token);
    token = "";
    quoted = false;
  };

  for (const ch of s) {
    switch (state) {
      case "between":
        if (WHITESPACE.has(ch)) continue;
        if (ch === "\\") {
          escapedFrom = "word";
          state = "escape";
        } else if (ch === "'" || ch === '"') {
          state = ch;
        } else {
          token = ch;
          state = "word";
        }
        break;
      case "word":
        if (WHITESPACE.has(ch)) {
          state = "between";
          // An empty token only counts if it came from quotes, like `''`.
          if (token || quoted) emit();
        } else if (ch === "'" || ch === '"') {
          state = ch;
        } else if (ch === "\\") {
          escapedFrom = "word";
          state = "escape";
        } else {
          token += ch;
        }
        break;
      case "'":
        quoted = true;
        if (ch === "'") state = "word";
        else token += ch;
        break;
      case '"':
        quoted = true;
        if (ch === '"') state = "word";
        else if (ch === "\\") {
          escapedFrom = '"';
          state = "escape";
        } else token += ch;
        break;
      case "escape":
        // Inside double quotes a backslash only escapes `"` and itself; elsewhere it stays.
        if (escapedFrom === '"' && ch !== '"' && ch !== "\\") token += "\\";
        token += ch;
        state = escapedFrom;
        break;
    }
  }

  if (state === "'" || state === '"') throw new ShlexError("no-closing-quotation");
  if (state === "escape") throw new ShlexError("no-escaped-character");
  if (token || quoted) emit();
  return words;
}
