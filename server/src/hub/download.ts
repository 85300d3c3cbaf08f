// Downloads what a conversion needs from a Hugging Face Hub repository into the standard HF cache.
//
// Metadata (commit id, file listing) comes from @huggingface/hub; file data comes from our own loop, because the
// library neither resumes nor survives a cut connection (its stream error can end the process). The loop:
// GET <endpoint>/<repo>/resolve/<commit>/<path>, redirects followed by hand so the token goes only to the endpoint's
// origin (never to the LFS/CDN origin), data appended to blobs/<etag>.incomplete, resumed with `Range: bytes=<n>-`,
// bounded retries with backoff, and the size and hash (sha256 for LFS files, the git blob sha1 otherwise) checked
// before the blob gets its final name. A second run finds every file in the snapshot and requests no data.
import { promises as fsp } from 'node:fs';
import { type RemoteFile, remoteListing } from './api';
import { offlineFromEnv, resolveEndpoint, resolveToken } from './auth';
import { defaultCacheDir, invalidRepoId, invalidRevision, RepoCache } from './cache';
import { HubError } from './errors';
import { hasWeights, noWeightsError, selectFiles, shardsFromIndex } from './files';
import { type Ctx, toHubError } from './http';
import { type HubProgress, throttledProgress } from './progress';
import { fetchBlob } from './resume';

export type { HubProgress } from './progress';

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
  /** No body data for this long drops the connection, a network error that is resumed (default 60 s; 0: never). */
  stallMs?: number;
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
    stallMs: opts.stallMs,
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
