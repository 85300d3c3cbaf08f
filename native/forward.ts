// The native forward pass (INFER-API.md): createModel runs llama / mistral / gemma decoders on packed weights in
// C++ (native/src/infer/), linear runs one layer. Packed and kquant weights run on int8-quantized activations (per
// weight group, integer dot products); float weights in float32. Without the addon both fall back to the TypeScript
// reference (native/forward-reference.ts) and say why once.
import type { ForwardModel, LinearWeight, ModelConfig, ModelWeights, RunOptions } from './forward-types';
import { gpuSelfTest } from './gpu-selftest';
import { engineInfo, loadNote, nativeAddon } from './index';

export interface InferInfo {
  /** CPU variants this machine runs, the scalar reference first. */
  variants: string[];
  selected: string;
  threads: number;
  /** Whether this build has the CUDA kernels (a GPU may still be missing). */
  cuda: boolean;
}
interface NativeModel {
  forward(tokens: Int32Array, pos: number, all: boolean, vocab: number): Float32Array;
  reset(): void;
  dispose(): void;
  info(): { backend: string; threads: number; kvBytes: number; length: number };
  /** Why construction failed, '' when it did not (the native constructor never throws: see infer_addon.cc). */
  constructionError?(): string;
}
/** The inference bindings of the addon (native/src/infer_addon.cc). */
export interface InferAddon {
  inferInfo(): InferInfo;
  inferLinear(
    w: LinearWeight,
    x: Float32Array,
    n: number,
    threads: number,
    variant?: string,
    gpu?: boolean,
  ): Float32Array;
  InferModel: new (
    config: ModelConfig & { contextLength: number; ropeMscale: number; kvCache: 'f16' | 'f32' },
    weights: ModelWeights,
    invFreq: Float32Array,
    threads: number,
    variant?: string,
    gpu?: boolean,
  ) => NativeModel;
}
interface ReferenceModule {
  createReferenceModel(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel;
  referenceLinear(w: LinearWeight, x: Float32Array, n: number): Float32Array;
}

function addon(): InferAddon | null {
  const a = nativeAddon() as Partial<InferAddon> | null;
  return a && typeof a.inferLinear === 'function' ? (a as InferAddon) : null;
}

let noticeShown = false;
function reference(): ReferenceModule {
  if (!noticeShown && process.env.APL_QUIET_NATIVE !== '1') {
    noticeShown = true;
    const why = loadNote ?? 'the native addon has no inference kernels (rebuild it: npm run build:native)';
    process.stderr.write(`apl-quant: ${why}; the forward pass runs on the TypeScript reference\n`);
  }
  try {
    // biome-ignore lint/suspicious/noExplicitAny: optional module (the TypeScript reference forward)
    return (require as any)('./forward-reference') as ReferenceModule;
  } catch (e) {
    throw new Error(`no forward pass available: the native addon is not loaded and ${(e as Error).message}`);
  }
}

/** The inference kernels of the loaded addon (null when it is not loaded). */
export function inferInfo(): InferInfo | null {
  return addon()?.inferInfo() ?? null;
}

function threadsOf(t: number | undefined): number {
  const v = t ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 1024)
    throw new Error(`threads must be an integer from 0 (all cores) to 1024 (got ${v})`);
  return v;
}

/** y = x · Ŵᵀ for x [n, cols] float32: [n, rows]. `variant` picks a CPU kernel ('scalar', 'avx2', …) for tests. */
export function linear(
  w: LinearWeight,
  x: Float32Array,
  n: number,
  opts: { threads?: number; backend?: 'auto' | 'cpu' | 'gpu'; variant?: string } = {},
): Float32Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`linear: n must be a non-negative integer (got ${n})`);
  if (!(x instanceof Float32Array) || x.length !== n * w.cols)
    throw new Error(`linear: x must be a Float32Array of ${n}×${w.cols} values (got ${x.length})`);
  const threads = threadsOf(opts.threads);
  const a = addon();
  if (!a) {
    if (opts.backend === 'gpu') throw new Error(`linear: backend 'gpu' is not available: ${loadNote}`);
    return reference().referenceLinear(w, x, n);
  }
  const gpu = opts.backend === 'gpu' || (opts.backend === 'auto' && process.env.APL_INFER_GPU === '1');
  return a.inferLinear(w, x, n, threads, opts.variant, gpu);
}

