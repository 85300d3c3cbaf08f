// The GPU forward's guard: before a model runs on CUDA, the GPU must reproduce the CPU on this machine. The CUDA
// kernels are tested against the scalar reference, but a driver, a device or a build can still differ from the
// machines the tests ran on; a GPU that disagrees is not used ('auto' runs on the CPU and says why; 'gpu' refuses
// with one line). The checks, once per process for each kind of weight and each model shape (cached):
//  - linear: the first rows of each distinct kind of the model's own weights (packed bits and group, float dtype,
//    kquant layout; with their own column count) times three rows of deterministic activations, on the GPU and on
//    the CPU scalar kernel (the spec): equal bit for bit, as the CUDA linear kernels are (test_gpu);
//  - forward: a one-layer float32 model with the model's family, head size, head ratio, norms, activation, RoPE
//    and sliding window (a prompt longer than the window, then two decode steps) on the GPU and on the CPU scalar
//    kernel with the same KV cache: relative L2 ≤ 2e-5 over the logits. The emulated GPU gives 0.6–2.5e-7 (the
//    kernels' own orders of operations); a device's math library should move that by ulps, not 100× (not yet
//    measured on a device: bench/gpu-agreement.bench.ts prints it there); a RoPE that
//    skipped the last token's last pair of one head gave up to 2.4e-4 (docs/RUN.md).
// APL_GPU_SELFTEST=0 skips the guard. APL_GPU_SELFTEST_FAULT=linear|forward (tests only) alters the GPU's answer
// in that check, so the refusal and the fallback can be tested where the GPU is emulated.
import type { InferAddon } from './forward';
import type { LinearWeight, ModelConfig, ModelWeights } from './forward-types';

/** What the guard needs from the addon. */
export type SelfTestAddon = Pick<InferAddon, 'inferLinear' | 'InferModel'>;

/** Rows of each weight the linear check multiplies. */
export const SELFTEST_ROWS = 8;
/** The forward check's bound on the relative L2 distance of the GPU's logits from the CPU's. */
export const SELFTEST_FORWARD_BOUND = 2e-5;

const done = new Map<string, string>();

/** The key that tells weights of one kind apart (what selects a different kernel or layout). */
export function weightKind(w: LinearWeight): string {
  if (w.kind === 'packed') return `packed:${w.bits}:g${w.groupSize}:${w.scaleDtype}:c${w.cols}`;
  if (w.kind === 'float') return `float:${w.dtype}:c${w.cols}`;
  return `kquant:${w.bits}:g${w.group}:s${w.super}:${w.scaleBits}+${w.minBits}:c${w.cols}`;
}

/** The first `k` rows of a weight (views of its arrays: every layout is row-major with whole rows). */
export function firstRows(w: LinearWeight, k: number): LinearWeight {
  const n = Math.min(k, w.rows);
  if (w.kind === 'float') {
    const eb = w.dtype === 'f32' ? 4 : 2;
    return { ...w, rows: n, data: w.data.subarray(0, n * w.cols * eb) };
  }
  const rb = Math.ceil((w.cols * w.bits) / 8);
  if (w.kind === 'packed') {
    const sb = Math.ceil(w.cols / w.groupSize) * (w.scaleDtype === 'f16' ? 2 : 4);
    return {
      ...w,
      rows: n,
      q: w.q.subarray(0, n * rb),
      scales: w.scales.subarray(0, n * sb),
      zeros: w.zeros.subarray(0, n * sb),
    };
  }
  const cb = Math.ceil((Math.ceil(w.cols / w.group) * (w.scaleBits + w.minBits)) / 8);
  const db = Math.ceil(w.cols / w.super) * 2;
  return {
    ...w,
    rows: n,
    q: w.q.subarray(0, n * rb),
    codes: w.codes.subarray(0, n * cb),
    d: w.d.subarray(0, n * db),
    dmin: w.dmin.subarray(0, n * db),
  };
}

