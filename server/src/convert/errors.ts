// The converter's one error type: a message that names the file or model and the problem, and a stable code
// (ConvertErrorCode in protocol.ts) that the CLI's --json-progress mode and the extension act on.
import { ERR_SCALE_OVERFLOW } from '../../../native/index';
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

/** The one error a cancelled conversion ends with. */
export function cancelledError(): ConvertError {
  return new ConvertError('cancelled', 'conversion cancelled; no output was written');
}

export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw cancelledError();
}

/** A file-system failure as an io error naming what was being done (ENOSPC: disk full, ...); ours pass through. */
export function ioError(e: unknown, what: string): ConvertError {
  if (e instanceof ConvertError) return e;
  const err = e as NodeJS.ErrnoException;
  const why =
    err?.code === 'ENOSPC'
      ? 'disk full (ENOSPC)'
      : err?.code === 'ENOTDIR'
        ? 'a part of the path is a file, not a folder (ENOTDIR)'
        : err?.code === 'EACCES' || err?.code === 'EPERM'
          ? `permission denied (${err.code})`
          : err?.code === 'EROFS'
            ? 'read-only file system (EROFS)'
            : (err?.message ?? String(e));
  return new ConvertError('io', `${what}: ${why}`);
}

/** The engine refused the data (NaN/Inf, range): an invalid-input error naming the file; cancellation stays that. */
export function inputError(e: unknown, file: string, signal?: AbortSignal): unknown {
  if (signal?.aborted || errorCode(e) === 'cancelled') return e;
  return new ConvertError('invalid-input', `${file}: ${(e as Error)?.message ?? String(e)}`);
}

/** The code the native engine gives an error whose scales do not fit float16 (native/index.ts and the addon). */
export const SCALE_OVERFLOW_CODE = ERR_SCALE_OVERFLOW;

/**
 * True when the engine refused a tensor because its scales overflow float16 (the converter then retries with f32
 * scales). The error's `code` is authoritative; the message test ("... use scaleDtype 'f32'") covers an engine
 * that does not set the code yet and gives the same answer for every error such an engine raises.
 */
export function isScaleOverflow(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (err?.code === SCALE_OVERFLOW_CODE) return true;
  return /scaleDtype 'f32'/.test(String(err?.message));
}
