// zip64-large.test.ts under the suite's rules, run in a child: opt-in (skipped, saying so, without APL_SLOW_TESTS=1)
// and, when opted in under CI=true, a missing numpy fails at once (python3 is a stand-in that cannot import numpy).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';

const file = join(__dirname, 'zip64-large.test.ts');

function run(env: Record<string, string>, noNumpy: boolean) {
  const bin = mkdtempSync(join(tmpdir(), 'apl-nonumpy-'));
  try {
    writeFileSync(join(bin, 'python3'), '#!/bin/sh\necho "ModuleNotFoundError: No module named numpy" >&2\nexit 1\n');
    chmodSync(join(bin, 'python3'), 0o755);
    const base = { ...process.env };
    for (const k of ['CI', 'APL_SLOW_TESTS', 'NODE_TEST_CONTEXT']) delete base[k];
    if (noNumpy) base.PATH = `${bin}${delimiter}${base.PATH ?? ''}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], {
      encoding: 'utf8',
      env: { ...base, ...env },
      timeout: 60_000,
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

test('without APL_SLOW_TESTS the >4 GiB case is skipped and the output says it is opt-in', () => {
  const r = run({}, false);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /# SKIPPED: ZIP64 over 4 GiB: opt-in, set APL_SLOW_TESTS=1/);
  assert.match(r.out, /# SKIP opt-in/);
});

test('opted in under CI=true without numpy it fails before writing anything', () => {
  const r = run({ CI: 'true', APL_SLOW_TESTS: '1' }, true);
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /CI=true: python3 \+ numpy are needed/);
});
