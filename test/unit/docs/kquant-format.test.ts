// docs/FORMAT.md's numpy dequantize_kquant is the promise of the two-level-scale layout: run with python3 + numpy on
// the engine's arrays for a few shapes and formats, it must give exactly the engine's dequantized values.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as kq from '../../../native/kquant';
import { requireNumpy, runPython } from '../../helpers/numpy';
import { studentT4 } from '../../helpers/random';
import { root, tempDir } from '../convert/helpers';

function snippet(): string {
  const md = readFileSync(join(root, 'docs/FORMAT.md'), 'utf8');
  const block = [...md.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1])[0];
  assert.ok(block?.includes('def dequantize_kquant'), 'docs/FORMAT.md has dequantize_kquant in its first python block');
  return block;
}

const RUN = `
_d = sys.argv[1]
_m = json.load(open(os.path.join(_d, 'meta.json')))
_rows, _cols = _m['rows'], _m['cols']
_ld = lambda n, dt: np.fromfile(os.path.join(_d, n), dtype=dt)
_q = _ld('q.bin', np.uint8).reshape(_rows, -1)
_c = _ld('codes.bin', np.uint8).reshape(_rows, -1)
_dd = _ld('d.bin', '<f2').reshape(_rows, -1)
_dm = _ld('dmin.bin', '<f2').reshape(_rows, -1)
_w = dequantize_kquant(_q, _c, _dd, _dm, _m['shape'], _m['quantization'])
_ref = _ld('ref.bin', '<f4').reshape(_m['shape'])
assert _w.dtype == np.float32, _w.dtype
print(int((_w.view(np.uint32) != _ref.view(np.uint32)).sum()), _w.size)
`;

const CASES: Array<[number[], kq.KqFormat]> = [
  [[3, 4096], kq.KQ_PRESETS[4]],
  [[2, 3, 100], kq.KQ_PRESETS[4]],
  [[5, 333], kq.KQ_PRESETS[2]],
  [[4, 1000], { bits: 8, group: 32, super: 256, scaleBits: 6, minBits: 6 }],
  [[2, 77], { bits: 4, group: 5, super: 15, scaleBits: 2, minBits: 3 }],
];

for (const [shape, f] of CASES)
  test(`FORMAT-KQUANT.md numpy snippet reproduces the engine: shape [${shape}], ${f.bits} bits, group ${f.group}`, async (t) => {
    if (!requireNumpy(t)) return;
    const cols = shape[shape.length - 1];
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const x = studentT4(rows * cols, rows + cols);
    const r = await kq.kquantize({ ...f, data: new Uint8Array(x.buffer), dtype: 'f32', rows, cols });
    const w = kq.kdequantize(r);
    const dir = tempDir(t, 'apl-kquant-doc-');
    writeFileSync(join(dir, 'q.bin'), r.q);
    writeFileSync(join(dir, 'codes.bin'), r.codes);
    writeFileSync(join(dir, 'd.bin'), r.d);
    writeFileSync(join(dir, 'dmin.bin'), r.dmin);
    writeFileSync(join(dir, 'ref.bin'), new Uint8Array(w.buffer));
    const quantization = {
      type: 'kquant',
      bits: f.bits,
      group_size: f.group,
      super_size: f.super,
      scale_bits: f.scaleBits,
      min_bits: f.minBits,
    };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ rows, cols, shape, quantization }));
    const [diff, size] = runPython(`${snippet()}\n${RUN}`, [dir]).trim().split(' ').map(Number);
    assert.equal(size, rows * cols);
    assert.equal(diff, 0, 'numpy and the engine dequantize to identical float32 values');
  });
