// Small random llama / mistral / gemma models for the forward-pass tests, and a float64 forward pass written
// from transformers' modeling_llama.py / modeling_mistral.py / modeling_gemma.py (the test's own reference).
import type { LinearWeight, ModelConfig, ModelWeights } from '../../../native/forward-types';
import * as eng from '../../../native/index';
import { bytesOf, gaussian } from './data';
import { dequant } from './infer-data';

export function config(family: 'llama' | 'mistral' | 'gemma', extra: Partial<ModelConfig> = {}): ModelConfig {
  const gemma = family === 'gemma';
  return {
    family,
    hiddenSize: 64,
    intermediateSize: gemma ? 80 : 96,
    numLayers: 2,
    numHeads: gemma ? 2 : 4,
    numKvHeads: gemma ? 1 : 2,
    headDim: gemma ? 32 : 16,
    vocabSize: 61,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    slidingWindow: family === 'mistral' ? 5 : null,
    hiddenAct: gemma ? 'gelu_tanh' : 'silu',
    embedScale: gemma,
    normAddOne: gemma,
    tieWordEmbeddings: gemma,
    maxPositionEmbeddings: 64,
    ...extra,
  };
}

type Maker = (rows: number, cols: number, seed: number) => Promise<LinearWeight>;

export const f32Weight: Maker = async (rows, cols, seed) => ({
  kind: 'float',
  rows,
  cols,
  dtype: 'f32',
  data: bytesOf(gaussian(rows * cols, seed, 0.6 / Math.sqrt(cols))),
});

export function packedMaker(bits: 1 | 2 | 4 | 8, groupSize: number): Maker {
  return async (rows, cols, seed) => {
    const x = gaussian(rows * cols, seed, 0.6 / Math.sqrt(cols));
    const p = { bits, groupSize, symmetric: false, mode: 'optimized' as const, scaleDtype: 'f16' as const };
    const r = await eng.quantize({ ...p, data: bytesOf(x), dtype: 'f32', rows, cols });
    return { kind: 'packed', rows, cols, bits, groupSize, q: r.q, scales: r.scales, zeros: r.zeros, scaleDtype: 'f16' };
  };
}

export async function weights(c: ModelConfig, make: Maker, seed = 1): Promise<ModelWeights> {
  const h = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const norm = (s: number) => {
    const g = gaussian(h, s, 0.1);
    for (let i = 0; i < h; i++) g[i] += c.normAddOne ? 0 : 1;
    return g;
  };
  const layers = [];
  for (let l = 0; l < c.numLayers; l++) {
    const s = seed * 100 + l * 10;
    layers.push({
      inputNorm: norm(s),
      q: await make(qd, h, s + 1),
      k: await make(kvd, h, s + 2),
      v: await make(kvd, h, s + 3),
      o: await make(h, qd, s + 4),
      postAttnNorm: norm(s + 5),
      gate: await make(c.intermediateSize, h, s + 6),
      up: await make(c.intermediateSize, h, s + 7),
      down: await make(h, c.intermediateSize, s + 8),
    });
  }
  const embed = await make(c.vocabSize, h, seed + 7);
  const lmHead = c.tieWordEmbeddings ? embed : await make(c.vocabSize, h, seed + 8);
  return { embed, layers, finalNorm: norm(seed + 9), lmHead };
}

/** float64 logits [n, vocab] of tokens at positions 0..n−1. */
export function reference64(c: ModelConfig, w: ModelWeights, tokens: number[]): Float64Array {
  const n = tokens.length;
  const H = c.hiddenSize;
  const D = c.headDim;
  const half = D / 2;
  const deq = new Map<LinearWeight, Float64Array>();
  const W = (lw: LinearWeight) => {
    let d = deq.get(lw);
    if (!d) {
      d = dequant(lw);
      deq.set(lw, d);
    }
    return d;
  };
  const lin = (lw: LinearWeight, x: Float64Array) => {
    const m = W(lw);
    const y = new Float64Array(n * lw.rows);
    for (let t = 0; t < n; t++)
      for (let r = 0; r < lw.rows; r++) {
        let s = 0;
        for (let k = 0; k < lw.cols; k++) s += m[r * lw.cols + k] * x[t * lw.cols + k];
        y[t * lw.rows + r] = s;
      }
    return y;
  };
  const norm = (x: Float64Array, g: Float32Array) => {
    const y = new Float64Array(x.length);
    for (let t = 0; t < n; t++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[t * H + i] ** 2;
      const r = 1 / Math.sqrt(ss / H + c.rmsNormEps);
      for (let i = 0; i < H; i++) y[t * H + i] = x[t * H + i] * r * (c.normAddOne ? 1 + g[i] : g[i]);
    }
    return y;
  };
  const factor = c.ropeScaling?.type === 'linear' ? c.ropeScaling.factor : 1;
  const rope = (x: Float64Array, heads: number) => {
    for (let t = 0; t < n; t++)
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < half; i++) {
          const f = (t * c.ropeTheta ** (-(2 * i) / D)) / factor;
          const o = (t * heads + h) * D;
          const a = x[o + i];
          const b = x[o + i + half];
          x[o + i] = a * Math.cos(f) - b * Math.sin(f);
          x[o + i + half] = b * Math.cos(f) + a * Math.sin(f);
        }
  };
  const E = W(w.embed);
  let x = new Float64Array(n * H);
  for (let t = 0; t < n; t++)
    for (let i = 0; i < H; i++) x[t * H + i] = E[tokens[t] * H + i] * (c.embedScale ? Math.sqrt(H) : 1);
  for (const L of w.layers) {
    const h = norm(x, L.inputNorm);
    const q = lin(L.q, h);
    const k = lin(L.k, h);
    const v = lin(L.v, h);
    rope(q, c.numHeads);
    rope(k, c.numKvHeads);
    const att = new Float64Array(n * c.numHeads * D);
    const rep = c.numHeads / c.numKvHeads;
    for (let t = 0; t < n; t++)
      for (let hh = 0; hh < c.numHeads; hh++) {
        const kv = Math.floor(hh / rep);
        const lo = c.slidingWindow ? Math.max(0, t - c.slidingWindow + 1) : 0;
        const s: number[] = [];
        for (let j = lo; j <= t; j++) {
          let d = 0;
          for (let i = 0; i < D; i++) d += q[(t * c.numHeads + hh) * D + i] * k[(j * c.numKvHeads + kv) * D + i];
          s.push(d / Math.sqrt(D));
        }
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = lo; j <= t; j++)
          for (let i = 0; i < D; i++)
            att[(t * c.numHeads + hh) * D + i] += (e[j - lo] / sum) * v[(j * c.numKvHeads + kv) * D + i];
      }
    const o = lin(L.o, att);
    x = x.map((v, i) => v + o[i]);
    const h2 = norm(x, L.postAttnNorm);
    const g = lin(L.gate, h2);
    const u = lin(L.up, h2);
    const a = g.map((v, i) => {
      const act =
        c.hiddenAct === 'gelu_tanh'
          ? 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
          : v / (1 + Math.exp(-v));
      return act * u[i];
    });
    const d = lin(L.down, a);
    x = x.map((v, i) => v + d[i]);
  }
  return lin(w.lmHead, norm(x, w.finalNorm));
}
