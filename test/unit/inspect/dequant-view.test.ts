// The inspector's dequantized view agrees with the native engine's own dequantize() for archives laid out as the
// converter writes them (member names from memberNames, float16 scales and zero points), for every bit width.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dequantize, quantize } from '../../../native/index';
import { type BitWidth, groupsPerRow, memberNames, packedRowBytes } from '../../../server/src/formats/manifest';
import { NpzWriter } from '../../../server/src/formats/npz';
import { InspectorSession } from '../../../server/src/inspect/session';

test('dequantized pages match native dequantize() at 1, 2, 4 and 8 bits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'apl-agree-'));
  const rows = 12;
  const cols = 40; // groups of 16 leave a partial last group
  const groupSize = 16;
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.37) * (1 + (i % 7) / 3);
  const npzPath = join(dir, 'agree_quantized_q4.npz');
  const npz = await NpzWriter.create(npzPath);
  const expected = new Map<number, Float32Array>();
  const weights = [];
  for (const bits of [1, 2, 4, 8] as BitWidth[]) {
    const name = `model.layers.0.mlp.b${bits}.weight`;
    const params = { bits, groupSize, symmetric: false, mode: 'minmax' as const, scaleDtype: 'f16' as const };
    const r = await quantize({ ...params, data: new Uint8Array(w.buffer), dtype: 'f32', rows, cols });
    expected.set(bits, dequantize({ ...params, q: r.q, scales: r.scales, zeros: r.zeros, rows, cols }));
    const m = memberNames(name, bits);
    const groups = groupsPerRow(cols, groupSize);
    await npz.addArray(m.q, { dtype: 'uint8', shape: [rows, packedRowBytes(cols, bits)] }, [r.q]);
    await npz.addArray(m.q_scales!, { dtype: 'float16', shape: [rows, groups] }, [r.scales]);
    await npz.addArray(m.q_zero_point!, { dtype: 'float16', shape: [rows, groups] }, [r.zeros]);
    weights.push({
      name,
      shape: [rows, cols],
      bit_width: bits,
      ...m,
      quantization: {
        type: 'groupwise_int',
        bits,
        method: 'asymmetric',
        group_size: groupSize,
        scale_dtype: 'float16',
      },
      source: { tensor: name, dtype: 'F32' },
    });
  }
  await npz.close();
  writeFileSync(
    join(dir, 'agree_manifest_q4.json'),
    JSON.stringify({
      format_version: '2',
      model: { name: 'agree', family: 'llama' },
      weights,
      metadata: { npz: 'agree_quantized_q4.npz', created_by: 'test' },
    }),
  );
  const s = await InspectorSession.open(npzPath);
  try {
    for (const bits of [1, 2, 4, 8]) {
      const q = memberNames(`model.layers.0.mlp.b${bits}.weight`, bits).q;
      const want = expected.get(bits)!;
      const page = await s.page(q, 'dequant', 0, rows, 0, cols);
      assert.equal(page.values.length, rows * cols);
      for (let i = 0; i < want.length; i++) {
        assert.ok(
          Math.abs((page.values[i] as number) - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])),
          `${bits} bits at ${i}`,
        );
      }
      const t = await s.tensor(q);
      assert.equal(t.dequant?.bits, bits);
      const mean = want.reduce((a, b) => a + b, 0) / want.length;
      assert.ok(Math.abs(t.dequant!.stats.mean - mean) < 1e-6);
    }
  } finally {
    await s.close();
  }
});
