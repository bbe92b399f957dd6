import { describe, it, expect } from "vitest";
import fc from "fast-check";
import {
  ConfigParser,
  IniError,
  parseIni,
  parsePyBoolean,
  parsePyFloat,
  parsePyInt,
  pyRepr,
  pySplitWhitespace,
  pyStrip,
} from "../src/client/ini.js";
import { ShlexError, shlexSplit } from "../src/management/shlex.js";
import { quoteIfSpaced } from "../src/client/cluster-config.js";

/** Section -> option -> raw value, in file order, for compact expectations. */
function dump(p: ConfigParser): Record<string, Record<string, string | null>> {
  const out: Record<string, Record<string, string | null>> = {};
  const defaults = p.defaults();
  if (defaults.size > 0) out.DEFAULT = Object.fromEntries(defaults);
  for (const s of p.sections()) {
    out[s] = {};
    for (const [k, v] of p.items(s, { raw: true })) if (!defaults.has(k) || p.get(s, k, { raw: true }) !== defaults.get(k)) out[s][k] = v;
  }
  return out;
}

function errorOf(fn: () => unknown): IniError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IniError);
    return err as IniError;
  }
  throw new Error("expected an IniError");
}

const nv = (text: string, source = "t.ini") => parseIni(text, { allowNoValue: true, source });

describe("INI reader: configparser semantics", () => {
  it("keeps inline ; and # as part of the value", () => {
    expect(dump(nv("[s]\nk = v ; not a comment # nor this\n"))).toEqual({ s: { k: "v ; not a comment # nor this" } });
  });

  it("skips full-line comments, also when indented", () => {
    expect(dump(nv("# top\n[s]\n  # indented\n; semi\nk=v\n"))).toEqual({ s: { k: "v" } });
  });

  it("joins indented continuation lines with newlines, keeps inner blank lines, drops trailing ones", () => {
    expect(dump(nv("[s]\nk = a\n  b\n\n  c\n\n\nj = 1\n"))).toEqual({ s: { k: "a\nb\n\nc", j: "1" } });
  });

  it("ignores comment lines inside a continued value", () => {
    expect(dump(nv("[s]\nk = a\n  # x\n  b\n"))).toEqual({ s: { k: "a\nb" } });
  });

  it("keeps a leading newline when the first line of a value is empty", () => {
    expect(dump(nv("[s]\nk =\n  b\n"))).toEqual({ s: { k: "\nb" } });
  });

  it("treats tab indentation as continuation and measures indent per character", () => {
    expect(dump(nv("[a]\nx=1\n\ty\n"))).toEqual({ a: { x: "1\ny" } });
    // An indented option sets the level; the same indent starts a new option.
    expect(dump(nv("[a]\n  x=1\n  y=2\n   z\n"))).toEqual({ a: { x: "1", y: "2\nz" } });
  });

  it("splits at the first delimiter, = or :", () => {
    expect(dump(nv("[s]\nk : a = b\nx=y:z\n"))).toEqual({ s: { k: "a = b", x: "y:z" } });
  });

  it("lower-cases option names but not section names", () => {
    const p = nv("[S]\nKeY = v\n[s]\n");
    expect(p.sections()).toEqual(["S", "s"]);
    expect(p.get("S", "KEY")).toBe("v");
    expect(p.options("S")).toEqual(["key"]);
  });

  it("strips values and names, using Python's whitespace set", () => {
    expect(dump(nv("[a]\n\u00a0x \u00a0= \x1c1\u00a0\n"))).toEqual({ a: { x: "1" } });
    expect(pyStrip("\ufeffx ")).toBe("\ufeffx");
  });

  it("accepts CRLF and lone CR line ends", () => {
    expect(dump(nv("[a]\r\nx = 1\r\n  y\r\n"))).toEqual({ a: { x: "1\ny" } });
    expect(dump(nv("[a]\rx = 1\ry = 2"))).toEqual({ a: { x: "1", y: "2" } });
  });

  it("takes a section header up to the last ] and ignores what follows it", () => {
    expect(dump(nv("[a] ; c\nx=1\n[b]c]\n[ sp ]\n"))).toEqual({ a: { x: "1" }, "b]c": {}, " sp ": {} });
  });

  it("reads [] as a valueless option, not a header", () => {
    expect(dump(nv("[a]\n[]\n"))).toEqual({ a: { "[]": null } });
  });

  it("keeps section and option order", () => {
    const p = nv("[z]\nb=1\na=2\n[a]\nz=1\n[m]\n");
    expect(p.sections()).toEqual(["z", "a", "m"]);
    expect(p.options("z")).toEqual(["b", "a"]);
  });

  it("makes DEFAULT values visible in every section", () => {
    const p = nv("[DEFAULT]\nd = 1\ne = 2\n[s]\nx = 3\ne = 4\n");
    expect(p.sections()).toEqual(["s"]);
    expect(p.get("s", "d")).toBe("1");
    expect(p.get("s", "e")).toBe("4");
    // items(): DEFAULT's keys first; options(): the section's own keys first.
    expect(p.items("s")).toEqual([
      ["d", "1"],
      ["e", "4"],
      ["x", "3"],
    ]);
    expect(p.options("s")).toEqual(["x", "e", "d"]);
    expect(p.hasOption("s", "D")).toBe(true);
  });

  it("allows [DEFAULT] twice but not the same option twice across it", () => {
    expect(dump(nv("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n[s]\n"))).toEqual({ DEFAULT: { a: "1", b: "2" }, s: {} });
    const e = errorOf(() => nv("[DEFAULT]\na=1\n[DEFAULT]\na=2\n"));
    expect(e.code).toBe("duplicate-option");
    expect(e.message).toBe("While reading from 't.ini' [line  4]: option 'a' in section 'DEFAULT' already exists");
  });

  it("valueless options are null raw, empty through items(), and need allowNoValue", () => {
    const p = nv("[i]\nagent-b\nagent-a = x\n");
    expect(p.get("i", "agent-b")).toBeNull();
    expect(p.items("i")).toEqual([
      ["agent-b", ""],
      ["agent-a", "x"],
    ]);
    expect(p.items("i", { raw: true })[0]).toEqual(["agent-b", null]);
    const e = errorOf(() => parseIni("[a]\nfoo\nbar\n", { source: "t.ini" }));
    expect(e.code).toBe("parsing");
    expect(e.lines).toEqual([2, 3]);
    expect(e.message).toBe("Source contains parsing errors: 't.ini'\n\t[line  2]: 'foo\\n'\n\t[line  3]: 'bar\\n'");
  });
});

