// Deterministic random tensors shared by the tests and the benchmarks: a small counter-based PRNG (no
// Math.random), Gaussian by Box–Muller, and Student-t(4), whose heavy tails look like real LLM weights.

import { mulberry32 as rng } from '../../server/src/common/random';

export { rng };

export function gaussian(n: number, seed = 1, sigma = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * sigma;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Student-t with 4 degrees of freedom: heavy tails like real LLM weights. */
export function studentT4(n: number, seed = 2): Float32Array {
  const z = gaussian(n * 5, seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = z[n + 4 * i] ** 2 + z[n + 4 * i + 1] ** 2 + z[n + 4 * i + 2] ** 2 + z[n + 4 * i + 3] ** 2;
    out[i] = z[i] / Math.sqrt(c / 4);
  }
  return out;
}

/** n bytes of the xorshift32 stream from seed (0 counts as 1): incompressible, reproducible file contents. */
export function xorshiftBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
