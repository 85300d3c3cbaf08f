// One blob into the cache, resumable: data appended to blobs/<etag>.incomplete, resumed with `Range: bytes=<n>-`,
// bounded retries with backoff, size and hash (sha256 for LFS files, the git blob sha1 otherwise) checked before
// the blob gets its final name.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirpSync } from '../formats/mkdirp';
import type { RemoteFile } from './api';
import { type RepoCache, sleep } from './cache';
import { HubError } from './errors';
import { type Ctx, errText, httpError, isRetryableStatus, request, STALL_MS, toHubError } from './http';

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

/**
 * The next chunk of a body, or a Restart when none comes within `ms`: a connection the server holds open without
 * sending would otherwise wait for undici's own body timeout (5 minutes), with no progress to show. The reader is
 * cancelled, so its pending read settles and the socket is freed.
 */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
  path: string,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Restart(`${path}: no data for ${ms / 1000} s (a stalled connection)`)), ms);
  });
  const next = reader.read();
  try {
    return await Promise.race([next, stalled]);
  } catch (e) {
    if (e instanceof Restart) {
      next.catch(() => {});
      await reader.cancel().catch(() => {});
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function truncatePart(part: string): Promise<void> {
  await fsp.truncate(part, 0).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/**
 * Brings blobs/<etag> into the cache: resumes blobs/<etag>.incomplete with a Range request, retries network errors
 * with backoff, verifies size and hash, then renames. Cancelling leaves the .incomplete for the next run.
 */
export async function fetchBlob(
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
        mkdirpSync(dirname(part));
        const fh = await fsp.open(part, have === 0 ? 'w' : 'a');
        try {
          const reader = res.body.getReader();
          for (;;) {
            const stallMs = ctx.stallMs ?? STALL_MS;
            const { done, value } = stallMs > 0 ? await readWithin(reader, stallMs, f.path) : await reader.read();
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
        mkdirpSync(dirname(part));
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
