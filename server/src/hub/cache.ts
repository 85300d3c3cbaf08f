// The Hugging Face cache layout, shared with Python tools:
//   <cache>/models--<org>--<name>/blobs/<etag>                 file contents, named by their hash
//   <cache>/models--<org>--<name>/blobs/<etag>.incomplete      a download in progress (resumed from its size)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<path>     relative symlink to ../../blobs/<etag>
//   <cache>/models--<org>--<name>/refs/<revision>              the commit the revision pointed at
// A blob appears under its final name only after its size and hash were checked, and a snapshot link is made only
// to such a blob, so a killed download never leaves a wrong file where a reader would take it.
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, posix, relative } from 'node:path';
import { mkdirpSync } from '../formats/mkdirp';
import { tryPidLock } from '../formats/pid-lock';

type Env = Record<string, string | undefined>;

export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/… */
export function defaultCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** Why `repo` is not a valid Hub model id, or undefined when it is one (`name` or `org/name`). */
export function invalidRepoId(repo: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)?$/.test(repo)) {
    return 'expected "org/name" made of letters, digits, "-", "_" and "."';
  }
  if (repo.includes('..') || repo.includes('--')) return 'it must not contain ".." or "--"';
  if (repo.length > 96 * 2 + 1) return 'it is too long';
  return undefined;
}

/** Why `p` is not a safe relative path inside a repository, or undefined when it is one. */
export function invalidRepoPath(p: string): string | undefined {
  if (!p || p.length > 1024) return 'empty or too long';
  if (p.includes('\\') || p.includes('\0')) return 'contains a backslash or NUL';
  if (p.startsWith('/')) return 'is absolute';
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'has an empty, "." or ".." segment';
  return undefined;
}

/** Why `rev` cannot name a revision folder safely, or undefined. Branches like `refs/pr/3` are allowed. */
export function invalidRevision(rev: string): string | undefined {
  if (!rev || rev.length > 256) return 'empty or too long';
  const bad = invalidRepoPath(rev);
  return bad ? `it ${bad}` : undefined;
}

export class RepoCache {
  /** The repository's folder: `<cache>/models--<org>--<name>`. */
  readonly folder: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    this.folder = join(cacheDir, `models--${repo.split('/').join('--')}`);
  }

  blobPath(etag: string): string {
    return join(this.folder, 'blobs', etag);
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    return join(this.folder, 'snapshots', commit);
  }

  snapshotPath(commit: string, relPath: string): string {
    return join(this.snapshotDir(commit), ...relPath.split('/'));
  }

  /** The commit a revision resolves to from the cache alone: a commit id is itself; otherwise `refs/<revision>`. */
  async readRef(revision: string): Promise<string | undefined> {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const text = (await fsp.readFile(join(this.folder, 'refs', ...revision.split('/')), 'utf8')).trim();
      return COMMIT_RE.test(text) ? text : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records `refs/<revision>` = commit (atomically), unless the revision is the commit itself. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const p = join(this.folder, 'refs', ...revision.split('/'));
    mkdirpSync(dirname(p));
    await writeFileAtomic(p, commit);
  }

  /** Size of the complete blob, or undefined when it is absent. */
  async blobSize(etag: string): Promise<number | undefined> {
    try {
      const st = await fsp.stat(this.blobPath(etag));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Size of the file a snapshot entry leads to (following the link), or undefined when the entry is missing or
   * dangling.
   */
  async snapshotFileSize(commit: string, relPath: string): Promise<number | undefined> {
    try {
      const st = await fsp.stat(this.snapshotPath(commit, relPath));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Points `snapshots/<commit>/<relPath>` at `blobs/<etag>` with a relative symlink (replacing any old entry
   * atomically). Where symlinks are not allowed (some Windows setups), copies the blob instead, like Python does.
   */
  async link(commit: string, relPath: string, etag: string): Promise<string> {
    const dest = this.snapshotPath(commit, relPath);
    mkdirpSync(dirname(dest));
    const target = relative(dirname(dest), this.blobPath(etag)).split('\\').join(posix.sep);
    const tmp = `${dest}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      await fsp.symlink(target, tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      await fsp.copyFile(this.blobPath(etag), tmp);
    }
    try {
      await fsp.rename(tmp, dest);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return dest;
  }

  /** The lock file for one blob: `<cache>/.locks/models--<org>--<name>/<etag>.apl-lock` (holds the owner's pid). */
  lockPath(etag: string): string {
    return join(this.cacheDir, '.locks', basename(this.folder), `${etag}.apl-lock`);
  }

  /**
   * Takes the lock for downloading one blob, so two processes (say the extension and a CLI run) never append to the
   * same `.incomplete`. A lock whose owner process is gone (killed) is taken over. While a live process holds it,
   * waits (polling every `pollMs`) until it is released or `signal` aborts. Resolves to the release function.
   */
  async lockBlob(etag: string, signal?: AbortSignal, pollMs = 250): Promise<() => Promise<void>> {
    const path = this.lockPath(etag);
    mkdirpSync(dirname(path));
    for (;;) {
      signal?.throwIfAborted();
      const got = tryPidLock(path);
      if ('release' in got) return async () => got.release();
      await sleep(pollMs, signal);
    }
  }

  /** The files of a cached snapshot (relative paths with "/"), or [] when there is none. */
  async listSnapshot(commit: string): Promise<string[]> {
    const root = this.snapshotDir(commit);
    const out: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const rel = prefix ? `${prefix}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(join(dir, e.name), rel);
        else if (!e.name.includes('.tmp-')) out.push(rel);
      }
    };
    await walk(root, '');
    return out.sort();
  }
}

/** Writes a small file atomically: a temporary file beside it, then a rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
