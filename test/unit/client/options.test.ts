import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addonProbeScript, backendLabel, gpuUnusable, parseEngineInfo } from '../../../client/src/backendInfo';
import {
  type ConvertRequest,
  checkRequest,
  cliArgs,
  estimateOutputBytes,
  expandFolder,
  expandWorkspaceFolder,
  groupSizeFromSetting,
  requestFields,
  requestFormat,
  requestFromOptions,
} from '../../../client/src/convert/options';

const req: ConvertRequest = {
  model: 'tinyllama',
  bits: 4,
  groupSize: 64,
  symmetric: false,
  backend: 'auto',
  outDir: '/w/models',
};

test('cliArgs: the apl-quant convert command line', () => {
  assert.deepEqual(cliArgs(req), [
    'convert',
    'tinyllama',
    '--bits',
    '4',
    '--group-size',
    '64',
    '--asymmetric',
    '--backend',
    'auto',
    '--out',
    '/w/models',
    '--json-progress',
  ]);
  const more = cliArgs({ ...req, groupSize: 'row', symmetric: true, force: true, revision: 'abc' });
  assert.ok(more.includes('--symmetric') && !more.includes('--asymmetric'));
  assert.deepEqual(more.slice(4, 6), ['--group-size', 'row']);
  assert.deepEqual(more.slice(-3), ['--revision', 'abc', '--force']);
  const kq = cliArgs({ ...req, format: 'kquant' });
  assert.deepEqual(kq.slice(0, 6), ['convert', 'tinyllama', '--bits', '4', '--format', 'kquant']);
  assert.ok(!kq.includes('--group-size') && !kq.includes('--asymmetric'), 'kquant has fixed groups');
  assert.match(checkRequest({ ...req, bits: 8, format: 'kquant' }) ?? '', /kquant: bits must be 2 or 4/);
  // apl.convert.eval / evalText (issue 12): --eval, with --eval-text when a text is set.
  assert.deepEqual(cliArgs({ ...req, eval: true }).slice(-1), ['--eval']);
  assert.deepEqual(cliArgs({ ...req, eval: true, evalText: '/w/t.txt' }).slice(-3), [
    '--eval',
    '--eval-text',
    '/w/t.txt',
  ]);
  assert.ok(!cliArgs({ ...req, eval: false, evalText: '/w/t.txt' }).includes('--eval'));
});

test('checkRequest names the bad field', () => {
  assert.equal(checkRequest(req), undefined);
  assert.match(checkRequest({ ...req, bits: 3 as never }) ?? '', /^bits/);
  assert.match(checkRequest({ ...req, groupSize: 0 }) ?? '', /^groupSize/);
  assert.match(checkRequest({ ...req, groupSize: 1.5 }) ?? '', /^groupSize/);
  assert.match(checkRequest({ ...req, backend: 'tpu' as never }) ?? '', /^backend/);
  assert.match(checkRequest({ ...req, model: ' ' }) ?? '', /^model/);
  assert.match(checkRequest({ ...req, outDir: '' }) ?? '', /^outDir/);
  assert.match(checkRequest({ ...req, symmetric: 'yes' as never }) ?? '', /^symmetric/);
});

test('estimateOutputBytes: packed bits plus 32 bits of metadata per group', () => {
  // 1.1e9 weights at 4 bits, groups of 64: 0.55 GB + 1.1e9/64*4 bytes = 0.61875 GB
  assert.equal(estimateOutputBytes(1.1e9, 4, 64), 550_000_000 + 68_750_000);
  assert.equal(estimateOutputBytes(4096, 8, 'row', 4096), 4096 + 4);
  assert.ok(estimateOutputBytes(1e6, 1, 64) < estimateOutputBytes(1e6, 2, 64));
});

test('groupSizeFromSetting and expandFolder', () => {
  const ws = ['$', '{workspaceFolder}'].join('');
  assert.equal(groupSizeFromSetting(0), 'row');
  assert.equal(groupSizeFromSetting(128), 128);
  assert.equal(groupSizeFromSetting(-3), 64);
  assert.equal(expandFolder('', '/ws', '/home/u'), '/ws/models');
  assert.equal(expandFolder('', undefined, '/home/u'), undefined);
  assert.equal(expandFolder(`${ws}/out`, '/ws', '/home/u'), '/ws/out');
  assert.equal(expandFolder(`${ws}/out`, undefined, '/home/u'), undefined);
  assert.equal(expandFolder('~/q', '/ws', '/home/u'), '/home/u/q');
  assert.equal(expandFolder('/abs', '/ws', '/home/u'), '/abs');
  assert.equal(expandWorkspaceFolder(`${ws}/../m`, '/w/s'), '/w/s/../m');
  assert.equal(expandWorkspaceFolder(`${ws}/m`, undefined), `${ws}/m`);
});

