// Downloads what a conversion needs from a Hugging Face Hub repository into the standard HF cache.
//
// Metadata (commit id, file listing) comes from @huggingface/hub; file data comes from our own loop, because the
// library neither resumes nor survives a cut connection (its stream error can end the process). The loop:
// GET <endpoint>/<repo>/resolve/<commit>/<path>, redirects followed by hand so the token goes only to the endpoint's
// origin (never to the LFS/CDN origin), data appended to blobs/<etag>.incomplete, resumed with `Range: bytes=<n>-`,
// bounded retries with backoff, and the size and hash (sha256 for LFS files, the git blob sha1 otherwise) checked
// before the blob gets its final name. A second run finds every file in the snapshot and requests no data.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { listFiles, modelInfo } from '@huggingface/hub';
import { authHelp, offlineFromEnv, resolveEndpoint, resolveToken } from './auth';
import { COMMIT_RE, defaultCacheDir, invalidRepoId, invalidRepoPath, invalidRevision, RepoCache, sleep } from './cache';

export { resolveToken } from './auth';

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

export interface HubProgress {
  /** The file being fetched (relative path in the repo). */
  file: string;
  /** Bytes of all selected files present so far (cached files count as done), and their total. */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Bytes of `file` present so far, and its size. */
  fileBytesDone: number;
  fileBytesTotal: number;
}

export interface HubOptions {
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: resolveToken() (HF_TOKEN, then the token file). Pass '' to send no token at all. */
  token?: string;
  /** Branch, tag, commit id or `refs/pr/N`. Default: main. */
  revision?: string;
  /** Default: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (p: HubProgress) => void;
  fetch?: typeof fetch;
  /** No network at all: resolve from `refs/` and the snapshot. Default: HF_HUB_OFFLINE. */
  offline?: boolean;
  /** Retries per file after a network error (default 5) and the first backoff delay in ms (default 500, doubling). */
  retries?: number;
  retryDelayMs?: number;
  /** Least time between two onProgress calls within a file (default 100 ms; a file's first and last always come). */
  progressIntervalMs?: number;
}

export interface DownloadedModel {
  repo: string;
  /** The commit id the revision resolved to. */
  revision: string;
  /** The snapshot folder holding the files (links into the cache's blobs). */
  dir: string;
  /** Relative paths of the files in `dir`, sorted. */
  files: string[];
  /** Their total size. */
  bytes: number;
  /** True when no file data had to be fetched. */
  fromCache: boolean;
}

/** A file of the repository as the listing describes it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** The blob name in the cache: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  lfs: boolean;
  /** How the content is checked: the etag is its sha256, its git blob sha1, or (Xet-only entries) size alone. */
  hash: 'sha256' | 'git-sha1' | 'none';
}

export const CONFIG_FILES = ['config.json', 'generation_config.json'] as const;
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
const PICKLE_RE = /\.(bin|pt|pth|ckpt|pkl)$/i;

export interface FileSelection {
  /** The files to fetch (before the index's shards are known). */
  files: string[];
  /** Present when the weights are sharded: the index to read for the shard names. */
  index?: string;
  /** Pickle weights seen (never loaded), for the refusal message. */
  pickle: string[];
}

/**
 * Picks what a conversion needs from a repository's top-level file names: config, generation config, tokenizer
 * files, and the safetensors weights (the index alone when there is one, its shards being added after reading it;
 * else model.safetensors; else every top-level *.safetensors). Files in sub-folders are never needed.
 */
export function selectFiles(paths: readonly string[]): FileSelection {
  const top = new Set(paths.filter((p) => !p.includes('/')));
  const files = [...CONFIG_FILES, ...TOKENIZER_FILES].filter((f) => top.has(f)) as string[];
  const pickle = [...top].filter((p) => PICKLE_RE.test(p)).sort();
  if (top.has(SAFETENSORS_INDEX)) return { files: [...files, SAFETENSORS_INDEX], index: SAFETENSORS_INDEX, pickle };
  if (top.has('model.safetensors')) return { files: [...files, 'model.safetensors'], pickle };
  const st = [...top].filter((p) => p.endsWith('.safetensors')).sort();
  return { files: [...files, ...st], pickle };
}

