import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatNumber } from '../../../server/src/common/format';
import { errThreshold, filterWeights, layerHeatMap, sortWeights } from '../../../server/src/common/report-view';
import { normalizeReport, parseWeightName } from '../../../server/src/report/read';

const sample = {
  model: 'tiny-llama',
  bits: 4,
  group_size: 64,
  backend: 'cpu-avx2',
  seconds: 1.5,
  sizes: { source_bytes: 4096, output_bytes: 1024, bits_per_weight: 4.5 },
  tolerance: 0.1,
  weights: [
    { name: 'model.layers.10.self_attn.q_proj.weight', bits: 4, rel_error: 0.08, snr_db: 21, cosine: 0.99, pass: true },
    { name: 'model.layers.2.self_attn.q_proj.weight', bits: 4, rel_error: 0.12, snr_db: 18, cosine: 0.98, pass: false },
    { name: 'model.layers.2.mlp.down_proj.weight', bits: 4, rel_error: 0.05, pass: true },
    { name: 'model.embed_tokens.weight', bits: 8, rel_error: 0.01, pass: true },
    { name: 'lm_head.weight', bits: 8, rel_error: 'oops', pass: true },
    { bits: 4 },
  ],
};

test('normalizeReport keeps known fields, drops wrong types and says what it skipped', () => {
  const r = normalizeReport(sample);
  assert.equal(r.model, 'tiny-llama');
  assert.equal(r.bits, 4);
  assert.equal(r.group_size, 64);
  assert.equal(r.source_bytes, 4096);
  assert.equal(r.bits_per_weight, 4.5);
  assert.equal(r.pass, false, 'derived from the weights when the report has no verdict');
  assert.equal(r.weights.length, 5);
  assert.equal(r.weights[4].rel_error, null);
  assert.match(r.warnings.join('\n'), /weights\[5\]/);
});

test('normalizeReport tolerates anything', () => {
  for (const raw of [null, 42, 'x', [], {}, { weights: 'no' }, { sizes: null, pass: 'yes' }]) {
    const r = normalizeReport(raw);
    assert.equal(typeof r.model, 'string');
    assert.deepEqual(r.weights, []);
    assert.equal(r.pass, null);
  }
  assert.equal(normalizeReport({ pass: true, weights: [] }).pass, true);
});

test('parseWeightName finds layer and projection across naming schemes', () => {
  assert.deepEqual(parseWeightName('model.layers.3.mlp.gate_proj.weight'), { layer: 3, projection: 'gate_proj' });
  assert.deepEqual(parseWeightName('transformer.h.11.attn.c_attn.weight'), { layer: 11, projection: 'c_attn' });
  assert.deepEqual(parseWeightName('model_layers_0_self_attn_o_proj_weight'), { layer: 0, projection: 'o_proj' });
  assert.deepEqual(parseWeightName('model.norm.weight'), { layer: null, projection: null });
});

test('layerHeatMap orders layers numerically and projections canonically', () => {
  const hm = layerHeatMap(normalizeReport(sample).weights)!;
  assert.deepEqual(hm.layers, [2, 10]);
  assert.deepEqual(hm.projections, ['q_proj', 'down_proj']);
  assert.deepEqual(hm.cells, [
    [0.12, 0.05],
    [0.08, null],
  ]);
  assert.equal(hm.names[1][0], 'model.layers.10.self_attn.q_proj.weight');
  assert.equal(hm.max, 0.12);
  assert.equal(layerHeatMap(normalizeReport({ weights: [{ name: 'lm_head.weight' }] }).weights), null);
});

test('sortWeights: natural names, numbers with nulls last in both directions', () => {
  const w = normalizeReport(sample).weights;
  const byName = sortWeights(w, 'name').map((x) => x.name);
  assert.ok(
    byName.indexOf('model.layers.2.self_attn.q_proj.weight') <
      byName.indexOf('model.layers.10.self_attn.q_proj.weight'),
  );
  const asc = sortWeights(w, 'rel_error').map((x) => x.rel_error);
  assert.deepEqual(asc, [0.01, 0.05, 0.08, 0.12, null]);
  const desc = sortWeights(w, 'rel_error', true).map((x) => x.rel_error);
  assert.deepEqual(desc, [0.12, 0.08, 0.05, 0.01, null]);
  assert.equal(sortWeights(w, 'pass')[0].pass, false);
});

test('filterWeights: words, verdicts, bits, layer and error bounds', () => {
  const w = normalizeReport(sample).weights;
  assert.deepEqual(
    filterWeights(w, 'Q_PROJ').map((x) => x.layer),
    [10, 2],
  );
  assert.equal(filterWeights(w, 'fail').length, 1);
  assert.equal(filterWeights(w, 'bits:8').length, 2);
  assert.equal(filterWeights(w, 'layer:2 mlp').length, 1);
  assert.deepEqual(
    filterWeights(w, 'err>0.07').map((x) => x.rel_error),
    [0.08, 0.12],
  );
  assert.equal(filterWeights(w, '   ').length, w.length);
  // Percent as the table shows it (issue 15 item 8); the old fraction form still works below 1.
  for (const q of ['err>7', 'err>7%', 'err>7.0', 'err>0.07']) {
    assert.deepEqual(
      filterWeights(w, q).map((x) => x.rel_error),
      [0.08, 0.12],
      q,
    );
  }
  assert.deepEqual(
    filterWeights(w, 'err<8.5 err>6').map((x) => x.rel_error),
    [0.08],
  );
  assert.ok(Math.abs((errThreshold('8.35') ?? 0) - 0.0835) < 1e-15);
  assert.ok(Math.abs((errThreshold('8.35%') ?? 0) - 0.0835) < 1e-15);
  assert.ok(Math.abs((errThreshold('0.5%') ?? 0) - 0.005) < 1e-15);
  assert.equal(errThreshold('0.1'), 0.1);
  assert.equal(errThreshold('x'), null);
  assert.equal(filterWeights(w, 'err>x').length, 0, 'not a number: a name word');
});

test('formatters', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(3.5 * 1024 ** 3), '3.50 GiB');
  assert.equal(formatBytes(null), '—');
  assert.equal(formatNumber(0.123456), '0.1235');
  assert.equal(formatNumber(1e-7), '1.000e-7');
  assert.equal(formatNumber(Number.NaN), 'NaN');
});

test('normalizeReport reads the converter shape: tolerance table by bits, per-weight tolerance and layer', () => {
  const r = normalizeReport({
    model: 'tiny',
    bits: 4,
    tolerance: { 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 },
    sizes: { source_bytes: 10, output_bytes: 5, bits_per_weight: 4.5, params: 1234 },
    weights: [
      { name: 'model.embed_tokens.weight', bits: 8, rel_error: 0.01, pass: true, layer: null },
      { name: 'blk.q_proj.weight', bits: 4, rel_error: 0.05, tolerance: 0.07, layer: 3, pass: true },
    ],
  });
  assert.equal(r.tolerance, 0.1);
  assert.deepEqual(r.tolerances, { 1: 0.5, 2: 0.2, 4: 0.1, 8: 0.02 });
  assert.equal(r.params, 1234);
  assert.equal(r.weights[0].tolerance, 0.02, 'from the table at the weight’s own bit width');
  assert.equal(r.weights[1].tolerance, 0.07, 'the weight’s own tolerance wins');
  assert.equal(r.weights[1].layer, 3, 'the report’s layer wins over the name');
  assert.equal(r.weights[1].projection, 'q_proj');
});