/** Deterministic values (xorshift32) spread over [-scale, scale], with a few large ones and exact zeros. */
function values(n: number, seed: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const u = s / 4294967296 - 0.5;
    v[i] = i % 37 === 5 ? 0 : i % 53 === 7 ? 8 * scale * u : 2 * scale * u;
  }
  return v;
}

function fault(what: 'linear' | 'forward', y: Float32Array): Float32Array {
  if (process.env.APL_GPU_SELFTEST_FAULT !== what || y.length === 0) return y;
  const z = Float32Array.from(y);
  z[z.length >> 1] += 1 + Math.abs(z[z.length >> 1]);
  return z;
}

/** '' when the GPU's linear equals the CPU scalar kernel bit for bit on the first rows of w, else what differs. */
export function linearAgrees(a: SelfTestAddon, w: LinearWeight, name: string): string {
  const part = firstRows(w, SELFTEST_ROWS);
  const n = 3;
  const x = values(n * w.cols, 0x9e3779b9 ^ w.cols, 1);
  const cpu = a.inferLinear(part, x, n, 1, 'scalar', false);
  const gpu = fault('linear', a.inferLinear(part, x, n, 1, undefined, true));
  const cb = new Uint32Array(cpu.buffer, cpu.byteOffset, cpu.length);
  const gb = new Uint32Array(gpu.buffer, gpu.byteOffset, gpu.length);
  if (gb.length !== cb.length) return `the GPU's linear on ${name} gave ${gb.length} values, not ${cb.length}`;
  for (let i = 0; i < cb.length; i++)
    if (cb[i] !== gb[i]) {
      const at = `token ${Math.floor(i / part.rows)}, row ${i % part.rows}`;
      return `the GPU's linear on ${name} (${weightKind(w)}) differs from the CPU: ${at}: ${gpu[i]} against ${cpu[i]}`;
    }
  return '';
}

/** The forward check's one-layer config: c's family, head size, head ratio, norms, activation, RoPE and window. */
export function selfTestConfig(c: ModelConfig): ModelConfig {
  const kvHeads = Math.max(1, Math.min(c.numKvHeads, 2));
  return {
    ...c,
    hiddenSize: 64,
    intermediateSize: 96,
    numLayers: 1,
    numHeads: kvHeads * Math.max(1, Math.min(Math.floor(c.numHeads / c.numKvHeads), 4)),
    numKvHeads: kvHeads,
    vocabSize: 67,
    slidingWindow: c.slidingWindow ? 4 : null,
    maxPositionEmbeddings: Math.max(16, c.maxPositionEmbeddings),
  };
}

/** A one-layer float32 model of selfTestConfig(c) (the forward check's). */
export function selfTestModel(c: ModelConfig): { config: ModelConfig; weights: ModelWeights } {
  const config = selfTestConfig(c);
  const { hiddenSize: hidden, intermediateSize: inter, numHeads: heads, numKvHeads: kvHeads } = config;
  let seed = 11;
  const f32 = (rows: number, cols: number): LinearWeight => {
    const v = values(rows * cols, seed++, 1.2 / Math.sqrt(cols));
    return { kind: 'float', rows, cols, dtype: 'f32', data: new Uint8Array(v.buffer) };
  };
  const norm = () => {
    const v = values(hidden, seed++, 0.2);
    if (!c.normAddOne) for (let i = 0; i < hidden; i++) v[i] += 1;
    return v;
  };
  const qd = heads * c.headDim;
  const kvd = kvHeads * c.headDim;
  const embed = f32(config.vocabSize, hidden);
  const weights: ModelWeights = {
    embed,
    layers: [
      {
        inputNorm: norm(),
        q: f32(qd, hidden),
        k: f32(kvd, hidden),
        v: f32(kvd, hidden),
        o: f32(hidden, qd),
        postAttnNorm: norm(),
        gate: f32(inter, hidden),
        up: f32(inter, hidden),
        down: f32(hidden, inter),
      },
    ],
    finalNorm: norm(),
    lmHead: c.tieWordEmbeddings ? embed : f32(config.vocabSize, hidden),
  };
  return { config, weights };
}

