import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32, crc32Js } from '../../../server/src/formats/crc32';
import {
  bf16Backend,
  bf16BytesToF32,
  bf16BytesToF32Scalar,
  bf16ToF32,
  byteswapInPlace,
  f8e4m3ToF32,
  f8e5m2ToF32,
  f16BytesToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bytes,
  f32ToF16,
  f32ToF16Bytes,
} from '../../../server/src/formats/dtypes';
import { requireNumpy, runPython } from '../../helpers/numpy';

test('all 65536 float16 values decode exactly as numpy does; encoding rounds like numpy', (t) => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const ours = f16BytesToF32(new Uint8Array(all.buffer));
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xfbff), -65504);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  const rnd = new Float32Array(20000);
  let x = 12345;
  for (let i = 0; i < rnd.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    rnd[i] = ((x / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 20)) as number;
  }
  rnd.set([65504, 65520, 65519.99, 1e-8, 5.96e-8, 2.98e-8, -0, Number.POSITIVE_INFINITY], 0);
  const enc = f32ToF16Bytes(rnd);
  if (!requireNumpy(t)) return;
  const out = JSON.parse(
    runPython(
      `
a = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
r = np.frombuffer(sys.stdin.buffer.read(), dtype='<f4').astype(np.float16)
print(json.dumps([a.tobytes().hex(), r.tobytes().hex()]))
`,
      [],
      { input: new Uint8Array(rnd.buffer) },
    ),
  );
  const ref = new Float32Array(new Uint8Array(Buffer.from(out[0], 'hex')).buffer);
  let bad = 0;
  for (let i = 0; i < 65536; i++) if (!Object.is(ours[i], ref[i])) bad++; // NaN payloads aside, values match
  assert.equal(bad, 0);
  assert.equal(Buffer.from(enc).toString('hex'), out[1]);
});

test('bfloat16: decoding is exact (aligned, unaligned, odd counts), encoding rounds to nearest even', () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie → even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN))));
  const vals = [0, -0, 1, -1, 3.5, -1e30, 1e-40, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 65504, -2.5];
  for (const n of [vals.length, vals.length - 1]) {
    const b = f32ToBf16Bytes(vals.slice(0, n));
    const want = [...new Uint16Array(b.buffer)].map(bf16ToF32);
    for (const off of [0, 2, 1]) {
      const buf = new Uint8Array(b.length + off);
      buf.set(b, off);
      const got = bf16BytesToF32(buf.subarray(off));
      assert.equal(got.length, n);
      assert.ok(
        [...got].every((v, i) => Object.is(v, want[i])),
        `n=${n} off=${off}`,
      );
    }
  }
});

test('float8 e4m3fn and e5m2 decode', () => {
  assert.equal(f8e4m3ToF32(0x7e), 448);
  assert.ok(Number.isNaN(f8e4m3ToF32(0x7f)));
  assert.equal(f8e4m3ToF32(0x38), 1);
  assert.equal(f8e4m3ToF32(0x01), 2 ** -9);
  assert.equal(f8e4m3ToF32(0xb8), -1);
  assert.equal(f8e5m2ToF32(0x7b), 57344);
  assert.equal(f8e5m2ToF32(0x7c), Number.POSITIVE_INFINITY);
  assert.ok(Number.isNaN(f8e5m2ToF32(0x7d)));
  assert.equal(f8e5m2ToF32(0x3c), 1);
  assert.equal(f8e5m2ToF32(0x01), 2 ** -16);
});

test('crc32 matches the zip check value and the portable version', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32Js(Buffer.from('123456789')), 0xcbf43926);
  const b = Buffer.alloc(100_003);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7919) & 0xff;
  assert.equal(crc32Js(b.subarray(50_000), crc32Js(b.subarray(0, 50_000))), crc32(b));
});

test('byteswapInPlace', () => {
  assert.deepEqual([...byteswapInPlace(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4)], [4, 3, 2, 1, 8, 7, 6, 5]);
  assert.equal(f32ToF16(65520), 0x7c00);
});

test('bf16 WebAssembly SIMD path equals the scalar reference (block edges, odd counts, unaligned input)', () => {
  assert.equal(bf16Backend(), 'wasm-simd', 'Node 20 and Electron have WebAssembly SIMD');
  for (const n of [512, 519, 4096, (1 << 19) - 1, 1 << 19, (1 << 19) + 9, 1_300_003]) {
    for (const off of [0, 1, 2]) {
      const buf = new Uint8Array(2 * n + off);
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 7919 + (i >> 9)) & 0xff;
      const raw = buf.subarray(off);
      const a = bf16BytesToF32(raw);
      const b = bf16BytesToF32Scalar(raw);
      assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), `n=${n} off=${off}`);
    }
  }
});
