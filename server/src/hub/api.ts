// Repository metadata through @huggingface/hub: the commit a revision resolves to and the top-level file listing.
import { listFiles, modelInfo } from '@huggingface/hub';
import { oneLine } from '../formats/errors';
import { COMMIT_RE, invalidRepoPath } from './cache';
import { HubError } from './errors';
import { type Ctx, request } from './http';

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

export async function remoteListing(ctx: Ctx, revision: string): Promise<{ commit: string; files: RemoteFile[] }> {
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
    // The listing is the server's word: a path that is not a plain relative name is refused, not trusted.
    if (typeof e.path !== 'string' || invalidRepoPath(e.path)) {
      const shown = oneLine(JSON.stringify(e.path) ?? String(e.path)).slice(0, 80);
      throw new HubError(
        'network',
        `${ctx.endpoint}: the listing of ${ctx.repo} names a file ${shown}, not a valid path`,
      );
    }
    if (e.type !== 'file' || e.path.includes('/')) continue;
    // Xet-stored files normally list their LFS sha256 too; one that lists only a Xet hash is checked by size.
    const xetOnly = !e.lfs && !!e.xetHash;
    const etag = e.lfs?.oid ?? (xetOnly ? e.xetHash : e.oid);
    const size = e.lfs?.size ?? e.size;
    if (typeof etag !== 'string' || !/^[0-9a-f]{40,64}$/.test(etag) || !Number.isSafeInteger(size) || size < 0) {
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
