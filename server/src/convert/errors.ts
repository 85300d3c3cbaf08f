// The converter's one error type: a message that names the file or model and the problem, and a stable code
// (ConvertErrorCode in protocol.ts) that the CLI's --json-progress mode and the extension act on.
import type { ConvertErrorCode } from '../protocol';

export class ConvertError extends Error {
  constructor(
    readonly code: ConvertErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConvertError';
  }
}

/** Maps any error to a ConvertErrorCode: ours, the hub's (same codes), Node's I/O errors, aborts. */
export function errorCode(e: unknown): ConvertErrorCode {
  if (e instanceof ConvertError) return e.code;
  const err = e as { code?: unknown; name?: string } | null;
  if (err?.name === 'AbortError') return 'cancelled';
  const code = typeof err?.code === 'string' ? err.code : undefined;
  if (!code) return err?.name === 'FormatError' ? 'invalid-input' : 'internal';
  if (['auth', 'not-found', 'unsupported', 'network', 'exists', 'io', 'invalid-input', 'cancelled'].includes(code)) {
    return code as ConvertErrorCode;
  }
  if (code === 'ABORT_ERR') return 'cancelled';
  if (/^E[A-Z]+$/.test(code)) return 'io';
  return 'internal';
}