describe("INI reader: errors", () => {
  it("duplicate section", () => {
    const e = errorOf(() => nv("[manager]\nx=1\n[manager]\n", "FILE"));
    expect(e.code).toBe("duplicate-section");
    expect(e.line).toBe(3);
    expect(e.message).toBe("While reading from 'FILE' [line  3]: section 'manager' already exists");
  });

  it("duplicate option, compared after lower-casing", () => {
    const e = errorOf(() => nv("[a]\nx=1\nX = 2\n"));
    expect(e.code).toBe("duplicate-option");
    expect(e.line).toBe(3);
    expect(e.message).toBe("While reading from 't.ini' [line  3]: option 'x' in section 'a' already exists");
  });

  it("line numbers of two digits are not padded", () => {
    const e = errorOf(() => nv("[a]\n" + "\n".repeat(10) + "[a]\n"));
    expect(e.message).toBe("While reading from 't.ini' [line 12]: section 'a' already exists");
  });

  it("an option before any section", () => {
    const e = errorOf(() => nv("x = 1\n[a]\n"));
    expect(e.code).toBe("missing-section-header");
    expect(e.line).toBe(1);
    expect(e.message).toBe("File contains no section headers.\nfile: 't.ini', line: 1\n'x = 1\\n'");
  });

  it("an empty option name is a parsing error, reported after the whole file", () => {
    const e = errorOf(() => nv("[a]\n= x\nok\n"));
    expect(e.code).toBe("parsing");
    expect(e.message).toBe("Source contains parsing errors: 't.ini'\n\t[line  2]: '= x\\n'");
    // A second empty name in the same section is a duplicate first.
    expect(errorOf(() => nv("[a]\n= x\nok\n: y\n")).message).toBe(
      "While reading from 't.ini' [line  4]: option '' in section 'a' already exists",
    );
  });

  it("a continuation of a valueless option (Python crashes there)", () => {
    const e = errorOf(() => nv("[a]\nx\n  y\n"));
    expect(e.code).toBe("continuation-without-value");
    expect(e.line).toBe(3);
  });

  it("uses Python's repr for odd characters in lines", () => {
    expect(pyRepr("it's")).toBe(`"it's"`);
    expect(pyRepr(`'"`)).toBe(`'\\'"'`);
    expect(pyRepr("a\tb\x01\u00a0\u2028é")).toBe("'a\\tb\\x01\\xa0\\u2028é'");
  });
});

