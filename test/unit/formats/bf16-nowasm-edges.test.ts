// APL_NO_WASM=1 forces the scalar bf16 → f32 loop (the switch a user reaches for if the WebAssembly kernel is ever
// suspected): set before the first conversion of the process, so this file runs in its own process.
import assert from 'node:assert/strict';
import { test } from 'node:test';

process.env.APL_NO_WASM = '1';

test('APL_NO_WASM=1: the backend is scalar and large conversions still give exact values', async () => {
  const { bf16Backend, bf16BytesToF32 } = await import('../../../server/src/formats/dtypes');
  const n = 4099;
  const raw = new Uint8Array(2 * n);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 29 + 5) & 0xff;
  const got = bf16BytesToF32(raw);
  const u = new Uint32Array(got.buffer);
  for (let i = 0; i < n; i++) assert.equal(u[i], ((raw[2 * i] | (raw[2 * i + 1] << 8)) << 16) >>> 0, `value ${i}`);
  assert.equal(bf16Backend(), 'scalar');
});
