// The parity suite run without the addon (APL_NO_NATIVE=1 stands in for a missing or unloadable .node file): under
// CI=true or APL_REQUIRE_NATIVE=1 it fails; elsewhere it skips and says so.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const parity = join(__dirname, 'parity.test.ts');

function runParity(env: Record<string, string>) {
  const base = { ...process.env };
  delete base.CI;
  delete base.APL_REQUIRE_NATIVE;
  delete base.NODE_TEST_CONTEXT; // a fresh runner, not a subtest of this one
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', parity], {
    encoding: 'utf8',
    env: { ...base, APL_NO_NATIVE: '1', APL_QUIET_NATIVE: '1', ...env },
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const cases: Record<string, string>[] = [
  { CI: 'true', APL_REQUIRE_NATIVE: '1' },
  { CI: 'true' },
  { APL_REQUIRE_NATIVE: '1' },
];
for (const env of cases) {
  test(`without the addon the parity suite fails under ${Object.keys(env).join(' + ')}`, () => {
    const r = runParity(env);
    assert.notEqual(r.status, 0, r.out);
    assert.match(r.out, /not ok \d+ - the native addon loads/);
    assert.match(r.out, /APL_NO_NATIVE=1 is set/);
  });
}

test('without the addon and outside CI the parity suite is skipped, saying so', () => {
  const r = runParity({});
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /# SKIPPED: native addon not loaded/);
  assert.doesNotMatch(r.out, /^not ok/m);
});
