// The TypeScript reference forward pass (INFER-API.md): the spec the native forward (native/forward.ts) is checked
// against, the fallback when the addon is absent, and itself checked against golden logits computed with torch
// (scripts/golden-logits.py). Float32 maths on weights dequantized row by row; activations are NOT quantized.
//
// It follows transformers' modeling_llama.py / modeling_mistral.py / modeling_gemma.py:
//  - RMSNorm in float32: x̂ = x · rsqrt(mean(x²) + eps), then x̂ · w (llama, mistral) or x̂ · (1 + w) (gemma);
//  - RoPE with rotate_half: element i pairs with i + head_dim/2; inv_freq[i] = 1 / theta^(2i / head_dim); linear
//    scaling divides the position by `factor`; llama3 scaling reshapes inv_freq as transformers does;
//  - grouped-query attention (query head h reads KV head floor(h / (heads / kv_heads))), scale 1/√head_dim, a causal
//    mask, and with a sliding window W position i sees keys j with i − W < j ≤ i (the mask transformers builds);
//  - MLP down(act(gate x) · up x), act SiLU or the tanh-approximated GELU (gemma);
//  - gemma: embeddings × √hidden rounded to float32 (the activation dtype), tied output head.
import type {
  FloatWeight,
  ForwardModel,
  LinearWeight,
  ModelConfig,
  ModelWeights,
  PackedWeight,
  RunOptions,
} from './forward-types';
import { checkFormat, kqSizes } from './kquant';
import { bf16BitsToF32, f16BitsToF32 } from './reference';
import { dequantizeRow as kquantRow } from './reference-kquant';

const fr = Math.fround;

/** Writes row r of a weight, dequantized to float32, into dst (length ≥ cols). */
export function weightRow(w: LinearWeight, r: number, dst: Float32Array): void {
  if (r < 0 || r >= w.rows || !Number.isInteger(r)) throw new RangeError(`row ${r} out of range [0, ${w.rows})`);
  if (w.kind === 'float') floatRow(w, r, dst);
  else if (w.kind === 'kquant') kquantRow(w, r, dst);
  else packedRow(w, r, dst);
}

function floatRow(w: FloatWeight, r: number, dst: Float32Array): void {
  const dv = new DataView(w.data.buffer, w.data.byteOffset, w.data.byteLength);
  const cols = w.cols;
  if (w.dtype === 'f32') {
    const base = r * cols * 4;
    for (let c = 0; c < cols; c++) dst[c] = dv.getFloat32(base + c * 4, true);
  } else {
    const conv = w.dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
    const base = r * cols * 2;
    for (let c = 0; c < cols; c++) dst[c] = conv(dv.getUint16(base + c * 2, true));
  }
}

function packedRow(w: PackedWeight, r: number, dst: Float32Array): void {
  const { cols, bits, groupSize } = w;
  const rowBytes = Math.ceil((cols * bits) / 8);
  const groups = Math.ceil(cols / groupSize);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const sv = new DataView(w.scales.buffer, w.scales.byteOffset, w.scales.byteLength);
  const zv = new DataView(w.zeros.buffer, w.zeros.byteOffset, w.zeros.byteLength);
  const f16 = w.scaleDtype === 'f16';
  const base = r * rowBytes;
  for (let g = 0; g < groups; g++) {
    const gi = r * groups + g;
    const s = f16 ? f16BitsToF32(sv.getUint16(gi * 2, true)) : sv.getFloat32(gi * 4, true);
    const z = f16 ? f16BitsToF32(zv.getUint16(gi * 2, true)) : zv.getFloat32(gi * 4, true);
    const end = Math.min(cols, (g + 1) * groupSize);
    for (let j = g * groupSize; j < end; j++) {
      const q = (w.q[base + Math.floor(j / perByte)] >> ((j % perByte) * bits)) & mask;
      dst[j] = fr(fr(q - z) * s);
    }
  }
}

