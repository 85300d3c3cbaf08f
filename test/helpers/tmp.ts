// Temporary folders for tests and benches that are removed when the process ends.
//
// `tempDir(prefix)` = mkdtempSync under os.tmpdir() (so TMPDIR is honoured) plus removal when the process exits:
// node's test runner runs each test file in its own process, so "process exit" = "the test file finished" — after
// every test, hook and awaited child process of the file is done. Removal also runs on SIGINT/SIGTERM/SIGHUP (a
// bench stopped early, a test file killed on timeout), after which the signal is re-raised so the process still
// dies of it. Removal is force/recursive, so a test that removes its folder itself as well is fine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooked = false;

/** Removes every folder made by tempDir so far (safe to call more than once). */
export function removeTempDirs(): void {
  for (const d of live) {
    try {
      rmSync(d, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort at exit: a folder we cannot remove must not turn a passing run into a failing one
    }
    live.delete(d);
  }
}

function onSignal(sig: NodeJS.Signals): void {
  removeTempDirs();
  // Re-raise so the process ends as it would have without us — unless someone else also handles the signal.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeTempDirs);
  for (const s of SIGNALS) process.once(s, onSignal);
}

/** A fresh folder `<os.tmpdir()>/<prefix>XXXXXX`, removed (recursively) when this process exits or is signalled. */
export function tempDir(prefix: string): string {
  hook();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  live.add(dir);
  return dir;
}