const fr = Math.fround;

/** RoPE inverse frequencies as transformers computes them in float32 (linear: ÷ factor; llama3: smoothed). */
export function ropeFrequencies(c: ModelConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = fr(1 / fr(c.ropeTheta ** fr((2 * i) / c.headDim)));
  const sc = c.ropeScaling;
  const kind = String(sc?.type ?? sc?.rope_type ?? 'default');
  if (!sc || kind === 'default' || kind === '') return inv;
  if (kind === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = fr(inv[i] / sc.factor);
    return inv;
  }
  if (kind === 'llama3') {
    const low = Number(sc.low_freq_factor ?? 1);
    const high = Number(sc.high_freq_factor ?? 4);
    const old = Number(sc.original_max_position_embeddings ?? 8192);
    for (let i = 0; i < half; i++) {
      const wave = (2 * Math.PI) / inv[i];
      if (wave > old / low) inv[i] = fr(inv[i] / sc.factor);
      else if (wave >= old / high) {
        const smooth = (old / wave - low) / (high - low);
        inv[i] = fr((1 - smooth) * (inv[i] / sc.factor) + smooth * inv[i]);
      }
    }
    return inv;
  }
  throw new Error(`rope_scaling type '${kind}' is not supported (default, linear and llama3 are)`);
}

/** Why the GPU forward cannot run here ('' when it can): no CUDA in this build, or no usable GPU. */
export function gpuUnavailable(): string {
  const a = addon();
  if (!a) return loadNote ?? 'the native addon is not loaded';
  if (!a.inferInfo().cuda) return 'this build has no CUDA support (nvcc was not found when the addon was built)';
  const g = engineInfo().gpu;
  return g.available ? '' : (g.reason ?? 'no usable GPU');
}

/** A native model, or the reason it could not be made thrown here. */
function built(m: NativeModel): NativeModel {
  const err = m.constructionError?.();
  if (err) {
    m.dispose();
    throw new Error(err);
  }
  return m;
}

/**
 * The GPU model for backend 'gpu' (or an error naming why not) and 'auto' when a GPU is usable (null, and the
 * CPU, when it is not, when the GPU does not reproduce the CPU on this model's kinds of weights (gpu-selftest.ts:
 * 'gpu' then refuses) or when the upload fails: APL_INFER_CPU=1 keeps 'auto' on the CPU); null for 'cpu'.
 */
function onDevice(
  a: InferAddon,
  backend: RunOptions['backend'],
  selfTest: () => string,
  make: () => NativeModel,
): NativeModel | null {
  if (backend !== 'gpu' && (backend !== 'auto' || process.env.APL_INFER_CPU === '1')) return null;
  const why = gpuUnavailable();
  if (why) {
    if (backend === 'gpu') throw new Error(`backend 'gpu' is not available: ${why}`);
    return null;
  }
  const bad = selfTest();
  if (bad) {
    const msg = `${bad} (APL_GPU_SELFTEST=0 skips this check)`;
    if (backend === 'gpu') throw new Error(`backend 'gpu' is not used: ${msg}`);
    if (process.env.APL_QUIET_NATIVE !== '1')
      process.stderr.write(`apl-quant: the GPU is not used: ${msg}; running on the CPU\n`);
    return null;
  }
  try {
    return make();
  } catch (e) {
    if (backend === 'gpu') throw e;
    if (a && process.env.APL_QUIET_NATIVE !== '1')
      process.stderr.write(`apl-quant: the GPU forward failed (${(e as Error).message}); running on the CPU\n`);
    return null;
  }
}

/** The GPU's default prompt piece (RunOptions.prefillChunk): llama.cpp's default micro-batch. */
export const GPU_PREFILL_CHUNK = 512;

