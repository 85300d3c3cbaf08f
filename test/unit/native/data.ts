// Deterministic test tensors (Gaussian, Student-t(4)) and dtype encoders for the native engine tests.
import { f32ToF16Bits } from '../../../native/reference';
import { relError } from '../../helpers/rel-error';

export { gaussian, rng, studentT4 } from '../../helpers/random';

export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Encodes float32 values as f16 or bf16 (round to nearest even) raw bytes; f32 as is. */
export function encode(a: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(a.slice().buffer);
  const out = new Uint16Array(a.length);
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) {
    if (dtype === 'f16') out[i] = f32ToF16Bits(a[i]);
    else {
      const x = u[i];
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return new Uint8Array(out.buffer);
}

/** The float32 values an encoded tensor decodes to. */
export function decoded(a: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float32Array {
  const b = encode(a, dtype);
  if (dtype === 'f32') return new Float32Array(b.buffer);
  const h = new Uint16Array(b.buffer);
  const out = new Float32Array(a.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < a.length; i++) {
    if (dtype === 'bf16') u[i] = h[i] << 16;
    else out[i] = f16(h[i]);
  }
  return out;
}
function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** ‖a − b‖₂ / ‖a‖₂: here the reference comes first (the same sums as relError(b, a); lengths must agree). */
export const relErr = (a: Float32Array, b: Float32Array): number => relError(b, a);