/** The shard names a `model.safetensors.index.json` lists, checked to be safe relative paths. */
export function shardsFromIndex(text: string, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HubError('unsupported', `${where}: not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) {
    throw new HubError('unsupported', `${where}: has no "weight_map" object naming the safetensors shards`);
  }
  const shards = new Set<string>();
  for (const v of Object.values(map as Record<string, unknown>)) {
    if (typeof v !== 'string' || invalidRepoPath(v) || !v.endsWith('.safetensors')) {
      throw new HubError('unsupported', `${where}: weight_map names an invalid shard ${JSON.stringify(v)}`);
    }
    shards.add(v);
  }
  if (shards.size === 0) throw new HubError('unsupported', `${where}: weight_map is empty`);
  return [...shards].sort();
}

function hasWeights(files: readonly string[]): boolean {
  return files.some((f) => f.endsWith('.safetensors') || f === SAFETENSORS_INDEX);
}

function noWeightsError(repo: string, endpoint: string, revision: string, sel: FileSelection): HubError {
  if (sel.pickle.length > 0) {
    return new HubError(
      'unsupported',
      `${repo}@${revision} has only PyTorch pickle weights (${sel.pickle.slice(0, 4).join(', ')}${
        sel.pickle.length > 4 ? ', …' : ''
      }) and no *.safetensors. Pickle files are never loaded: unpickling can run arbitrary code. ` +
        'Use a revision or repository that has safetensors weights: many repositories have a safetensors ' +
        `conversion pull request (see ${endpoint}/${repo}/discussions), usable as --revision refs/pr/<N>; or convert ` +
        "it yourself with transformers' save_pretrained(..., safe_serialization=True).",
    );
  }
  return new HubError(
    'unsupported',
    `${repo}@${revision} has no *.safetensors weights at its top level; APL Quantizer converts safetensors checkpoints only.`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface Ctx {
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
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** fetch with redirects followed by hand: Authorization only ever goes to the endpoint's origin. */
async function request(ctx: Ctx, url: string, init: RequestInit = {}): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= 10; hop++) {
    const headers = new Headers(init.headers);
    headers.delete('authorization');
    if (ctx.token && new URL(current).origin === ctx.origin) headers.set('Authorization', `Bearer ${ctx.token}`);
    const res = await ctx.fetch(current, { ...init, headers, redirect: 'manual', signal: ctx.signal });
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
function httpError(ctx: Ctx, status: number, errorCode: string | undefined, what: string, revision: string): HubError {
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

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function errText(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return `${err?.message ?? String(e)}${cause ? ` (${cause})` : ''}`;
}

/** Any failure as a HubError: abort → cancelled, file-system errors → io, the rest → network. */
function toHubError(ctx: Ctx, e: unknown, what: string, revision: string): HubError {
  if (ctx.signal?.aborted) return new HubError('cancelled', `${ctx.repo}: download cancelled`, undefined, { cause: e });
  if (e instanceof HubError) return e;
  const err = e as NodeJS.ErrnoException & { statusCode?: number };
  if (typeof err?.statusCode === 'number') {
    // HubApiError from the library: the fetch wrapper kept the X-Error-Code it saw.
    const code = ctx.lastError?.status === err.statusCode ? ctx.lastError.code : undefined;
    return httpError(ctx, err.statusCode, code, what, revision);
  }
  if (err?.syscall && err.path) {
    return new HubError('io', `${err.path}: ${err.code ?? 'error'}: ${err.message}`, undefined, { cause: e });
  }
  if (e instanceof SyntaxError) {
    return new HubError('network', `${ctx.endpoint}: malformed answer (${what}): ${e.message}`, undefined, {
      cause: e,
    });
  }
  return new HubError('network', `${ctx.endpoint}: network error (${what}): ${errText(e)}`, undefined, { cause: e });
}

// ---------------------------------------------------------------------------------------------------------------
// Metadata

async function remoteListing(ctx: Ctx, revision: string): Promise<{ commit: string; files: RemoteFile[] }> {
  const libFetch = ((input: string | URL | Request, init?: RequestInit) =>
    request(
      ctx,
      typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
      init,
    )) as typeof fetch;
  let commit = revision;
  if (!COMMIT_RE.test(revision)) {
    const info = await modelInfo({
      name: ctx.repo,
      revision,
      hubUrl: ctx.endpoint,
      additionalFields: ['sha'],
      fetch: libFetch,
    });
    const sha = (info as { sha?: unknown }).sha;
    if (typeof sha !== 'string' || !COMMIT_RE.test(sha)) {
      throw new HubError('network', `${ctx.endpoint}: the model info of ${ctx.repo}@${revision} has no commit id`);
    }
    commit = sha;
  }
  const files: RemoteFile[] = [];
  for await (const e of listFiles({
    repo: { type: 'model', name: ctx.repo },
    revision: commit,
    recursive: false,
    hubUrl: ctx.endpoint,
    fetch: libFetch,
  })) {
    if (e.type !== 'file' || e.path.includes('/')) continue;
    // Xet-stored files normally list their LFS sha256 too; one that lists only a Xet hash is checked by size.
    const xetOnly = !e.lfs && !!e.xetHash;
    const etag = e.lfs?.oid ?? (xetOnly ? e.xetHash : e.oid);
    const size = e.lfs?.size ?? e.size;
    if (!etag || !/^[0-9a-f]{40,64}$/.test(etag) || !Number.isSafeInteger(size) || size < 0) {
      throw new HubError('network', `${ctx.endpoint}: the listing of ${ctx.repo} describes ${e.path} oddly`);
    }
    const hash = e.lfs ? 'sha256' : xetOnly ? 'none' : 'git-sha1';
    if ((hash === 'sha256' && etag.length !== 64) || (hash === 'git-sha1' && etag.length !== 40)) {
      throw new HubError('network', `${ctx.endpoint}: the listing of ${ctx.repo} gives ${e.path} a malformed hash`);
    }
    files.push({ path: e.path, size, etag, lfs: !!e.lfs, hash });
  }
  return { commit, files };
}

// ---------------------------------------------------------------------------------------------------------------
// Data

/** Hash of a file's content as the Hub names it: sha256 for LFS, git's blob sha1 ("blob <size>\0" + data) otherwise. */
function newHasher(f: RemoteFile): Hash {
  if (f.hash === 'git-sha1') return createHash('sha1').update(`blob ${f.size}\0`);
  return createHash('sha256');
}

async function hashPrefix(h: Hash, path: string, bytes: number): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) h.update(chunk as Buffer);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await fsp.stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

class Restart extends Error {}

async function truncatePart(part: string): Promise<void> {
  await fsp.truncate(part, 0).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/**
 * Brings blobs/<etag> into the cache: resumes blobs/<etag>.incomplete with a Range request, retries network errors
 * with backoff, verifies size and hash, then renames. Cancelling leaves the .incomplete for the next run.
 */
async function fetchBlob(
  ctx: Ctx,
  cache: RepoCache,
  commit: string,
  f: RemoteFile,
  onBytes: (n: number) => void,
): Promise<void> {
  const blob = cache.blobPath(f.etag);
  const part = cache.incompletePath(f.etag);
  const url = `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(commit)}/${f.path
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`;
  let failures = 0;
  let mismatches = 0;
  let hasher: Hash | undefined;
  let hashed = 0;
  for (;;) {
    let have = await fileSize(part);
    if (have > f.size) {
      await truncatePart(part);
      have = 0;
    }
    if (!hasher || hashed !== have) {
      hasher = newHasher(f);
      await hashPrefix(hasher, part, have);
      hashed = have;
    }
    onBytes(have);
    try {
      if (have < f.size) {
        const res = await request(ctx, url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
        if (res.status === 416) {
          await res.body?.cancel().catch(() => {});
          await truncatePart(part);
          throw new Restart(`${f.path}: the server refused the range bytes=${have}-`);
        }
        if (!res.ok) {
          await res.body?.cancel().catch(() => {});
          const err = httpError(ctx, res.status, res.headers.get('x-error-code') ?? undefined, f.path, commit);
          if (isRetryableStatus(res.status)) throw new Restart(err.message);
          throw err;
        }
        if (res.status === 206) {
          const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== have) {
            await res.body?.cancel().catch(() => {});
            await truncatePart(part);
            throw new Restart(`${f.path}: unexpected Content-Range ${res.headers.get('content-range')}`);
          }
        } else if (have > 0) {
          // 200 to a Range request: the server sends the whole file, so start over.
          await truncatePart(part);
          have = 0;
          hasher = newHasher(f);
          hashed = 0;
          onBytes(0);
        }
        if (!res.body) throw new Restart(`${f.path}: empty answer`);
        await fsp.mkdir(dirname(part), { recursive: true });
        const fh = await fsp.open(part, have === 0 ? 'w' : 'a');
        try {
          const reader = res.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (have + value.length > f.size) {
              await reader.cancel().catch(() => {});
              await fh.truncate(0);
              hashed = -1;
              throw new Restart(`${f.path}: the server sent more than the ${f.size} bytes the listing gives`);
            }
            await fh.write(value);
            hasher.update(value);
            have += value.length;
            hashed = have;
            onBytes(have);
          }
        } finally {
          await fh.close();
        }
        if (have !== f.size) throw new Restart(`${f.path}: connection ended after ${have} of ${f.size} bytes`);
      } else if (f.size === 0) {
        await fsp.mkdir(dirname(part), { recursive: true });
        await fsp.writeFile(part, '');
      }
      const digest = hasher.digest('hex');
      hasher = undefined;
      if (f.hash !== 'none' && digest !== f.etag) {
        await fsp.rm(part, { force: true });
        if (++mismatches > 1) {
          throw new HubError(
            'network',
            `${ctx.repo}/${f.path}: the downloaded data does not match the Hub's hash (${f.etag}, got ${digest})`,
          );
        }
        continue;
      }
      await fsp.rename(part, blob);
      return;
    } catch (e) {
      if (ctx.signal?.aborted) throw toHubError(ctx, e, f.path, commit);
      if (e instanceof HubError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err?.syscall && err.path) throw toHubError(ctx, e, f.path, commit);
      if (++failures > ctx.retries) {
        const why = e instanceof Restart ? e.message : errText(e);
        throw new HubError('network', `${ctx.repo}/${f.path}: download failed after ${failures} tries: ${why}`);
      }
      try {
        await sleep(Math.min(ctx.retryDelayMs * 2 ** (failures - 1), 10_000), ctx.signal);
      } catch {
        throw new HubError('cancelled', `${ctx.repo}: download cancelled`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cache only

/** The model from the cache alone (`refs/<revision>` and a complete snapshot), or undefined. */
async function fromCache(repo: string, revision: string, cache: RepoCache): Promise<DownloadedModel | undefined> {
  const commit = await cache.readRef(revision);
  if (!commit) return undefined;
  const present = (await cache.listSnapshot(commit)).filter((p) => !p.includes('/'));
  const sel = selectFiles(present);
  if (!hasWeights(sel.files)) return undefined;
  const files = new Set(sel.files);
  if (sel.index) {
    const text = await fsp.readFile(cache.snapshotPath(commit, sel.index), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    for (const s of shardsFromIndex(text, cache.snapshotPath(commit, sel.index))) files.add(s);
  }
  let bytes = 0;
  for (const p of files) {
    const size = await cache.snapshotFileSize(commit, p);
    if (size === undefined) return undefined;
    bytes += size;
  }
  return { repo, revision: commit, dir: cache.snapshotDir(commit), files: [...files].sort(), bytes, fromCache: true };
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Downloads (or finds in the cache) the files a conversion needs: config.json, generation_config.json, tokenizer
 * files and the safetensors weights (only the shards the index names). Refuses pickle-only repositories. Offline
 * (opts.offline or HF_HUB_OFFLINE), or when the Hub cannot be reached, uses the cache if `refs/` and the snapshot
 * are complete. Throws HubError.
 */
export async function downloadModel(repo: string, opts: HubOptions = {}): Promise<DownloadedModel> {
  const badRepo = invalidRepoId(repo);
  if (badRepo) throw new HubError('not-found', `"${repo}" is not a Hugging Face repository id: ${badRepo}`);
  const revision = opts.revision?.trim() || 'main';
  const badRev = invalidRevision(revision);
  if (badRev) throw new HubError('not-found', `${repo}: invalid revision "${revision}": ${badRev}`);
  let endpoint: string;
  try {
    endpoint = resolveEndpoint(opts.endpoint);
  } catch (e) {
    throw new HubError('network', (e as Error).message);
  }
  const token = opts.token !== undefined ? opts.token.trim() || undefined : resolveToken();
  const cache = new RepoCache(opts.cacheDir ?? defaultCacheDir(), repo);
  const ctx: Ctx = {
    repo,
    endpoint,
    origin: new URL(endpoint).origin,
    token,
    signal: opts.signal,
    fetch: opts.fetch ?? globalThis.fetch,
    retries: opts.retries ?? 5,
    retryDelayMs: opts.retryDelayMs ?? 500,
  };
  const cancelled = () => new HubError('cancelled', `${repo}: download cancelled`);
  if (opts.signal?.aborted) throw cancelled();

  if (opts.offline ?? offlineFromEnv()) {
    const cached = await fromCache(repo, revision, cache);
    if (cached) return cached;
    throw new HubError(
      'network',
      `${repo}@${revision} is not in the cache (${cache.folder}) and offline mode (HF_HUB_OFFLINE) forbids downloading it`,
    );
  }

  let listing: { commit: string; files: RemoteFile[] };
  try {
    listing = await remoteListing(ctx, revision);
  } catch (e) {
    const err = toHubError(ctx, e, 'model info and file listing', revision);
    if (err.code === 'network' && err.status === undefined) {
      const cached = await fromCache(repo, revision, cache);
      if (cached) return cached;
    }
    throw err;
  }
  const { commit } = listing;
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  const sel = selectFiles([...byPath.keys()]);
  if (!hasWeights(sel.files)) throw noWeightsError(repo, endpoint, revision, sel);

  let fetched = false;
  const progress = throttledProgress(opts.onProgress, opts.progressIntervalMs ?? 100);
  const ensure = async (f: RemoteFile, onBytes: (n: number) => void): Promise<void> => {
    if ((await cache.snapshotFileSize(commit, f.path)) === f.size) return;
    if ((await cache.blobSize(f.etag)) !== f.size) {
      onBytes(0);
      const release = await cache.lockBlob(f.etag, ctx.signal);
      try {
        // Another process may have finished this blob while we waited for its lock.
        if ((await cache.blobSize(f.etag)) !== f.size) {
          fetched = true;
          await fetchBlob(ctx, cache, commit, f, onBytes);
        }
      } finally {
        await release();
      }
    }
    await cache.link(commit, f.path, f.etag);
  };

  try {
    const wanted = new Set(sel.files);
    if (sel.index) {
      const idx = byPath.get(sel.index) as RemoteFile;
      await ensure(idx, () => {});
      const where = `${repo}@${commit}/${sel.index}`;
      const text = await fsp.readFile(cache.snapshotPath(commit, sel.index), 'utf8');
      for (const s of shardsFromIndex(text, where)) {
        if (!byPath.has(s)) {
          throw new HubError('not-found', `${where}: names the shard ${s}, which the repository does not have`);
        }
        wanted.add(s);
      }
    }
    const files = [...wanted].sort().map((p) => byPath.get(p) as RemoteFile);
    const bytesTotal = files.reduce((a, f) => a + f.size, 0);
    let doneBefore = 0;
    let filesDone = 0;
    for (const f of files) {
      if (opts.signal?.aborted) throw cancelled();
      const report = (n: number, force = n === 0): void =>
        progress.emit(
          {
            file: f.path,
            bytesDone: doneBefore + n,
            bytesTotal,
            filesDone,
            filesTotal: files.length,
            fileBytesDone: n,
            fileBytesTotal: f.size,
          },
          force,
        );
      await ensure(f, report);
      filesDone++;
      report(f.size, true);
      doneBefore += f.size;
    }
    await cache.writeRef(revision, commit);
    return {
      repo,
      revision: commit,
      dir: cache.snapshotDir(commit),
      files: files.map((f) => f.path),
      bytes: bytesTotal,
      fromCache: !fetched,
    };
  } catch (e) {
    throw toHubError(ctx, e, 'download', commit);
  } finally {
    progress.stop();
  }
}

/**
 * Calls onProgress at most once per `intervalMs` (a file's first and last update always, the latest pending one
 * after the interval), so a multi-GB download does not flood a UI with an update per network chunk. Errors thrown
 * by the callback are ignored: they must not look like network failures.
 */
function throttledProgress(cb: ((p: HubProgress) => void) | undefined, intervalMs: number) {
  let last = 0;
  let lastSent: HubProgress | undefined;
  let pending: HubProgress | undefined;
  let timer: NodeJS.Timeout | undefined;
  const call = (p: HubProgress) => {
    last = Date.now();
    const same =
      lastSent?.file === p.file && lastSent.fileBytesDone === p.fileBytesDone && lastSent.filesDone === p.filesDone;
    lastSent = p;
    if (same) return;
    try {
      cb?.(p);
    } catch {
      // ignored, see above
    }
  };
  return {
    emit(p: HubProgress, force: boolean): void {
      if (!cb) return;
      const now = Date.now();
      if (force || now - last >= intervalMs) {
        clearTimeout(timer);
        timer = undefined;
        pending = undefined;
        call(p);
        return;
      }
      pending = p;
      timer ??= setTimeout(
        () => {
          timer = undefined;
          const q = pending;
          pending = undefined;
          if (q) call(q);
        },
        intervalMs - (now - last),
      );
    },
    stop(): void {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
