// INI reading and writing with the semantics of Python's configparser.ConfigParser, because
// zeek-client reads both its own settings and cluster configurations through it and users'
// files must mean the same thing to us as to zeek-client.
//
// Why not the npm `ini` package: it cuts values at `;`/`#` (inline comments), knows only `=`
// (not `:`), has no indented continuation lines, keeps key case, turns `[a.b]` into nested
// objects and `k[]` into arrays, coerces true/false/null, and never reports duplicates.

import { IniError } from "./ini-error.js";
import { checkInterpolationSyntax, interpolate } from "./ini-interpolation.js";
import {
  PY_NON_WS,
  optionxform,
  pad2,
  parsePyBoolean,
  parsePyFloat,
  parsePyInt,
  pyRepr,
  pyRstrip,
  pyStrip,
  universalLines,
} from "./py-text.js";

// The Python text helpers are part of this module's interface for its callers.
export {
  isPySpace,
  optionxform,
  parsePyBoolean,
  parsePyFloat,
  parsePyInt,
  pyRepr,
  pyRstrip,
  pySplitWhitespace,
  pyStrip,
} from "./py-text.js";

export { IniError, type IniErrorCode, type IniErrorDetails } from "./ini-error.js";

export const DEFAULT_SECTION = "DEFAULT";

/** A value as stored: `null` is an option written without a value (allow_no_value). */
export type IniValue = string | null;

const SECTION_HEADER = /^\[([\s\S]+)\]/;

/** While a read is in progress, values being built from several lines are arrays. */
type StoredValue = IniValue | string[];
type SectionData = Map<string, StoredValue>;

export interface ConfigParserOptions {
  /** Options without a delimiter become valueless (`null`) instead of a parsing error. */
  allowNoValue?: boolean;
  /** `%(name)s` / `%%` expansion on get (BasicInterpolation). On by default, as in Python. */
  interpolation?: boolean;
}

export class ConfigParser {
  readonly allowNoValue: boolean;
  readonly interpolation: boolean;
  private readonly defaultsData: SectionData = new Map();
  private readonly sectionsData = new Map<string, SectionData>();

  constructor(options: ConfigParserOptions = {}) {
    this.allowNoValue = options.allowNoValue ?? false;
    this.interpolation = options.interpolation ?? true;
  }

  /**
   * Reads INI text into this parser, like read_file()/read_string(). Sections that already
   * exist (from earlier reads or set()) are extended rather than rejected; repeats within this
   * one text are errors. `source` is the name quoted in error messages.
   */
  readString(text: string, source = "<string>"): void {
    const sectionsSeen = new Set<string>();
    const optionsSeen = new Map<string, Set<string>>();
    let cursect: SectionData | null = null;
    let sectname: string | null = null;
    let optname: string | null = null;
    let indentLevel = 0;
    let parseError: { lines: number[]; message: string } | null = null;

    const noteBadLine = (lineno: number, line: string): void => {
      if (parseError === null) {
        parseError = { lines: [], message: `Source contains parsing errors: ${pyRepr(source)}` };
      }
      parseError.lines.push(lineno);
      parseError.message += `\n\t[line ${pad2(lineno)}]: ${pyRepr(line)}`;
    };

    try {
      const lines = universalLines(text);
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        const lineno = i + 1;
        const stripped = pyStrip(line);
        const isComment = stripped.startsWith("#") || stripped.startsWith(";");
        const value = isComment ? "" : stripped;

        if (value === "") {
          // A blank line may belong to a multi-line value; a comment line never does.
          if (!isComment && cursect !== null && optname) {
            const current = cursect.get(optname);
            if (Array.isArray(current)) current.push("");
          }
          continue;
        }

        const firstNonSpace = line.search(PY_NON_WS);
        const curIndent = firstNonSpace >= 0 ? firstNonSpace : 0;

        if (cursect !== null && optname && curIndent > indentLevel) {
          const current = cursect.get(optname);
          if (!Array.isArray(current)) {
            // Python fails here with an AttributeError; give the same situation a real message.
            throw new IniError(
              "continuation-without-value",
              `While reading from ${pyRepr(source)} [line ${pad2(lineno)}]: continuation line for option ${pyRepr(optname)}, which has no value`,
              { source, lines: [lineno], ...(sectname !== null ? { section: sectname } : {}), option: optname },
            );
          }
          current.push(value);
          continue;
        }

        indentLevel = curIndent;
        const header = SECTION_HEADER.exec(value);
        if (header) {
          sectname = header[1]!;
          const existing = this.sectionsData.get(sectname);
          if (existing !== undefined) {
            if (sectionsSeen.has(sectname)) {
              throw new IniError(
                "duplicate-section",
                `While reading from ${pyRepr(source)} [line ${pad2(lineno)}]: section ${pyRepr(sectname)} already exists`,
                { source, lines: [lineno], section: sectname },
              );
            }
            cursect = existing;
            sectionsSeen.add(sectname);
          } else if (sectname === DEFAULT_SECTION) {
            // DEFAULT may be opened repeatedly; only its options are checked for repeats.
            cursect = this.defaultsData;
          } else {
            cursect = new Map();
            this.sectionsData.set(sectname, cursect);
            sectionsSeen.add(sectname);
          }
          optname = null;
          continue;
        }

        if (cursect === null || sectname === null) {
          throw new IniError(
            "missing-section-header",
            `File contains no section headers.\nfile: ${pyRepr(source)}, line: ${lineno}\n${pyRepr(line)}`,
            { source, lines: [lineno] },
          );
        }

        const delim = value.search(/[=:]/);
        if (delim < 0 && !this.allowNoValue) {
          noteBadLine(lineno, line);
          continue;
        }
        const rawName = delim < 0 ? value : value.slice(0, delim);
        // configparser records an empty option name as a parsing error but still stores it.
        if (delim === 0) noteBadLine(lineno, line);
        optname = optionxform(pyRstrip(rawName));
        let seen = optionsSeen.get(sectname);
        if (seen === undefined) {
          seen = new Set();
          optionsSeen.set(sectname, seen);
        }
        if (seen.has(optname)) {
          throw new IniError(
            "duplicate-option",
            `While reading from ${pyRepr(source)} [line ${pad2(lineno)}]: option ${pyRepr(optname)} in section ${pyRepr(sectname)} already exists`,
            { source, lines: [lineno], section: sectname, option: optname },
          );
        }
        seen.add(optname);
        cursect.set(optname, delim < 0 ? null : [pyStrip(value.slice(delim + 1))]);
      }
    } finally {
      this.joinMultilineValues();
    }

