// The error every INI operation throws, with a stable code per configparser exception class
// and the place in the input it concerns.

export type IniErrorCode =
  | "missing-section-header"
  | "duplicate-section"
  | "duplicate-option"
  | "parsing"
  | "continuation-without-value"
  | "interpolation-syntax"
  | "interpolation-missing-option"
  | "interpolation-depth"
  | "interpolation-no-value"
  | "invalid-section-name"
  | "no-section"
  | "no-option"
  | "invalid-value";

export interface IniErrorDetails {
  source?: string;
  /** 1-based line numbers; a parsing error collects every bad line of the input. */
  lines?: number[];
  section?: string;
  option?: string;
}

export class IniError extends Error {
  readonly code: IniErrorCode;
  readonly source: string | undefined;
  /** First offending line (1-based), when the error comes from reading text. */
  readonly line: number | undefined;
  readonly lines: number[];
  readonly section: string | undefined;
  readonly option: string | undefined;

  constructor(code: IniErrorCode, message: string, details: IniErrorDetails = {}) {
    super(message);
    this.name = "IniError";
    this.code = code;
    this.source = details.source;
    this.lines = details.lines ?? [];
    this.line = this.lines[0];
    this.section = details.section;
    this.option = details.option;
  }
}
