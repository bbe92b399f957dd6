// configparser's BasicInterpolation: `%(name)s` refers to another option of the same section
// (or DEFAULT), `%%` is a literal percent sign; anything else after `%` is an error.

import type { IniValue } from "./ini.js";
import { IniError } from "./ini-error.js";
import { optionxform, pyRepr } from "./py-text.js";

const INTERPOLATION_KEY = /^%\(([^)]+)\)s/;
const INTERPOLATION_KEY_GLOBAL = /%\(([^)]+)\)s/g;
const MAX_INTERPOLATION_DEPTH = 10;

/** The expanded form of `value`, the option `option` of `section` whose options are `map`. */
export function interpolate(section: string, option: string, value: string, map: Map<string, IniValue>): string {
  const rawval = map.get(option) ?? value;
  const parts: string[] = [];
  const expand = (rest: string, depth: number): void => {
    if (depth > MAX_INTERPOLATION_DEPTH) {
      throw new IniError(
        "interpolation-depth",
        `Recursion limit exceeded in value substitution: option ${pyRepr(option)} in section ${pyRepr(section)} contains an interpolation key which cannot be substituted in ${MAX_INTERPOLATION_DEPTH} steps. Raw value: ${pyRepr(rawval)}`,
        { section, option },
      );
    }
    while (rest) {
      const p = rest.indexOf("%");
      if (p < 0) {
        parts.push(rest);
        return;
      }
      if (p > 0) {
        parts.push(rest.slice(0, p));
        rest = rest.slice(p);
      }
      const c = rest.slice(1, 2);
      if (c === "%") {
        parts.push("%");
        rest = rest.slice(2);
      } else if (c === "(") {
        const m = INTERPOLATION_KEY.exec(rest);
        if (m === null) {
          throw new IniError("interpolation-syntax", `bad interpolation variable reference ${pyRepr(rest)}`, {
            section,
            option,
          });
        }
        const ref = optionxform(m[1]!);
        rest = rest.slice(m[0].length);
        if (!map.has(ref)) {
          throw new IniError(
            "interpolation-missing-option",
            `Bad value substitution: option ${pyRepr(option)} in section ${pyRepr(section)} contains an interpolation key ${pyRepr(ref)} which is not a valid option name. Raw value: ${pyRepr(rawval)}`,
            { section, option },
          );
        }
        const v = map.get(ref) ?? null;
        if (v === null) {
          // Python fails with a TypeError here.
          throw new IniError(
            "interpolation-no-value",
            `option ${pyRepr(option)} in section ${pyRepr(section)} refers to ${pyRepr(ref)}, which has no value`,
            { section, option },
          );
        }
        if (v.includes("%")) expand(v, depth + 1);
        else parts.push(v);
      } else {
        throw new IniError("interpolation-syntax", `'%' must be followed by '%' or '(', found: ${pyRepr(rest)}`, { section, option });
      }
    }
  };
  expand(value, 1);
  return parts.join("");
}

/** Rejects a value that could never be expanded, as set() does with interpolation on. */
export function checkInterpolationSyntax(section: string, option: string, value: string): void {
  const residue = value.replace(/%%/g, "").replace(INTERPOLATION_KEY_GLOBAL, "");
  const at = residue.indexOf("%");
  if (at >= 0) {
    throw new IniError("interpolation-syntax", `invalid interpolation syntax in ${pyRepr(value)} at position ${at}`, {
      section,
      option,
    });
  }
}