describe("INI interpolation and typed getters", () => {
  it("expands %(name)s and %% like BasicInterpolation", () => {
    const p = nv("[DEFAULT]\nroot = /opt\n[s]\ndir = %(root)s/zeek\npct = 50%%\n");
    expect(p.get("s", "dir")).toBe("/opt/zeek");
    expect(p.get("s", "pct")).toBe("50%");
    expect(p.get("s", "pct", { raw: true })).toBe("50%%");
  });

  it("reports bad interpolation with Python's messages", () => {
    const p = nv("[s]\na = 50%\nb = %(nope)s\nc = %(c)s\nd = %(x\n");
    expect(errorOf(() => p.get("s", "a")).message).toBe("'%' must be followed by '%' or '(', found: '%'");
    expect(errorOf(() => p.get("s", "b")).message).toBe(
      "Bad value substitution: option 'b' in section 's' contains an interpolation key 'nope' which is not a valid option name. Raw value: '%(nope)s'",
    );
    expect(errorOf(() => p.get("s", "c")).code).toBe("interpolation-depth");
    expect(errorOf(() => p.get("s", "d")).message).toBe("bad interpolation variable reference '%(x'");
  });

  it("set() rejects values that could never be expanded", () => {
    const p = new ConfigParser();
    p.addSection("s");
    const e = errorOf(() => p.set("s", "k", "a%b"));
    expect(e.message).toBe("invalid interpolation syntax in 'a%b' at position 1");
    p.set("s", "k", "a%%b %(x)s");
    expect(p.get("s", "k", { raw: true })).toBe("a%%b %(x)s");
    expect(errorOf(() => p.set("nope", "k", "v")).code).toBe("no-section");
    expect(errorOf(() => p.addSection("DEFAULT")).code).toBe("invalid-section-name");
  });

  it("converts like int(), float() and getboolean()", () => {
    expect(parsePyInt(" 1_000 ")).toBe(1000n);
    expect(parsePyInt("+07")).toBe(7n);
    expect(parsePyInt("٣")).toBe(3n);
    expect(parsePyInt("1__0")).toBeUndefined();
    expect(parsePyInt("1.0")).toBeUndefined();
    expect(parsePyInt("")).toBeUndefined();
    expect(parsePyFloat("1.")).toBe(1);
    expect(parsePyFloat(".5e1")).toBe(5);
    expect(parsePyFloat("-Infinity")).toBe(-Infinity);
    expect(parsePyFloat("1e")).toBeUndefined();
    for (const w of ["1", "yes", "TRUE", "On"]) expect(parsePyBoolean(w)).toBe(true);
    for (const w of ["0", "No", "false", "OFF"]) expect(parsePyBoolean(w)).toBe(false);
    expect(parsePyBoolean("y")).toBeUndefined();
    expect(parsePyBoolean(" true")).toBeUndefined();
    const p = nv("[s]\ni = 12\nf = 1.5\nb = yes\nbad = x\n");
    expect(p.getInt("s", "i")).toBe(12);
    expect(p.getFloat("s", "f")).toBe(1.5);
    expect(p.getBoolean("s", "b")).toBe(true);
    expect(errorOf(() => p.getInt("s", "bad")).message).toBe("invalid literal for int() with base 10: 'x'");
    expect(errorOf(() => p.getBoolean("s", "bad")).message).toBe("Not a boolean: x");
    expect(errorOf(() => p.getInt("s", "missing")).message).toBe("No option 'missing' in section: 's'");
  });
});