/** Throws when a weight's buffers are too short for its shape (a truncated or mismatched NPZ member). */
export function checkWeight(w: LinearWeight, what: string): void {
  let need: number;
  let have: number;
  if (w.kind === 'float') {
    need = w.rows * w.cols * (w.dtype === 'f32' ? 4 : 2);
    have = w.data.byteLength;
  } else if (w.kind === 'kquant') {
    checkFormat(w, what);
    const s = kqSizes(w.rows, w.cols, w);
    for (const k of ['codes', 'd', 'dmin'] as const)
      if (w[k].byteLength < s[k]) throw new Error(`${what}: ${k} holds ${w[k].byteLength} bytes, expected ${s[k]}`);
    need = s.q;
    have = w.q.byteLength;
  } else {
    const groups = w.rows * Math.ceil(w.cols / w.groupSize);
    const sb = w.scaleDtype === 'f16' ? 2 : 4;
    if (w.scales.byteLength < groups * sb || w.zeros.byteLength < groups * sb) {
      throw new Error(`${what}: scales/zeros hold fewer than ${groups} values`);
    }
    need = w.rows * Math.ceil((w.cols * w.bits) / 8);
    have = w.q.byteLength;
  }
  if (have < need) throw new Error(`${what}: ${have} bytes for a [${w.rows}, ${w.cols}] weight that needs ${need}`);
}

/** y = x · Ŵᵀ for x [n, cols]: [n, rows] float32, one dequantized row at a time, sums in float64. */
export function referenceLinear(w: LinearWeight, x: Float32Array, n: number): Float32Array {
  const cols = w.cols;
  if (x.length < n * cols) throw new RangeError(`input holds ${x.length} values, expected ${n} × ${cols}`);
  const y = new Float32Array(n * w.rows);
  const d = new Float32Array(Math.max(1, cols));
  for (let r = 0; r < w.rows; r++) {
    weightRow(w, r, d);
    for (let i = 0; i < n; i++) {
      let acc = 0;
      const xo = i * cols;
      for (let j = 0; j < cols; j++) acc += x[xo + j] * d[j];
      y[i * w.rows + r] = acc;
    }
  }
  return y;
}

/** RMSNorm of each of n rows of x (width h) into out, in float32 as transformers computes it. */
export function rmsNorm(
  x: Float32Array,
  n: number,
  h: number,
  w: Float32Array,
  eps: number,
  addOne: boolean,
  out: Float32Array,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * h;
    let ss = 0;
    for (let j = 0; j < h; j++) ss += x[o + j] * x[o + j];
    const inv = fr(1 / Math.sqrt(fr(fr(ss / h) + eps)));
    for (let j = 0; j < h; j++) {
      const xn = fr(x[o + j] * inv);
      out[o + j] = fr(xn * (addOne ? fr(1 + w[j]) : w[j]));
    }
  }
}

/** inv_freq[i] for i < headDim/2, with llama3 scaling applied; linear scaling is applied to positions instead. */
export function ropeInvFreq(config: ModelConfig): Float32Array {
  const half = config.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = fr(1 / fr(config.ropeTheta ** fr((2 * i) / config.headDim)));
  const sc = config.ropeScaling;
  if (sc && (sc.type === 'llama3' || sc.rope_type === 'llama3')) {
    const factor = sc.factor;
    const low = Number(sc.low_freq_factor ?? 1);
    const high = Number(sc.high_freq_factor ?? 4);
    const old = Number(sc.original_max_position_embeddings ?? 8192);
    const lowWave = old / low;
    const highWave = old / high;
    for (let i = 0; i < half; i++) {
      const wave = (2 * Math.PI) / inv[i];
      const scaled = wave > lowWave ? inv[i] / factor : inv[i];
      if (wave < highWave || wave > lowWave) inv[i] = fr(scaled);
      else {
        const smooth = (old / wave - low) / (high - low);
        inv[i] = fr((1 - smooth) * (scaled / factor) + smooth * scaled);
      }
    }
  }
  return inv;
}

