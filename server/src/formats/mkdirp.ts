// mkdir -p without Node's `recursive: true`, which never returns where mkdir answers ENOENT although the parent exists
// (any path under /proc on Linux, Node 20: it creates the parent, gets EEXIST, retries the child, gets ENOENT, …).
// Here each missing folder is made once, from the deepest existing ancestor down, and the first refusal is thrown.
// Synchronous only: a few mkdir calls, also from async code (the Hub cache), with no second copy to keep in step.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The folders to make, outermost first: `dir` and its ancestors up to the first one that exists. */
function missing(dir: string, exists: (p: string) => boolean): string[] {
  const out: string[] = [];
  for (let p = resolve(dir); !exists(p); p = dirname(p)) {
    out.unshift(p);
    if (dirname(p) === p) break; // the root itself missing: let mkdir say why
  }
  return out;
}

/** Whether p exists (anything: a file there makes the mkdir below fail with EEXIST / ENOTDIR, as it should). */
function existsSyncAny(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Throws unless p is a folder (after an EEXIST: another process made it, or it is a file). */
function mustBeFolder(p: string, e: unknown): void {
  let dir = false;
  try {
    dir = statSync(p).isDirectory();
  } catch {}
  if (!dir) throw e;
}

export function mkdirpSync(dir: string): void {
  for (const p of missing(dir, existsSyncAny)) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      mustBeFolder(p, e);
    }
  }
}