describe("INI writer", () => {
  it("writes like configparser.write()", () => {
    const p = new ConfigParser({ allowNoValue: true, interpolation: false });
    p.addSection("b");
    p.set("b", "Key", "multi\nline");
    p.set("b", "bare", null);
    p.set("b", "empty", "");
    p.set("", "d", "1");
    expect(p.write()).toBe("[DEFAULT]\nd = 1\n\n[b]\nkey = multi\n\tline\nbare\nempty = \n\n");
  });

  it("merges a second read into existing sections", () => {
    const p = nv("[a]\nx = 1\n");
    p.readString("[a]\nx = 2\ny = 3\n", "second");
    expect(dump(p)).toEqual({ a: { x: "2", y: "3" } });
  });
});

describe("shlex", () => {
  it("splits like shlex.split in POSIX mode", () => {
    expect(shlexSplit(`site/local.zeek "dir with space/x.zeek"`)).toEqual(["site/local.zeek", "dir with space/x.zeek"]);
    expect(shlexSplit(`FOO=bar BAZ="a b"`)).toEqual(["FOO=bar", "BAZ=a b"]);
    expect(shlexSplit(`a'' '' "" x`)).toEqual(["a", "", "", "x"]);
    expect(shlexSplit(`"a\\"b\\c" 'd\\e' f\\ g # h`)).toEqual(['a"b\\c', "d\\e", "f g", "#", "h"]);
    expect(shlexSplit(" \t\n ")).toEqual([]);
    // Python knows no bash $'...' quoting: the $ stays, the quotes go, the backslash stays.
    expect(shlexSplit(`$'a\\n' $"x"`)).toEqual(["$a\\n", "$x"]);
    // Only ASCII whitespace separates words.
    expect(shlexSplit("a\u00a0b")).toEqual(["a\u00a0b"]);
  });

  it("reports unbalanced quotes and a trailing backslash", () => {
    expect(() => shlexSplit(`a "b`)).toThrow(new ShlexError("no-closing-quotation"));
    expect(() => shlexSplit(`a "b`)).toThrow("No closing quotation");
    expect(() => shlexSplit("a\\")).toThrow("No escaped character");
  });

  it("quotes only values with whitespace between parts", () => {
    expect(quoteIfSpaced("dir with space/x.zeek")).toBe('"dir with space/x.zeek"');
    expect(quoteIfSpaced("a b")).toBe('"a b"');
    expect(quoteIfSpaced("plain")).toBe("plain");
    expect(quoteIfSpaced(" edge")).toBe(" edge");
    expect(pySplitWhitespace(" a\x1cb ")).toEqual(["a", "b"]);
  });
});

describe("INI properties", () => {
  const iniChars = fc.constantFrom("[", "]", "=", ":", "#", ";", " ", "\t", "\n", "\r", "%", "(", ")", "s", "a", "K", "\u00a0", "\\", '"');
  const iniish = fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: iniChars, maxLength: 200 }),
    fc
      .array(fc.constantFrom("[s]\n", "[DEFAULT]\n", "k = v\n", "k\n", "  c\n", "\n", "x = %(k)s\n", "# c\n"), { maxLength: 20 })
      .map((a) => a.join("")),
  );

  it("the reader throws nothing but IniError, whatever the input", () => {
    fc.assert(
      fc.property(iniish, fc.boolean(), (text, allowNoValue) => {
        try {
          const p = parseIni(text, { allowNoValue });
          for (const s of p.sections()) {
            p.options(s);
            p.items(s, { raw: true });
            p.items(s);
          }
          p.write();
        } catch (err) {
          if (!(err instanceof IniError)) throw err;
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("write() output reads back to the same values", () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/);
    const value = fc.oneof(
      fc.constant(null),
      fc.stringMatching(/^([!-~]([ -~]*[!-~])?)?$/).filter((v) => !v.includes("%")),
    );
    const section = fc.uniqueArray(fc.tuple(name, value), { selector: ([k]) => k, maxLength: 5 });
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            name.filter((n) => n !== "default"),
            section,
          ),
          { selector: ([s]) => s, maxLength: 4 },
        ),
        (sections) => {
          const p = new ConfigParser({ allowNoValue: true });
          for (const [s, opts] of sections) {
            p.addSection(s);
            for (const [k, v] of opts) p.set(s, k, v);
          }
          const again = parseIni(p.write(), { allowNoValue: true });
          expect(dump(again)).toEqual(dump(p));
        },
      ),
      { numRuns: 300 },
    );
  });
});