/** The rope scaling kinds the forward pass implements (a config naming another is refused). */
export function ropeScalingKind(config: ModelConfig): 'none' | 'linear' | 'llama3' {
  const sc = config.ropeScaling;
  if (!sc) return 'none';
  const t = String(sc.type ?? sc.rope_type ?? '');
  if (t === 'linear' || t === 'llama3') return t;
  if (t === 'default' || t === '') return 'none';
  throw new Error(`rope_scaling type '${t}' is not supported (only linear and llama3)`);
}

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}
function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Checks a config and weights agree (shapes), throwing one clear message otherwise. */
export function checkModel(c: ModelConfig, w: ModelWeights): void {
  const must = (ok: boolean, msg: string) => {
    if (!ok) throw new Error(msg);
  };
  must(['llama', 'mistral', 'gemma'].includes(c.family), `model family '${c.family}' is not supported`);
  must(c.numHeads % c.numKvHeads === 0, `num_heads ${c.numHeads} is not a multiple of num_kv_heads ${c.numKvHeads}`);
  must(c.headDim % 2 === 0, `head_dim ${c.headDim} is odd`);
  must(w.layers.length === c.numLayers, `${w.layers.length} layers of weights for num_layers ${c.numLayers}`);
  const shape = (lw: LinearWeight, rows: number, cols: number, what: string) => {
    must(lw.rows === rows && lw.cols === cols, `${what}: shape [${lw.rows}, ${lw.cols}], expected [${rows}, ${cols}]`);
    checkWeight(lw, what);
  };
  const h = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  shape(w.embed, c.vocabSize, h, 'embed_tokens');
  shape(w.lmHead, c.vocabSize, h, 'lm_head');
  must(w.finalNorm.length === h, `final norm has ${w.finalNorm.length} values, expected ${h}`);
  w.layers.forEach((l, i) => {
    const p = `layer ${i}`;
    must(l.inputNorm.length === h && l.postAttnNorm.length === h, `${p}: norm width differs from hidden ${h}`);
    shape(l.q, qd, h, `${p} q_proj`);
    shape(l.k, kvd, h, `${p} k_proj`);
    shape(l.v, kvd, h, `${p} v_proj`);
    shape(l.o, h, qd, `${p} o_proj`);
    shape(l.gate, c.intermediateSize, h, `${p} gate_proj`);
    shape(l.up, c.intermediateSize, h, `${p} up_proj`);
    shape(l.down, h, c.intermediateSize, `${p} down_proj`);
  });
  ropeScalingKind(c);
}