export function createModel(config: ModelConfig, weights: ModelWeights, opts: RunOptions): ForwardModel {
  if (!Number.isSafeInteger(opts.contextLength) || opts.contextLength < 1)
    throw new Error(`contextLength must be a positive integer (got ${opts.contextLength})`);
  if (!['llama', 'mistral', 'gemma'].includes(config.family))
    throw new Error(`model family '${config.family}' is not supported (llama, mistral, gemma)`);
  const threads = threadsOf(opts.threads);
  const kvCache = opts.kvCache ?? 'f16';
  const piece = opts.prefillChunk ?? GPU_PREFILL_CHUNK;
  if (!Number.isSafeInteger(piece) || piece < 1)
    throw new Error(`prefillChunk must be a positive integer (got ${opts.prefillChunk})`);
  if (kvCache !== 'f16' && kvCache !== 'f32')
    throw new Error(`kvCache must be 'f16' or 'f32' (got ${String(kvCache)})`);
  const invFreq = ropeFrequencies(config);
  const a = addon();
  if (!a) {
    if (opts.backend === 'gpu') throw new Error(`backend 'gpu' is not available: ${loadNote}`);
    return reference().createReferenceModel(config, weights, opts);
  }
  const cfg = { ...config, contextLength: opts.contextLength, ropeMscale: 1, kvCache };
  // Both the GPU forward and the CPU kernels read kquant weights (kquant_ref.h is the CPU spec).
  const gpuModel = onDevice(
    a,
    opts.backend,
    () => gpuSelfTest(a, config, weights, ropeFrequencies, kvCache),
    () => built(new a.InferModel(cfg, weights, invFreq, threads, undefined, true)),
  );
  const onCpu = () =>
    built(new a.InferModel(cfg, weights, invFreq, threads, process.env.APL_INFER_VARIANT || undefined));
  let m = gpuModel ?? onCpu();
  const vocab = config.vocabSize;
  let info = m.info();
  const onGpu = () => info.backend.startsWith('cuda:');
  /** 'auto' on the GPU: the token at each cached position, to replay on the CPU if the GPU fails (a call past the
   *  context is refused before it is kept). */
  const fallback = opts.backend === 'auto' && onGpu();
  const hist = new Int32Array(fallback ? opts.contextLength : 0);
  /** The tokens in pieces of at most `piece` on the GPU (each appends to the cache): the logits of the whole call. */
  const run = (t: Int32Array, pos: number, allLogits: boolean): Float32Array => {
    if (!onGpu() || t.length <= piece) return m.forward(t, pos, allLogits, vocab);
    const all = allLogits ? new Float32Array(t.length * vocab) : undefined;
    let last: Float32Array = new Float32Array(0);
    for (let s = 0; s < t.length; s += piece) {
      const y = m.forward(t.subarray(s, Math.min(t.length, s + piece)), pos + s, allLogits, vocab);
      if (all) all.set(y, s * vocab);
      else last = y;
    }
    return all ?? last;
  };
  /**
   * 'auto', when the GPU itself fails mid-run (its errors start with "CUDA:"; a bad call is refused on either): the
   * model moves to the CPU, which recomputes the cached positions before pos from the tokens kept, then this call.
   */
  const forwardOrMove = (t: Int32Array, pos: number, allLogits: boolean): Float32Array => {
    try {
      return run(t, pos, allLogits);
    } catch (e) {
      const msg = (e as Error).message;
      if (!fallback || !onGpu() || !msg.startsWith('CUDA:')) throw e;
      if (process.env.APL_QUIET_NATIVE !== '1')
        process.stderr.write(
          `apl-quant: the GPU forward failed (${msg}); running on the CPU from here (${pos} cached positions recomputed)\n`,
        );
      m.dispose();
      m = onCpu();
      info = m.info();
      if (pos > 0) m.forward(hist.subarray(0, pos), 0, false, vocab);
      return run(t, pos, allLogits);
    }
  };
  let disposed = false;
  return {
    get backend() {
      return info.backend;
    },
    get kvBytes() {
      return info.kvBytes;
    },
    forward(tokens: ArrayLike<number>, pos: number, allLogits: boolean): Float32Array {
      if (disposed) throw new Error('forward: the model was disposed');
      if (!Number.isSafeInteger(pos) || pos < 0)
        throw new Error(`forward: pos must be a non-negative integer (got ${pos})`);
      const t = new Int32Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) {
        const v = tokens[i];
        if (!Number.isInteger(v) || v < 0 || v >= vocab)
          throw new Error(`forward: token ${i} is ${v}, outside the vocabulary [0, ${vocab})`);
        t[i] = v;
      }
      if (t.length === 0) throw new Error('forward: no tokens');
      const y = forwardOrMove(t, pos, allLogits);
      if (fallback && onGpu()) hist.set(t, pos);
      return y;
    },
    reset(): void {
      if (!disposed) m.reset();
    },
    dispose(): void {
      if (!disposed) m.dispose();
      disposed = true;
    },
  };
}
