// The inspector's dequantized view of archives laid out as the converter writes them (member names from memberNames,
// float16 scales and zero points), for every bit width, equals docs/FORMAT.md's numpy dequantize worked out here
// independently — (q − zero) · scale with both operations rounded to float32, q unpacked low bits first — exactly,
// and its statistics are those values' statistics. (The inspector calls the engine's dequantize: one implementation.)
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { f16ToF32 } from '../../../native/dtypes';
import { quantize } from '../../../native/index';
import { type BitWidth, groupsPerRow, memberNames, packedRowBytes } from '../../../server/src/formats/manifest';
import { NpzWriter } from '../../../server/src/formats/npz';
import { InspectorSession } from '../../../server/src/inspect/session';
import { tempDir } from '../../helpers/tmp';

/** docs/FORMAT.md's dequantize in float32, element by element (f16 scales and zeros). */
function formatDequantize(
  q: Uint8Array,
  scales: Uint8Array,
  zeros: Uint8Array,
  rows: number,
  cols: number,
  bits: number,
  groupSize: number,
): Float32Array {
  const fr = Math.fround;
  const out = new Float32Array(rows * cols);
  const rowBytes = packedRowBytes(cols, bits);
  const groups = groupsPerRow(cols, groupSize);
  const half = (b: Uint8Array, i: number) => f16ToF32(b[2 * i] | (b[2 * i + 1] << 8));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const bit = c * bits;
      const v = (q[r * rowBytes + (bit >> 3)] >> (bit & 7)) & ((1 << bits) - 1);
      const g = r * groups + Math.floor(c / groupSize);
      out[r * cols + c] = fr(fr(v - half(zeros, g)) * half(scales, g));
    }
  }
  return out;
}

test("dequantized pages equal the format's float32 dequantize at 1, 2, 4 and 8 bits", async () => {
  const dir = tempDir('apl-agree-');
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
    expected.set(bits, formatDequantize(r.q, r.scales, r.zeros, rows, cols, bits, groupSize));
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
      assert.deepEqual(page.values, Array.from(want), `${bits} bits`);
      const cut = await s.page(q, 'dequant', 3, 2, 17, 9);
      const wantCut: number[] = [];
      for (let r = 3; r < 5; r++) for (let c = 17; c < 26; c++) wantCut.push(want[r * cols + c]);
      assert.deepEqual(cut.values, wantCut, `${bits} bits, a page inside the grid`);
      const t = await s.tensor(q);
      assert.equal(t.dequant?.bits, bits);
      const mean = want.reduce((a, b) => a + b, 0) / want.length;
      assert.ok(Math.abs(t.dequant!.stats.mean - mean) <= 1e-12 * Math.max(1, Math.abs(mean)));
      assert.equal(t.dequant!.stats.min, Math.min(...want));
      assert.equal(t.dequant!.stats.max, Math.max(...want));
      // The q member's own figures are of its unpacked codes (low bits first), not of the packed bytes.
      const qp = await s.page(q, 'raw', 0, rows, 0, packedRowBytes(cols, bits));
      const codes: number[] = [];
      const rowBytes = packedRowBytes(cols, bits);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const b = qp.values[r * rowBytes + ((c * bits) >> 3)] as number;
          codes.push((b >> ((c * bits) & 7)) & ((1 << bits) - 1));
        }
      assert.deepEqual((await s.page(q, 'codes', 0, rows, 0, cols)).values, codes, `${bits}-bit codes`);
      assert.ok(t.codes, 'a q member has codes');
      assert.deepEqual([t.codes.rows, t.codes.cols, t.codes.bits], [rows, cols, bits]);
      assert.equal(t.codes.stats.max, Math.max(...codes));
      assert.equal(t.codes.stats.min, Math.min(...codes));
      assert.ok(t.codes.stats.max <= 2 ** bits - 1);
      assert.equal(
        t.codes.histogram.counts.reduce((a, b) => a + b, 0),
        rows * cols,
      );
      assert.ok(t.codes.histogram.counts.length <= 2 ** bits);
    }
  } finally {
    await s.close();
  }
});
