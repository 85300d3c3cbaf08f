// HTTP for the Hub client: fetch with redirects followed by hand (the token only ever goes to the endpoint's
// origin), and every failure mapped to a HubError whose message says what to do.

import { oneLine } from '../formats/errors';
import { authHelp } from './auth';
import { HubError } from './errors';

export interface Ctx {
  repo: string;
  endpoint: string;
  origin: string;
  token?: string;
  signal?: AbortSignal;
  fetch: typeof fetch;
  /** The last error answer seen by the fetch wrapper (the library's HubApiError drops the headers). */
  lastError?: { status: number; code?: string; message?: string };
  retries: number;
  retryDelayMs: number;
  /**
   * A server that sends no headers, or no body data, for this long is a stalled connection: dropped and retried or
   * resumed (default STALL_MS, 60 s; 0: never).
   */
  stallMs?: number;
}

export const STALL_MS = 60_000;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * fetch, but no status and headers within `ms` (> 0) aborts it with an error saying so, which callers treat as a
 * network error: a server that takes the connection and never answers would otherwise hold it for undici's headers
 * timeout (5 minutes). ctx.signal still cancels it, before and after the headers. (No AbortSignal.any: the extension
 * host's Node may predate it.)
 */
async function fetchWithin(ctx: Ctx, url: string, init: RequestInit, ms: number): Promise<Response> {
  if (!(ms > 0)) return ctx.fetch(url, { ...init, signal: ctx.signal });
  const ac = new AbortController();
  const outer = ctx.signal;
  if (outer?.aborted) ac.abort(outer.reason);
  else outer?.addEventListener('abort', () => ac.abort(outer.reason), { once: true });
  const timer = setTimeout(() => ac.abort(new Error(`${url}: no answer within ${ms / 1000} s`)), ms);
  try {
    return await ctx.fetch(url, { ...init, signal: ac.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** fetch with redirects followed by hand: Authorization only ever goes to the endpoint's origin. */
export async function request(ctx: Ctx, url: string, init: RequestInit = {}): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= 10; hop++) {
    const headers = new Headers(init.headers);
    headers.delete('authorization');
    if (ctx.token && new URL(current).origin === ctx.origin) headers.set('Authorization', `Bearer ${ctx.token}`);
    const res = await fetchWithin(ctx, current, { ...init, headers, redirect: 'manual' }, ctx.stallMs ?? STALL_MS);
    if (!REDIRECTS.has(res.status)) {
      if (!res.ok && res.status !== 416) {
        ctx.lastError = {
          status: res.status,
          code: res.headers.get('x-error-code') ?? undefined,
          message: res.headers.get('x-error-message') ?? undefined,
        };
      }
      return res;
    }
    const loc = res.headers.get('location');
    await res.body?.cancel().catch(() => {});
    if (!loc) throw new HubError('network', `${current}: redirect (HTTP ${res.status}) without a Location`, res.status);
    current = new URL(loc, current).href;
    if (res.status === 303) init = { ...init, method: 'GET', body: undefined };
  }
  throw new HubError('network', `${url}: too many redirects`);
}

/** An HTTP error answer as a HubError with a message that says what to do. */
export function httpError(
  ctx: Ctx,
  status: number,
  errorCode: string | undefined,
  what: string,
  revision: string,
): HubError {
  const { repo, endpoint } = ctx;
  const gated = errorCode === 'GatedRepo';
  if (status === 401 || status === 403) {
    if (errorCode === 'RepoNotFound' && ctx.token) {
      return new HubError(
        'not-found',
        `${repo}: repository not found on ${endpoint} (or your token cannot see it). Check the id; for a private ` +
          `repository, use a token of an account that can read it. ${authHelp(repo, endpoint, false)}`,
        status,
      );
    }
    let head: string;
    if (!ctx.token) {
      head = gated
        ? `${repo} is a gated model: downloading it needs a Hugging Face token.`
        : `${repo} needs authentication on ${endpoint}: it is private, gated, or does not exist.`;
    } else if (status === 401 && !gated) {
      head = `${repo}: the Hub rejected your token (invalid or expired).`;
    } else if (gated) {
      head = `${repo} is a gated model and your account has not been granted access to it yet.`;
    } else {
      head = `${repo}: your token does not have permission to read this repository (a fine-grained token needs read access to it).`;
    }
    return new HubError('auth', `${head} ${authHelp(repo, endpoint, gated)}`, status);
  }
  if (status === 404) {
    if (errorCode === 'RevisionNotFound') {
      return new HubError('not-found', `${repo}: revision "${revision}" not found (${what})`, status);
    }
    if (errorCode === 'EntryNotFound') {
      return new HubError('not-found', `${repo}@${revision}: file not found (${what})`, status);
    }
    return new HubError('not-found', `${repo}: repository not found on ${endpoint} (${what})`, status);
  }
  return new HubError('network', `${repo}: the Hub answered HTTP ${status} (${what})`, status);
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function errText(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return `${err?.message ?? String(e)}${cause ? ` (${cause})` : ''}`;
}

/** Any failure as a HubError: abort → cancelled, file-system errors → io, the rest → network. */
export function toHubError(ctx: Ctx, e: unknown, what: string, revision: string): HubError {
  if (ctx.signal?.aborted) return new HubError('cancelled', `${ctx.repo}: download cancelled`, undefined, { cause: e });
  if (e instanceof HubError) return e;
  const err = e as NodeJS.ErrnoException & { statusCode?: number };
  if (typeof err?.statusCode === 'number') {
    // HubApiError from the library: the fetch wrapper kept the X-Error-Code it saw.
    const code = ctx.lastError?.status === err.statusCode ? ctx.lastError.code : undefined;
    return httpError(ctx, err.statusCode, code, what, revision);
  }
  if (err?.syscall && err.path) {
    return new HubError('io', oneLine(`${err.path}: ${err.code ?? 'error'}: ${err.message}`), undefined, { cause: e });
  }
  if (e instanceof SyntaxError) {
    // JSON.parse quotes the start of the body, which may hold line breaks and control characters
    return new HubError('network', oneLine(`${ctx.endpoint}: malformed answer (${what}): ${e.message}`), undefined, {
      cause: e,
    });
  }
  const msg = oneLine(`${ctx.endpoint}: network error (${what}): ${errText(e)}`);
  return new HubError('network', msg, undefined, { cause: e });
}
