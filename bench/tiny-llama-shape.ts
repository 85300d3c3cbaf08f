// The TinyLlama shape the inference benches share (hidden 2048, intermediate 5632, 32 heads, 4 KV heads of 64,
// vocabulary 32000), the float16 bits of a float the synthetic weights' scales and zero points use, and those
// synthetic weights and models (random codes: no seed, the benches measure time and memory, not values).
import { randomFillSync } from 'node:crypto';
import type { LinearWeight, ModelConfig, ModelWeights } from '../native/forward-types';

export function tinyLlamaConfig(layers: number): ModelConfig {
  return {
    family: 'llama',
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: layers,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 64,
    vocabSize: 32000,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    hiddenAct: 'silu',
    embedScale: false,
    normAddOne: false,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 2048,
  };
}

/** float16 bits of v (truncating; normal values only, as the benches' scales and zero points are). */
export function f16Bits(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  return ((u >>> 16) & 0x8000) | ((((u >>> 23) & 0xff) - 112) << 10) | ((u >>> 13) & 0x3ff);
}

/** Where the synthetic weights' bytes come from (a weight arena's take: native/weight-arena.ts; 2-byte aligned). */
export const newBytes = (n: number): Uint8Array => new Uint8Array(n);

/**
 * A synthetic packed weight: random codes, bits-bit groups of 64 with float16 scales 0.002 and zero points in
 * the middle of the code range (2^(bits−1) − 0.5: 7.5 at 4 bits).
 */
export function packedWeight(rows: number, cols: number, bits: 1 | 2 | 4 | 8, alloc = newBytes): LinearWeight {
  const g = rows * Math.ceil(cols / 64);
  const f16s = (v: number) => {
    const b = alloc(2 * g);
    new Uint16Array(b.buffer, b.byteOffset, g).fill(f16Bits(v));
    return b;
  };
  return {
    kind: 'packed',
    rows,
    cols,
    bits,
    groupSize: 64,
    q: randomFillSync(alloc(rows * Math.ceil((cols * bits) / 8))),
    scales: f16s(0.002),
    zeros: f16s(2 ** (bits - 1) - 0.5),
    scaleDtype: 'f16',
  };
}

/** A synthetic bfloat16 weight: random signs and mantissas, |w| in [2^-7, 2^-6). */
export function bf16Weight(rows: number, cols: number, alloc = newBytes): LinearWeight {
  const data = randomFillSync(alloc(rows * cols * 2));
  const h = new Uint16Array(data.buffer, data.byteOffset, rows * cols);
  for (let i = 0; i < h.length; i++) h[i] = (h[i] & 0x807f) | 0x3c00;
  return { kind: 'float', rows, cols, dtype: 'bf16', data };
}

/** The bytes a linear's arrays hold. */
export function weightBytes(w: LinearWeight): number {
  return w.kind === 'packed' ? w.q.length + w.scales.length + w.zeros.length : w.kind === 'float' ? w.data.length : 0;
}

/**
 * A model of shape c: every linear W(rows, cols) (the layers', then the LM head; the embedding table from
 * embed, W unless given), norms of ones.
 */
export function syntheticModel(
  c: ModelConfig,
  W: (rows: number, cols: number) => LinearWeight,
  embed: (rows: number, cols: number) => LinearWeight = W,
): ModelWeights {
  const h = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const ones = () => new Float32Array(h).fill(1);
  const layers = [];
  for (let l = 0; l < c.numLayers; l++)
    layers.push({
      inputNorm: ones(),
      q: W(qd, h),
      k: W(kv, h),
      v: W(kv, h),
      o: W(h, qd),
      postAttnNorm: ones(),
      gate: W(c.intermediateSize, h),
      up: W(c.intermediateSize, h),
      down: W(h, c.intermediateSize),
    });
  const lmHead = W(c.vocabSize, h);
  return { embed: embed(c.vocabSize, h), layers, finalNorm: ones(), lmHead };
}
