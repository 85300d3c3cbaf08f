// Lock files that hold their owner's pid, for work two processes must not do at once on the same files (the
// extension and a CLI run, say): downloading one Hub blob (hub/cache.ts), writing one conversion's outputs
// (convert/outputs.ts). Created with O_EXCL; a lock whose process is gone (killed) is stale and taken over.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type PidLockTry = { release: () => void } | { owner: number };

/**
 * One try at the lock at `path` (its folder must exist): `release` when taken (a stale one taken over), else the
 * pid of the live process that holds it. Synchronous: a few bytes, and the callers need it between two steps.
 */
export function tryPidLock(path: string): PidLockTry {
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return { release: () => rmSync(path, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        // Created but not written (a full disk): no empty lock is left behind.
        try {
          rmSync(path, { force: true });
        } catch {}
        throw e;
      }
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {}
    if (processAlive(owner)) return { owner };
    // Stale (its process is gone, or the file is unreadable or empty): moved aside atomically, then tried again.
    const aside = `${path}.stale-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      renameSync(path, aside);
      rmSync(aside, { force: true });
    } catch {}
  }
}
