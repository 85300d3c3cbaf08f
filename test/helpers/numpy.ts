// Runs python3 + numpy snippets for interop tests. When numpy is missing, tests that need it fail loudly under
// CI=true and are skipped with a plain warning otherwise.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

let cached: { ok: boolean; why: string } | undefined;

/** Whether `python3 -c "import numpy"` works here (cached). */
export function numpyStatus(): { ok: boolean; why: string } {
  if (!cached) {
    const r = spawnSync('python3', ['-c', 'import numpy, sys; print(numpy.__version__)'], { encoding: 'utf8' });
    cached =
      r.status === 0
        ? { ok: true, why: `numpy ${r.stdout.trim()}` }
        : {
            ok: false,
            why: r.error
              ? `python3 not runnable (${r.error.message})`
              : `numpy not importable: ${r.stderr.trim().split('\n').pop()}`,
          };
  }
  return cached;
}

/**
 * Call at the start of a test that needs numpy. Returns true when numpy is there. Otherwise: under CI=true it throws
 * (the test fails); elsewhere it prints a loud warning and skips the test.
 */
export function requireNumpy(t: TestContext): boolean {
  const s = numpyStatus();
  if (s.ok) return true;
  const msg = `python3 + numpy are needed for this interop test and are missing here: ${s.why}. Install them (apt-get install python3-numpy).`;
  if (process.env.CI === 'true') throw new Error(`CI=true: ${msg}`);
  process.stderr.write(`\n*** WARNING: SKIPPING numpy interop test '${t.name}': ${msg}\n`);
  t.skip(msg);
  return false;
}

/**
 * Runs a python3 snippet (numpy imported as np, sys and json available) with `args` in sys.argv[1:]; returns
 * stdout. `opts.input` goes to stdin (for data too big for argv). Throws with python's stderr on failure.
 */
export function runPython(
  code: string,
  args: string[] = [],
  opts: { cwd?: string; timeoutMs?: number; input?: string | Uint8Array } = {},
): string {
  const prelude = 'import sys, json, os, zipfile, hashlib\nimport numpy as np\n';
  const r = spawnSync('python3', ['-c', prelude + code, ...args], {
    encoding: 'utf8',
    cwd: opts.cwd,
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`python3 failed to run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`python3 exited with ${r.status}:\n${r.stderr}`);
  return r.stdout;
}