    const pending = parseError as { lines: number[]; message: string } | null;
    if (pending !== null) {
      throw new IniError("parsing", pending.message, { source, lines: pending.lines });
    }
  }

  private joinMultilineValues(): void {
    for (const data of [this.defaultsData, ...this.sectionsData.values()]) {
      for (const [name, value] of data) {
        if (Array.isArray(value)) data.set(name, pyRstrip(value.join("\n")));
      }
    }
  }

  /** Section names in order of appearance, without DEFAULT. */
  sections(): string[] {
    return [...this.sectionsData.keys()];
  }

  hasSection(section: string): boolean {
    return this.sectionsData.has(section);
  }

  addSection(section: string): void {
    if (section === DEFAULT_SECTION) {
      throw new IniError("invalid-section-name", `Invalid section name: ${pyRepr(section)}`, { section });
    }
    if (this.sectionsData.has(section)) {
      throw new IniError("duplicate-section", `Section ${pyRepr(section)} already exists`, { section });
    }
    this.sectionsData.set(section, new Map());
  }

  removeSection(section: string): boolean {
    return this.sectionsData.delete(section);
  }

  /** The DEFAULT section's options and raw values. */
  defaults(): Map<string, IniValue> {
    return new Map(this.defaultsData as Map<string, IniValue>);
  }

  /** Option names of a section: its own first, then inherited DEFAULT ones. */
  options(section: string): string[] {
    const data = this.sectionsData.get(section);
    if (data === undefined) throw noSection(section);
    const names = [...data.keys()];
    for (const name of this.defaultsData.keys()) if (!data.has(name)) names.push(name);
    return names;
  }

  hasOption(section: string, option: string): boolean {
    const name = optionxform(option);
    if (!section || section === DEFAULT_SECTION) return this.defaultsData.has(name);
    const data = this.sectionsData.get(section);
    if (data === undefined) return false;
    return data.has(name) || this.defaultsData.has(name);
  }

  /** Section values over DEFAULT values, the lookup map interpolation uses. */
  private unified(section: string): Map<string, IniValue> | undefined {
    const merged = new Map(this.defaultsData as Map<string, IniValue>);
    if (section === DEFAULT_SECTION) return merged;
    const data = this.sectionsData.get(section);
    if (data === undefined) return undefined;
    for (const [k, v] of data as Map<string, IniValue>) merged.set(k, v);
    return merged;
  }

  /**
   * The value of an option, looked up in the section and then in DEFAULT, with interpolation
   * unless `raw`. Valueless options give `null`. Throws IniError "no-section"/"no-option".
   */
  get(section: string, option: string, opts: { raw?: boolean } = {}): IniValue {
    const found = this.getOptional(section, option, opts);
    if (found === undefined) {
      if (this.unified(section) === undefined) throw noSection(section);
      const name = optionxform(option);
      throw new IniError("no-option", `No option ${pyRepr(name)} in section: ${pyRepr(section)}`, {
        section,
        option: name,
      });
    }
    return found;
  }

  /** Like get() with `fallback=None`: undefined when the section or option is missing. */
  getOptional(section: string, option: string, opts: { raw?: boolean } = {}): IniValue | undefined {
    const map = this.unified(section);
    if (map === undefined) return undefined;
    const name = optionxform(option);
    if (!map.has(name)) return undefined;
    const value = map.get(name) ?? null;
    if (opts.raw || value === null || !this.interpolation) return value;
    return interpolate(section, name, value, map);
  }

  /**
   * (name, value) pairs of a section including inherited DEFAULT options, DEFAULT's first.
   * Without `raw`, values are interpolated and valueless options come back as "" (as in Python).
   */
  items(section: string, opts: { raw?: boolean } = {}): Array<[string, IniValue]> {
    const map = this.unified(section);
    if (map === undefined) throw noSection(section);
    const out: Array<[string, IniValue]> = [];
    for (const [name, value] of map) {
      if (opts.raw || !this.interpolation) out.push([name, value]);
      else out.push([name, value === null ? "" : interpolate(section, name, value, map)]);
    }
    return out;
  }

  /**
   * Stores a value (`null` = valueless). An empty or DEFAULT section name targets DEFAULT.
   * With interpolation on, a value that could never be expanded is rejected up front.
   */
  set(section: string, option: string, value: IniValue): void {
    if (value && this.interpolation) checkInterpolationSyntax(section, option, value);
    let data: SectionData | undefined;
    if (!section || section === DEFAULT_SECTION) data = this.defaultsData;
    else data = this.sectionsData.get(section);
    if (data === undefined) throw noSection(section);
    data.set(optionxform(option), value);
  }

  removeOption(section: string, option: string): boolean {
    let data: SectionData | undefined;
    if (!section || section === DEFAULT_SECTION) data = this.defaultsData;
    else data = this.sectionsData.get(section);
    if (data === undefined) throw noSection(section);
    return data.delete(optionxform(option));
  }

  getInt(section: string, option: string): number {
    const value = this.get(section, option);
    const n = value === null ? undefined : parsePyInt(value);
    if (n === undefined) throw conversionError(section, option, value, "int");
    return Number(n);
  }

  getFloat(section: string, option: string): number {
    const value = this.get(section, option);
    const n = value === null ? undefined : parsePyFloat(value);
    if (n === undefined) throw conversionError(section, option, value, "float");
    return n;
  }

  getBoolean(section: string, option: string): boolean {
    const value = this.get(section, option);
    const b = value === null ? undefined : parsePyBoolean(value);
    if (b === undefined) throw conversionError(section, option, value, "boolean");
    return b;
  }

  /** configparser's write(): DEFAULT first if it has options, each section followed by a blank line. */
  write(): string {
    let out = "";
    const writeSection = (name: string, data: SectionData): void => {
      out += `[${name}]\n`;
      for (const [key, stored] of data) {
        const value = Array.isArray(stored) ? stored.join("\n") : stored;
        if (value !== null) out += `${key} = ${value.replace(/\n/g, "\n\t")}\n`;
        else if (this.allowNoValue) out += `${key}\n`;
        else out += `${key} = None\n`;
      }
      out += "\n";
    };
    if (this.defaultsData.size > 0) writeSection(DEFAULT_SECTION, this.defaultsData);
    for (const [name, data] of this.sectionsData) writeSection(name, data);
    return out;
  }
}

function noSection(section: string): IniError {
  return new IniError("no-section", `No section: ${pyRepr(section)}`, { section });
}

function conversionError(section: string, option: string, value: IniValue, kind: "int" | "float" | "boolean"): IniError {
  const details = { section, option: optionxform(option) };
  if (value === null) {
    const what =
      kind === "boolean"
        ? "'NoneType' object has no attribute 'lower'"
        : kind === "int"
          ? "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"
          : "float() argument must be a string or a real number, not 'NoneType'";
    return new IniError("invalid-value", what, details);
  }
  if (kind === "int") return new IniError("invalid-value", `invalid literal for int() with base 10: ${pyRepr(value)}`, details);
  if (kind === "float") return new IniError("invalid-value", `could not convert string to float: ${pyRepr(value)}`, details);
  return new IniError("invalid-value", `Not a boolean: ${value}`, details);
}

export interface ParseIniOptions extends ConfigParserOptions {
  source?: string;
}

/** A fresh parser holding `text`. Throws IniError on syntax errors. */
export function parseIni(text: string, options: ParseIniOptions = {}): ConfigParser {
  const parser = new ConfigParser(options);
  parser.readString(text, options.source ?? "<string>");
  return parser;
}
