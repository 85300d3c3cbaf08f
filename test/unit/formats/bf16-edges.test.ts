// bf16 → f32 over every shape of input the readers hand it (mutation testing, group formats-dtypes, found the
// block, chunk and alignment arithmetic unpinned): lengths around the 8-value blocks and the 512-value switch to
// the WebAssembly kernel, more than one 1 MiB chunk, odd lengths, and views at every byte offset, against a plain
// reference (bf16 is the top half of an f32, so the conversion is exact).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bf16BytesToF32, bf16BytesToF32Scalar, f32ToBf16Bytes } from '../../../server/src/formats/dtypes';

/** bf16 bytes with a value per index that differs in both bytes (so swapped or shifted bytes show). */
function bytes(n: number, offset: number): Uint8Array {
  const buf = new Uint8Array(offset + 2 * n + 4);
  for (let i = 0; i < n; i++) {
    buf[offset + 2 * i] = (i * 37 + 11) & 0xff;
    buf[offset + 2 * i + 1] = ((i >> 3) * 13 + 0x3f) & 0x7f;
  }
  return buf.subarray(offset, offset + 2 * n);
}

function reference(raw: Uint8Array): Float32Array {
  const n = raw.byteLength >> 1;
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = (raw[2 * i] | (raw[2 * i + 1] << 8)) << 16;
  return new Float32Array(u.buffer);
}

const same = (a: Float32Array, b: Float32Array, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: value ${i}: ${a[i]} vs ${b[i]}`);
};

test('bf16 → f32 equals the reference for every length around blocks, the kernel switch and the 1 MiB chunks', () => {
  const lengths = [
    0,
    1,
    2,
    7,
    8,
    9,
    15,
    16,
    17,
    511,
    512,
    513,
    519,
    520,
    1000,
    (1 << 19) - 1,
    1 << 19,
    (1 << 19) + 9,
    3 << 18,
    1 << 20,
  ];
  for (const n of lengths) {
    const raw = bytes(n, 0);
    same(bf16BytesToF32(raw), reference(raw), `n=${n}`);
    same(bf16BytesToF32Scalar(raw), reference(raw), `scalar n=${n}`);
  }
});

test('bf16 → f32 from views at every byte offset, into an output view, odd lengths included', () => {
  for (const n of [1, 3, 8, 9, 600, 1025]) {
    for (let offset = 0; offset < 4; offset++) {
      const raw = bytes(n, offset);
      const want = reference(raw);
      same(bf16BytesToF32(raw), want, `n=${n} offset=${offset}`);
      same(bf16BytesToF32Scalar(raw), want, `scalar n=${n} offset=${offset}`);
      // Into a view of a larger buffer: nothing outside the view is written.
      const big = new Float32Array(n + 2).fill(-1);
      const out = new Float32Array(big.buffer, 4, n);
      bf16BytesToF32Scalar(raw, out);
      same(out, want, `scalar into a view n=${n} offset=${offset}`);
      assert.deepEqual([big[0], big[n + 1]], [-1, -1], 'the neighbours of the view are untouched');
      big.fill(-1);
      bf16BytesToF32(raw, out);
      same(out, want, `into a view n=${n} offset=${offset}`);
      assert.deepEqual([big[0], big[n + 1]], [-1, -1], 'the neighbours of the view are untouched');
    }
  }
});

test('f32 → bf16 bytes: values bf16 holds exactly come back unchanged', () => {
  const v = Float32Array.from([1, -2, 0.5, 3.25, -0, 65536]);
  same(bf16BytesToF32(f32ToBf16Bytes(v)), v, 'round trip');
  assert.equal(f32ToBf16Bytes(v).byteLength, 2 * v.length);
});

test('bf16 → f32 into a longer output writes the first n values and leaves the rest as they were', () => {
  // Both paths (the kernel from 512 values, with a tail of n % 8; the scalar loop below) and reused buffers.
  for (const n of [0, 1, 7, 511, 512, 515, 4099]) {
    const raw = new Uint8Array(2 * n);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 29 + 11) & 0xff;
    const out = new Float32Array(n + 3).fill(-7);
    bf16BytesToF32(raw, out);
    assert.deepEqual(out.subarray(0, n), bf16BytesToF32Scalar(raw), `n=${n}`);
    assert.deepEqual(Array.from(out.subarray(n)), [-7, -7, -7], `n=${n}: values past n changed`);
  }
});