test('engine info → status bar label', () => {
  const cpu = parseEngineInfo(
    JSON.stringify({ native: true, simd: 'avx2', threads: 2, gpu: { available: false, reason: 'no CUDA device' } }),
  );
  assert.ok(cpu);
  assert.equal(backendLabel('auto', cpu).text, 'APL: CPU avx2');
  assert.equal(backendLabel('gpu', cpu).warning, true);
  assert.match(backendLabel('gpu', cpu).tooltip, /no CUDA device/);
  const gpu = parseEngineInfo(
    JSON.stringify({ engine: { native: true, simd: 'avx512', threads: 16, gpu: { available: true, name: 'H100' } } }),
  );
  assert.equal(backendLabel('auto', gpu).text, 'APL: CUDA H100');
  assert.equal(backendLabel('cpu', gpu).text, 'APL: CPU avx512');
  const ref = parseEngineInfo(
    JSON.stringify({ native: false, reason: 'no addon', simd: 'none', threads: 1, gpu: { available: false } }),
  );
  assert.equal(backendLabel('auto', ref).text, 'APL: CPU (TypeScript reference)');
  assert.equal(backendLabel('auto', ref).warning, true);
  assert.equal(parseEngineInfo('not json'), undefined);
  assert.equal(parseEngineInfo('{"simd":1}'), undefined);
  assert.equal(backendLabel('cpu', undefined).text, 'APL: cpu');
});

test('the addon probe prints the addon engine info, or the reference info with the reason', async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'apl-probe-'));
  try {
    const none = parseEngineInfo(
      execFileSync(process.execPath, ['-e', addonProbeScript([join(dir, 'missing.node')])], { encoding: 'utf8' }),
    );
    assert.equal(none?.native, false);
    assert.match(none?.reason ?? '', /not built/);
    const fake = join(dir, 'fake.js');
    writeFileSync(
      fake,
      "exports.engineInfo = () => ({ native: true, simd: 'avx2', threads: 8, gpu: { available: false } });",
    );
    const bad = join(dir, 'bad.js');
    writeFileSync(bad, 'throw new Error("wrong ELF class")');
    const found = parseEngineInfo(
      execFileSync(process.execPath, ['-e', addonProbeScript([bad, fake])], { encoding: 'utf8' }),
    );
    assert.equal(backendLabel('auto', found).text, 'APL: CPU avx2');
    const failed = parseEngineInfo(
      execFileSync(process.execPath, ['-e', addonProbeScript([bad])], { encoding: 'utf8' }),
    );
    assert.match(failed?.reason ?? '', /failed to load: wrong ELF class/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gpu chosen with no usable GPU: the reason, so the command offers auto; otherwise nothing (issue 15)', () => {
  const noGpu = { native: true, simd: 'avx2', threads: 2, gpu: { available: false, reason: 'no CUDA device' } };
  const gpu = { native: true, simd: 'avx2', threads: 2, gpu: { available: true, name: 'H200' } };
  assert.equal(gpuUnusable('gpu', noGpu), 'no CUDA device');
  assert.equal(gpuUnusable('gpu', gpu), undefined);
  assert.equal(gpuUnusable('auto', noGpu), undefined);
  assert.equal(gpuUnusable('gpu', undefined), undefined);
});

test('requestFields: the defaults as request fields; no format, an empty tolerance left out, eval only when on', () => {
  const d = {
    bits: 4 as const,
    groupSize: 'row' as const,
    symmetric: true,
    format: 'kquant' as const,
    backend: 'cpu' as const,
    outDir: '/w/out',
    lastModel: 'tinyllama',
    mode: 'minmax' as const,
    embeddingsBits: 8 as const,
    tolerance: '',
    eval: false,
    evalText: '/w/t.txt',
  };
  assert.deepEqual(requestFields(d), {
    bits: 4,
    groupSize: 'row',
    symmetric: true,
    backend: 'cpu',
    outDir: '/w/out',
    mode: 'minmax',
    embeddingsBits: 8,
    tolerance: undefined,
  });
  const on = requestFields({ ...d, tolerance: 'mean=2', eval: true });
  assert.equal(on.tolerance, 'mean=2');
  assert.equal(on.eval, true);
  assert.equal(on.evalText, '/w/t.txt');
});

test('requestFromOptions: apl.convert.format reaches an options request unless it names a format or a groupwise field', () => {
  const d = {
    bits: 4 as const,
    groupSize: 64,
    symmetric: false,
    format: 'kquant' as const,
    backend: 'auto' as const,
    outDir: '/w/out',
    tolerance: '',
    eval: false,
  };
  assert.deepEqual(requestFormat('kquant', 2), { format: 'kquant' });
  assert.deepEqual(requestFormat('kquant', 8), {}, 'kquant has no 8-bit layout');
  assert.deepEqual(requestFormat('groupwise', 4), {});
  // Before, the explorer and an options object dropped the setting: a groupwise command line at 4 bits.
  const plain = requestFromOptions(d, { model: 'm', bits: 4 });
  assert.equal(plain.format, 'kquant');
  assert.ok(cliArgs(plain as ConvertRequest).includes('--format'));
  assert.equal(requestFromOptions(d, { model: 'm', bits: 8 }).format, undefined);
  assert.equal(
    requestFromOptions(d, { model: 'm', bits: 4, groupSize: 32 }).format,
    undefined,
    'groupSize asks groupwise',
  );
  assert.equal(requestFromOptions(d, { model: 'm', bits: 2, symmetric: true }).format, undefined);
  assert.equal(requestFromOptions(d, { model: 'm', bits: 4, format: 'groupwise' }).format, 'groupwise');
  assert.equal(requestFromOptions({ ...d, format: 'groupwise' }, { model: 'm' }).format, undefined);
  assert.equal(requestFromOptions(d, { model: 'm' }).format, 'kquant', "the defaults' bits (4)");
  assert.equal(requestFromOptions(d, { model: 'm', outDir: '/x' }).outDir, '/x', 'the object wins');
});