export function createReferenceModel(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel {
  checkModel(config, weights);
  const c = config;
  const h = c.hiddenSize;
  const hd = c.headDim;
  const qd = c.numHeads * hd;
  const kvd = c.numKvHeads * hd;
  const ctx = opts.contextLength;
  const group = c.numHeads / c.numKvHeads;
  const scaleKind = ropeScalingKind(c);
  const posScale = scaleKind === 'linear' ? c.ropeScaling!.factor : 1;
  const invFreq = ropeInvFreq(c);
  const half = hd / 2;
  const kCache = c.numLayers ? weights.layers.map(() => new Float32Array(ctx * kvd)) : [];
  const vCache = c.numLayers ? weights.layers.map(() => new Float32Array(ctx * kvd)) : [];
  const embedMul = c.embedScale ? fr(Math.sqrt(h)) : 1;
  const window = c.slidingWindow && c.slidingWindow > 0 ? c.slidingWindow : Number.POSITIVE_INFINITY;
  let filled = 0;

  const rope = (x: Float32Array, n: number, heads: number, pos: number) => {
    const cos = new Float32Array(half);
    const sin = new Float32Array(half);
    for (let t = 0; t < n; t++) {
      const p = fr((pos + t) / posScale);
      for (let i = 0; i < half; i++) {
        const f = fr(p * invFreq[i]);
        cos[i] = fr(Math.cos(f));
        sin[i] = fr(Math.sin(f));
      }
      for (let hh = 0; hh < heads; hh++) {
        const o = (t * heads + hh) * hd;
        for (let i = 0; i < half; i++) {
          const a = x[o + i];
          const b = x[o + i + half];
          x[o + i] = fr(fr(a * cos[i]) - fr(b * sin[i]));
          x[o + i + half] = fr(fr(b * cos[i]) + fr(a * sin[i]));
        }
      }
    }
  };

  const model: ForwardModel = {
    backend: 'ts-reference',
    reset() {
      filled = 0;
    },
    dispose() {
      filled = 0;
    },
    forward(tokens: ArrayLike<number>, pos: number, allLogits: boolean): Float32Array {
      const n = tokens.length;
      if (n === 0) throw new RangeError('forward: no tokens');
      if (pos !== filled) throw new RangeError(`forward: position ${pos} but the KV cache holds ${filled}`);
      if (pos + n > ctx) throw new RangeError(`context of ${pos + n} tokens exceeds the limit of ${ctx}`);
      const x = new Float32Array(n * h);
      for (let t = 0; t < n; t++) {
        const id = tokens[t];
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
          throw new RangeError(`token id ${id} is outside the vocabulary [0, ${c.vocabSize})`);
        }
        const row = x.subarray(t * h, (t + 1) * h);
        weightRow(weights.embed, id, row);
        if (embedMul !== 1) for (let j = 0; j < h; j++) row[j] = fr(row[j] * embedMul);
      }
      const xn = new Float32Array(n * h);
      const attn = new Float32Array(n * qd);
      const scores = new Float64Array(pos + n);
      const scale = 1 / Math.sqrt(hd);
      for (let l = 0; l < c.numLayers; l++) {
        const lw = weights.layers[l];
        rmsNorm(x, n, h, lw.inputNorm, c.rmsNormEps, c.normAddOne, xn);
        const q = referenceLinear(lw.q, xn, n);
        const k = referenceLinear(lw.k, xn, n);
        const v = referenceLinear(lw.v, xn, n);
        rope(q, n, c.numHeads, pos);
        rope(k, n, c.numKvHeads, pos);
        kCache[l].set(k, pos * kvd);
        vCache[l].set(v, pos * kvd);
        const K = kCache[l];
        const V = vCache[l];
        for (let t = 0; t < n; t++) {
          const p = pos + t;
          const start = Math.max(0, p - window + 1);
          for (let hh = 0; hh < c.numHeads; hh++) {
            const qo = (t * c.numHeads + hh) * hd;
            const ko = Math.floor(hh / group) * hd;
            let max = Number.NEGATIVE_INFINITY;
            for (let j = start; j <= p; j++) {
              let s = 0;
              const kb = j * kvd + ko;
              for (let d = 0; d < hd; d++) s += q[qo + d] * K[kb + d];
              s = fr(fr(s) * scale);
              scores[j] = s;
              if (s > max) max = s;
            }
            let sum = 0;
            for (let j = start; j <= p; j++) {
              const e = Math.exp(scores[j] - max);
              scores[j] = e;
              sum += e;
            }
            for (let d = 0; d < hd; d++) attn[qo + d] = 0;
            for (let j = start; j <= p; j++) {
              const pj = fr(scores[j] / sum);
              const vb = j * kvd + ko;
              for (let d = 0; d < hd; d++) attn[qo + d] += pj * V[vb + d];
            }
          }
        }
        const o = referenceLinear(lw.o, attn, n);
        for (let i = 0; i < n * h; i++) x[i] = fr(x[i] + o[i]);
        rmsNorm(x, n, h, lw.postAttnNorm, c.rmsNormEps, c.normAddOne, xn);
        const g = referenceLinear(lw.gate, xn, n);
        const u = referenceLinear(lw.up, xn, n);
        const act = c.hiddenAct === 'gelu_tanh' ? gelu : silu;
        for (let i = 0; i < g.length; i++) g[i] = fr(fr(act(g[i])) * u[i]);
        const dn = referenceLinear(lw.down, g, n);
        for (let i = 0; i < n * h; i++) x[i] = fr(x[i] + dn[i]);
      }
      filled = pos + n;
      const rows = allLogits ? n : 1;
      const last = x.subarray((n - rows) * h);
      const fin = new Float32Array(rows * h);
      rmsNorm(last, rows, h, weights.finalNorm, c.rmsNormEps, c.normAddOne, fin);
      return referenceLinear(weights.lmHead, fin, rows);
    },
  };
  return model;
}
