// The Hub client's one error type: every failure of the Hub path is a HubError with a stable code.

export type HubErrorCode = 'auth' | 'not-found' | 'unsupported' | 'network' | 'cancelled' | 'io';

/** Every failure of the Hub path; `code` is stable (tests and callers branch on it), the message says what to do. */
export class HubError extends Error {
  override readonly name = 'HubError';
  constructor(
    readonly code: HubErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
