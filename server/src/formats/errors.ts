// Errors for malformed or hostile model files. The message always starts with the file's name, so a CLI can print
// it as one line and a user knows which file is at fault.

export class FormatError extends Error {
  override readonly name = 'FormatError';
  /** The file (or source name) at fault. */
  readonly file: string;
  /** The problem alone, without the file name. */
  readonly problem: string;

  constructor(file: string, problem: string) {
    super(oneLine(`${file}: ${problem}`));
    this.file = file;
    this.problem = problem;
  }
}

/**
 * The message as one line: line breaks and other control characters (which a JSON parser's excerpt of a hostile
 * file, or a hostile name, can carry) are shown escaped.
 */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Wraps a non-FormatError (I/O, zlib) into a FormatError naming the file; FormatErrors pass through. */
export function asFormatError(file: string, e: unknown, what = ''): FormatError {
  if (e instanceof FormatError) return e;
  const msg = (e as Error)?.message ?? String(e);
  return new FormatError(file, what ? `${what}: ${msg}` : msg);
}
