// The one seeded PRNG (mulberry32): uniform numbers in [0, 1) from a 32-bit seed, no Math.random, so a seed
// reproduces a run. The converter's check inputs (convert/accuracy.ts), the sampler (run/sampler.ts) and the tests'
// random tensors (test/helpers/random.ts) draw from it.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
