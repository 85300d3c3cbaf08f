import assert from 'node:assert/strict';
import { test } from 'node:test';
import { layerAggregates } from '../../../server/src/convert/accuracy';
import { parseTolerances } from '../../../server/src/convert/options';
import { DEFAULT_TOLERANCES, judge, type WeightReport } from '../../../server/src/report';
import { formatSummary } from '../../../server/src/report/summary';

const w = (name: string, layer: number | null, rel: number, out = rel, bits: 4 | 8 = 4): WeightReport => ({
  name,
  bits,
  group_size: 64,
  shape: [4, 64],
  params: 256,
  layer,
  rel_error: rel,
  snr_db: -20 * Math.log10(rel),
  cosine: 0.99,
  max_abs_error: 0.01,
  output_rel_error: out,
  tolerance: DEFAULT_TOLERANCES[bits],
  pass: judge(rel, out, DEFAULT_TOLERANCES[bits]),
});

test('tolerances: the guide defaults, overrides as fractions or percents, bad specs refused', () => {
  assert.deepEqual(DEFAULT_TOLERANCES, { 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 });
  assert.deepEqual(parseTolerances('4=0.08, 8=1%'), { 1: 0.5, 2: 0.2, 4: 0.08, 8: 0.01 });
  assert.throws(() => parseTolerances('3=0.1'), /BITS=VALUE/);
  assert.throws(() => parseTolerances('4=0'), /must be positive/);
});

test('judge: both errors within tolerance; NaN never passes', () => {
  assert.equal(judge(0.09, 0.1, 0.1), true);
  assert.equal(judge(0.1, 0.1, 0.1), true); // at the tolerance is within it
  assert.equal(judge(0.09, 0.11, 0.1), false);
  assert.equal(judge(Number.NaN, 0, 0.1), false);
  assert.equal(judge(0, Number.NaN, 0.1), false);
  assert.equal(judge(0, Number.POSITIVE_INFINITY, 0.1), false);
});

test('judge: a weight error over tolerance fails even when the output error is within it', () => {
  assert.equal(judge(0.11, 0.05, 0.1), false);
  assert.equal(judge(0.100001, 0.1, 0.1), false);
  assert.equal(judge(Number.POSITIVE_INFINITY, 0, 0.1), false);
  // Only finite errors pass, even ones that compare below the tolerance.
  assert.equal(judge(Number.NEGATIVE_INFINITY, 0, 0.1), false);
  assert.equal(judge(0, Number.NEGATIVE_INFINITY, 0.1), false);
});

test('tolerances: no spec keeps the base; each part must be exactly BITS=VALUE', () => {
  const base = { 1: 0.4, 2: 0.3, 4: 0.2, 8: 0.1 };
  assert.deepEqual(parseTolerances(undefined, base), base);
  assert.deepEqual(parseTolerances('', base), base);
  assert.deepEqual(parseTolerances(' 4 = 5% ,, 2=1e-1 ', base), { ...base, 4: 0.05, 2: 0.1 });
  assert.deepEqual(parseTolerances('8=2.5e-3'), { ...DEFAULT_TOLERANCES, 8: 0.0025 });
  assert.deepEqual(parseTolerances('8=25e12'), { ...DEFAULT_TOLERANCES, 8: 25e12 });
  for (const bad of ['x4=0.1', '4=0.1x', '4x=0.1', '4=1ex', '4=0.1%%'])
    assert.throws(() => parseTolerances(bad), /BITS=VALUE/, bad);
});

test('layer aggregates weigh each weight by ‖W‖²', () => {
  const ws = [w('a', 0, 0.1), w('b', 0, 0.2, 0.25), w('c', 1, 0.05), w('emb', null, 0.01, 0.01, 8)];
  const sums = new Map([
    ['a', { refSq: 3 }],
    ['b', { refSq: 1 }],
    ['c', { refSq: 2 }],
  ]);
  const layers = layerAggregates(ws, sums);
  assert.equal(layers.length, 2);
  assert.ok(Math.abs(layers[0].rel_error - Math.sqrt((3 * 0.01 + 1 * 0.04) / 4)) < 1e-12);
  assert.equal(layers[0].max_output_rel_error, 0.25);
  assert.equal(layers[0].pass, false);
  assert.equal(layers[1].pass, true);
  assert.equal(layers[1].params, 256);
});

test('layer aggregates: sorted by layer; a weight with no sums or no norm counts as 0; max over the layer', () => {
  const ws = [w('b', 3, 0.3, 0.05), w('a', 1, 0.1), w('c', 3, 0.02, 0.4), w('z', 2, 0.5)];
  const layers = layerAggregates(ws, new Map([['b', { refSq: 0 }]]));
  assert.deepEqual(
    layers.map((l) => l.layer),
    [1, 2, 3],
  );
  const l3 = layers[2];
  assert.equal(l3.weights, 2);
  assert.equal(l3.rel_error, 0, 'no ‖W‖² to weigh by: 0, not NaN');
  assert.equal(l3.max_rel_error, 0.3);
  assert.equal(l3.max_output_rel_error, 0.4);
  assert.equal(l3.pass, false);
  assert.equal(layers[0].pass, true);
});

test('the summary names failures and the verdict', () => {
  const ws = [w('a', 0, 0.05), w('b', 0, 0.15)];
  const report: Parameters<typeof formatSummary>[0] = {
    model: 'm',
    source: '/x',
    revision: null,
    bits: 4,
    group_size: 64,
    symmetric: false,
    mode: 'optimized',
    embeddings_bits: 8,
    tool_version: '0',
    backend: 'cpu',
    seconds: 1,
    sizes: { source_bytes: 2e6, output_bytes: 5e5, bits_per_weight: 4.5, params: 1e6 },
    tolerance: { ...DEFAULT_TOLERANCES },
    evaluation: { inputs: 4, min_outputs: 1, max_inputs: 1, rows: '', seed: 1, metric: '' },
    pass: false,
    verdict_basis: '',
    summary: { weights: 2, passed: 1, failed: 1, kept_float: 0, worst: 'b' },
    weights: ws,
    layers: [],
  };
  const paths = { npz: 'o.npz', manifest: 'o.json', report: 'r.json' };
  const text = formatSummary(report, paths);
  assert.match(text, /^model m \(\/x\), 4 bits, group 64, optimized, backend cpu$/m);
  const pinned = formatSummary({ ...report, revision: '0123456789abcdef0123' }, paths);
  assert.match(pinned, /^model m \(\/x @ 0123456789ab\), 4 bits/m);
  const lines = text.split('\n');
  assert.match(lines[0], /^weight {2}bits {2}rel err {2}out err {2}SNR dB {5}tol\s*$/);
  assert.match(lines[1], /^------ {2}---- {2}------- {2}------- {2}------ {2}------ {2}----$/);
  assert.match(text, /^a\s+4\s+5\.00%\s+5\.00%\s+26\.0\s+10\.00%\s+ok$/m);
  assert.match(text, /^b\s+4\s+15\.00%.*FAIL$/m);
  assert.match(text, /1\/2 weights within tolerance → FAIL \(worst: b\)/);
  // A failed verdict says what to try instead (issue 15).
  assert.match(text, /Some weights are over the tolerance\. Try a smaller group size \(--group-size 32\)/);
  // One unit system (binary, shared/format.ts) and one bits-per-weight figure, two decimals (issue 15).
  assert.match(text, /1\.91 MiB → 488 KiB \(4\.50 bits\/weight, 4\.00x smaller\)/);
});
