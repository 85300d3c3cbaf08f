// test/native/run.sh itself: a copy of it run against stand-in test programs (no compiler, no addon), so that a
// failing pass of the C++ program, the forced-scalar one included, makes the script fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const script = join(__dirname, '../../native/run.sh');

/**
 * Runs a copy of run.sh whose test program is `body` (a bash script) and whose inference test program is `infer`
 * (passing by default); the JavaScript tests are skipped.
 */
function runWith(body: string, infer = 'exit 0') {
  const root = mkdtempSync(join(tmpdir(), 'apl-runsh-'));
  try {
    mkdirSync(join(root, 'test/native'), { recursive: true });
    mkdirSync(join(root, 'native/build/test'), { recursive: true });
    copyFileSync(script, join(root, 'test/native/run.sh'));
    const bin = join(root, 'native/build/test/test_kernels');
    // Written after the copy of run.sh, so the script finds it up to date and does not try to build it.
    writeFileSync(bin, `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(bin, 0o755);
    const kquant = join(root, 'native/build/test/test_kquant'); // the two-level-scale program: a passing stand-in
    writeFileSync(kquant, '#!/usr/bin/env bash\nexit 0\n');
    chmodSync(kquant, 0o755);
    const attention = join(root, 'native/build/test/test_attention'); // the attention program: a passing stand-in
    writeFileSync(attention, '#!/usr/bin/env bash\nexit 0\n');
    chmodSync(attention, 0o755);
    const huge = join(root, 'native/build/test/test_hugepages'); // the huge-page advice program: a passing stand-in
    writeFileSync(huge, '#!/usr/bin/env bash\nexit 0\n');
    chmodSync(huge, 0o755);
    const gpu = join(root, 'native/build/test/test_gpu'); // the CUDA inference program: a passing stand-in, written last
    writeFileSync(gpu, '#!/usr/bin/env bash\nexit 0\n');
    chmodSync(gpu, 0o755);
    const inferBin = join(root, 'native/build/test/test_infer'); // the inference kernel program, written with test_gpu
    writeFileSync(inferBin, `#!/usr/bin/env bash\n${infer}\n`);
    chmodSync(inferBin, 0o755);
    const r = spawnSync('bash', [join(root, 'test/native/run.sh')], {
      encoding: 'utf8',
      env: { ...process.env, APL_SKIP_JS_TESTS: '1', APL_FORCE_SCALAR: '' },
      timeout: 30_000,
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('run.sh passes when both passes of the C++ program pass', () => {
  const r = runWith('echo "pass (APL_FORCE_SCALAR=$APL_FORCE_SCALAR)"; exit 0');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /forced-scalar run passed/);
});

test('run.sh fails when the forced-scalar pass fails, and shows its output', () => {
  const r = runWith('if [ "$APL_FORCE_SCALAR" = 1 ]; then echo "scalar check broke"; exit 1; fi; exit 0');
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /scalar check broke/);
  assert.match(r.out, /forced-scalar run \(APL_FORCE_SCALAR=1\) FAILED/);
  assert.doesNotMatch(r.out, /forced-scalar run passed/);
});

test('run.sh fails when the first pass fails', () => {
  const r = runWith('if [ "$APL_FORCE_SCALAR" = 1 ]; then exit 0; fi; exit 1');
  assert.notEqual(r.status, 0, r.out);
});

test('run.sh passes no flag the program does not read', () => {
  const r = runWith('for a in "$@"; do echo "unknown flag $a"; exit 1; done; exit 0');
  assert.equal(r.status, 0, r.out);
});

test('run.sh runs test_infer forced scalar (and fails when that run fails, naming it and showing its output)', () => {
  const ok = runWith('exit 0', 'echo "inference variants: kernel $APL_EXPECT_KERNEL"; echo "1 checks, 0 failures"');
  assert.equal(ok.status, 0, ok.out);
  assert.match(
    ok.out,
    /test_infer passed \(APL_FORCE_SCALAR=1\): inference variants: kernel scalar 1 checks, 0 failures/,
  );
  const r = runWith('exit 0', 'if [ "$APL_FORCE_SCALAR" = 1 ]; then echo "infer broke"; exit 1; fi; exit 0');
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /infer broke/);
  assert.match(r.out, /test_infer FAILED \(APL_FORCE_SCALAR=1, expected kernel scalar\)/);
});
