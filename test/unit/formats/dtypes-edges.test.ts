// The float16 array helpers and the bf16 backend of formats/dtypes.ts, fast (no numpy), for the mutation group
// formats-dtypes: values at every byte alignment, into output views, and the bytes f32 → f16 / bf16 writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bf16Backend,
  f16BytesToF32,
  f16ToF32,
  f32ToBf16Bytes,
  f32ToF16Bytes,
} from '../../../server/src/formats/dtypes';

/** float16 bytes, little-endian, with both bytes varying (so swapped or shifted bytes show). */
function f16Bytes(n: number, offset: number): Uint8Array {
  const buf = new Uint8Array(offset + 2 * n + 3).fill(0xcd);
  for (let i = 0; i < n; i++) {
    buf[offset + 2 * i] = (i * 41 + 3) & 0xff;
    buf[offset + 2 * i + 1] = (i * 7 + 0x35) & 0x7b;
  }
  return buf.subarray(offset, offset + 2 * n);
}

test('f16 → f32 equals the per-value decode, at every byte offset, odd lengths, into an output view', () => {
  for (const n of [0, 1, 2, 3, 17, 1000]) {
    for (let offset = 0; offset < 3; offset++) {
      const raw = f16Bytes(n, offset);
      const want = Float32Array.from({ length: n }, (_, i) => f16ToF32(raw[2 * i] | (raw[2 * i + 1] << 8)));
      const got = f16BytesToF32(raw);
      assert.equal(got.length, n);
      assert.deepEqual(got, want, `n=${n} offset=${offset}`);
      const big = new Float32Array(n + 2).fill(-7);
      const out = f16BytesToF32(raw, new Float32Array(big.buffer, 4, n));
      assert.deepEqual(out, want, `into a view n=${n} offset=${offset}`);
      assert.deepEqual([big[0], big[n + 1]], [-7, -7]);
    }
  }
  // Known values: 1.0, -2.0, 65504 (the largest), the smallest subnormal, +Inf.
  const k = f16BytesToF32(Uint8Array.from([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c]));
  assert.deepEqual(Array.from(k), [1, -2, 65504, 2 ** -24, Number.POSITIVE_INFINITY]);
});

test('f32 → f16 and bf16 bytes: little-endian, rounded to nearest even, one value per 2 bytes', () => {
  const v = [1, -2, 65504, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000];
  assert.deepEqual(
    Array.from(f32ToF16Bytes(v)),
    [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x3c, 0x02, 0x3c, 0x00, 0x7c],
  );
  const b = [1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.25];
  assert.deepEqual(Array.from(f32ToBf16Bytes(b)), [0x80, 0x3f, 0x00, 0xc0, 0x80, 0x3f, 0x82, 0x3f, 0x50, 0x40]);
  assert.equal(f32ToF16Bytes([]).byteLength, 0);
  assert.equal(f32ToBf16Bytes(new Float32Array(0)).byteLength, 0);
});

test('the bf16 backend is WebAssembly SIMD on Node 20 (the scalar loop only where it is missing)', () => {
  assert.equal(bf16Backend(), 'wasm-simd');
});

test('f16 → f32 into a longer output writes the first n values and leaves the rest as they were', () => {
  // Callers reuse buffers (a chunk's rows into a pooled array): nothing past the n values may change.
  for (const n of [0, 1, 5, 64]) {
    const raw = f16Bytes(n, 0);
    const out = new Float32Array(n + 3).fill(-7);
    f16BytesToF32(raw, out);
    for (let i = 0; i < n; i++) assert.equal(out[i], f16ToF32(raw[2 * i] | (raw[2 * i + 1] << 8)), `n=${n} [${i}]`);
    assert.deepEqual(Array.from(out.subarray(n)), [-7, -7, -7], `n=${n}: values past n changed`);
  }
});