function relL2(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    s += b[i] ** 2;
  }
  return Math.sqrt(d / (s || 1));
}

/** The forward check's steps: a 7-token prompt (all logits: longer than the window of 4), then two decode steps. */
const STEPS: [number[], number, boolean][] = [
  [[1, 9, 30, 2, 66, 17, 5], 0, true],
  [[40], 7, false],
  [[3], 8, false],
];

/**
 * Relative L2 distance of the GPU's logits from the CPU scalar model's on selfTestModel(c), per step of STEPS (with
 * its position), or a string when the models cannot be made. Also what bench/gpu-agreement.bench.ts prints.
 */
export function forwardDistances(
  a: SelfTestAddon,
  c: ModelConfig,
  invFreqOf: (c: ModelConfig) => Float32Array,
  kvCache: 'f16' | 'f32',
): { pos: number; rel: number }[] | string {
  const { config, weights } = selfTestModel(c);
  const cfg = { ...config, contextLength: 16, ropeMscale: 1, kvCache };
  const inv = invFreqOf(config);
  const cpu = new a.InferModel(cfg, weights, inv, 1, 'scalar', false);
  const gpu = new a.InferModel(cfg, weights, inv, 1, undefined, true);
  try {
    const err = gpu.constructionError?.() || cpu.constructionError?.();
    if (err) return `the self-test model could not be made: ${err}`;
    return STEPS.map(([ids, pos, all]) => {
      const tokens = Int32Array.from(ids);
      const want = cpu.forward(tokens, pos, all, config.vocabSize);
      const got = fault('forward', gpu.forward(tokens, pos, all, config.vocabSize));
      return { pos, rel: relL2(got, want) };
    });
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
}

/** '' when the GPU forward of selfTestModel(c) is within SELFTEST_FORWARD_BOUND of the CPU's, else what differs. */
export function forwardAgrees(
  a: SelfTestAddon,
  c: ModelConfig,
  invFreqOf: (c: ModelConfig) => Float32Array,
  kvCache: 'f16' | 'f32',
): string {
  const d = forwardDistances(a, c, invFreqOf, kvCache);
  if (typeof d === 'string') return d;
  for (const { pos, rel } of d)
    if (!(rel <= SELFTEST_FORWARD_BOUND)) {
      const what = `relative L2 ${rel.toPrecision(3)} > ${SELFTEST_FORWARD_BOUND}`;
      return `the GPU forward differs from the CPU on a one-layer ${c.family} model at position ${pos}: ${what}`;
    }
  return '';
}

/**
 * '' when the GPU reproduces the CPU for this model (every kind of its weights, and its family's forward), else
 * the first difference, in one line. Each check runs once per process (its result is kept).
 */
export function gpuSelfTest(
  a: SelfTestAddon,
  c: ModelConfig,
  w: ModelWeights,
  invFreqOf: (c: ModelConfig) => Float32Array,
  kvCache: 'f16' | 'f32',
): string {
  if (process.env.APL_GPU_SELFTEST === '0') return '';
  const once = (key: string, run: () => string): string => {
    const fkey = `${key}|${process.env.APL_GPU_SELFTEST_FAULT ?? ''}`;
    let r = done.get(fkey);
    if (r === undefined) {
      try {
        r = run();
      } catch (e) {
        r = `the GPU self-test failed: ${(e as Error).message.split('\n')[0]}`;
      }
      done.set(fkey, r);
    }
    return r;
  };
  const named: [string, LinearWeight][] = [];
  w.layers.forEach((l, i) => {
    for (const k of ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const) named.push([`layer ${i} ${k}`, l[k]]);
  });
  named.push(['lm_head', w.lmHead], ['embed_tokens', w.embed]);
  for (const [name, lw] of named) {
    const r = once(`linear ${weightKind(lw)}`, () => linearAgrees(a, lw, name));
    if (r) return r;
  }
  // keyed by everything the one-layer model is made from
  return once(`forward ${JSON.stringify(selfTestConfig(c))} ${kvCache}`, () => forwardAgrees(a, c, invFreqOf, kvCache));
}
