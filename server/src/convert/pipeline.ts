// convertModel: alias | repo id | local folder → <out>/<name>_quantized_q<bits>.npz + _manifest_q<bits>.json +
// _accuracy_q<bits>.json. One tensor at a time (big tensors in row chunks) from the safetensors files through the native
// engine into a streaming NPZ writer, so peak memory follows the largest chunk, not the model. All three outputs are
// written under temporary names and renamed only at the very end; cancellation or any error removes the temporaries
// and leaves an earlier result untouched.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  type Backend,
  DEFAULT_GROUP_SIZE,
  DEFAULT_MODE,
  engineInfo,
  type InputDType,
  type Metrics,
  type Quantized,
  type QuantizeResult,
  qmatmul,
  quantize,
} from '../../../native/index';
import pkg from '../../../package.json';
import {
  type BitWidth,
  MANIFEST_FORMAT_VERSION,
  type Manifest,
  type ModelInfo,
  memberNames,
  type RoundingMode,
  type WeightEntry,
} from '../formats/manifest';
import { NpzWriter } from '../formats/npz';
import { type Checkpoint, openCheckpoint, toF32 } from '../formats/safetensors';
import type { ConvertEvent } from '../protocol';
import { findAlias, isRepoId, slugify } from './aliases';
import { ConvertError, errorCode } from './errors';
import { layerIndex, modelInfoFromConfig } from './families';
import { downloadModel, type HubOptions, resolveToken } from '../hub';
import { planModel, type TensorPlan } from './plan';
import {
  type AccuracyReport,
  DEFAULT_TOLERANCES,
  judge,
  layerAggregates,
  type Tolerances,
  type WeightReport,
  type WeightSums,
} from './report';

export const TOOL_VERSION: string = pkg.version;

export interface ConvertOptions {
  /** An alias (tinyllama, mistral-7b, ...), a Hub repo id (owner/name) or a local folder in the HF layout. */
  source: string;
  bits: BitWidth;
  /** Elements per group along a row, or 'row' (one group per row). Default 64. */
  groupSize?: number | 'row';
  /** Default false (asymmetric: a free zero point per group). */
  symmetric?: boolean;
  /** Default: the engine's DEFAULT_MODE ('optimized'). */
  mode?: RoundingMode;
  /** Bits for embed_tokens and lm_head. Default 8. */
  embeddingsBits?: BitWidth;
  /** dtype of scales and zero points. Default f16 (a tensor whose scales overflow float16 switches to f32 by itself). */
  scaleDtype?: 'f16' | 'f32';
  /** Output folder. Default `models`. */
  outDir?: string;
  /** Output name stem. Default: the alias, or a slug of the repo id / folder name. */
  name?: string;
  backend?: Backend;
  threads?: number;
  revision?: string;
  token?: string;
  /** Replace an existing result. */
  force?: boolean;
  /** No network: the Hub cache only. */
  offline?: boolean;
  tolerance?: Partial<Tolerances>;
  /** Extra Hub options (endpoint, cacheDir, fetch) for tests and the extension. */
  hub?: Pick<HubOptions, 'endpoint' | 'cacheDir' | 'fetch' | 'retries' | 'retryDelayMs'>;
  /** Largest slice of one tensor (source bytes) handled at once. Default 128 MiB. */
  chunkBytes?: number;
  /** Rows of random input for the quantized matrix product check. Default 4. */
  evalInputs?: number;
}

/** What the `result` progress event carries (server/src/protocol.ts), plus the whole accuracy report. */
export type ConvertResultSummary = Omit<Extract<ConvertEvent, { type: 'result' }>, 'type'>;
export interface ConvertResult extends ConvertResultSummary {
  accuracy: AccuracyReport;
}

export interface OutputPaths {
  npz: string;
  manifest: string;
  report: string;
}

export function outputPaths(outDir: string, name: string, bits: number): OutputPaths {
  return {
    npz: join(outDir, `${name}_quantized_q${bits}.npz`),
    manifest: join(outDir, `${name}_manifest_q${bits}.json`),
    report: join(outDir, `${name}_accuracy_q${bits}.json`),
  };
}

const EVAL_SEED = 1234;
const EVAL_MIN_OUTPUTS = 2048;
const EVAL_MAX_INPUTS = 64;
const SRC_DTYPES: Record<string, InputDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const ELEM_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

interface Resolved {
  dir: string;
  name: string;
  source: string;
  revision: string | null;
}

/** Test-only fault injection (APL_TEST_FAULT): `after-tensor:N[:SIGNAL]`, `during-write[:SIGNAL]`, `enospc-after-tensor:N`. */
function faultHook() {
  const spec = process.env.APL_TEST_FAULT;
  if (!spec) return undefined;
  const [point, a, b] = spec.split(':');
  return { point, n: Number(a), signal: (point === 'during-write' ? a : b) || 'SIGKILL' };
}

async function fire(signalName: string, signal?: AbortSignal): Promise<void> {
  process.kill(process.pid, signalName as NodeJS.Signals);
  // Let the signal handler run (it aborts the controller), then notice it like any other cancellation.
  for (let i = 0; i < 50 && !signal?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
}

function cancelled(): ConvertError {
  return new ConvertError('cancelled', 'conversion cancelled; no output was written');
}

function check(signal?: AbortSignal): void {
  if (signal?.aborted) throw cancelled();
}

async function resolveSource(
  o: ConvertOptions,
  emit: (e: ConvertEvent) => void,
  beforeDownload: (name: string) => void,
  signal?: AbortSignal,
): Promise<Resolved> {
  const src = o.source.trim();
  if (!src) throw new ConvertError('invalid-input', 'no model given: pass an alias, a Hub repo id or a local folder');
  let isDir = false;
  try {
    isDir = statSync(src).isDirectory();
  } catch {}
  if (isDir) {
    const dir = resolve(src);
    return { dir, name: o.name ?? slugify(dir), source: dir, revision: null };
  }
  const alias = findAlias(src);
  const repo = alias?.repo ?? (isRepoId(src) ? src : undefined);
  if (!repo) {
    const looksLikePath = /^[./~]|[\\]/.test(src) || src.split('/').length > 2;
    throw new ConvertError(
      'not-found',
      looksLikePath
        ? `${src}: no such folder`
        : `'${src}' is not a known alias (tinyllama, mistral-7b, mistral-7b-instruct, gemma-2b, llama2-7b), a Hub repo id (owner/name) or a local folder`,
    );
  }
  const name = o.name ?? alias?.alias ?? slugify(repo);
  beforeDownload(name);
  emit({ type: 'stage', stage: 'download', message: `${repo}${o.revision ? `@${o.revision}` : ''}` });
  const token = resolveToken(o.token);
  const dl = await downloadModel(repo, {
    ...o.hub,
    token: token ?? '',
    revision: o.revision,
    offline: o.offline,
    signal,
    onProgress: (p) =>
      emit({ type: 'progress', stage: 'download', name: p.file, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
  });
  return { dir: dl.dir, name, source: repo, revision: dl.revision };
}

function readConfig(dir: string): unknown {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) {
    throw new ConvertError(
      'invalid-input',
      `${dir}: not a Hugging Face model folder (config.json missing; expected config.json and *.safetensors)`,
    );
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConvertError('invalid-input', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

function checkSafetensors(dir: string): void {
  const files = readdirSync(dir);
  if (files.some((f) => f.endsWith('.safetensors'))) return;
  const pickles = files.filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f));
  if (pickles.length) {
    throw new ConvertError(
      'unsupported',
      `${dir}: only PyTorch pickle weights (${pickles.join(', ')}); pickle files can run code and are never loaded. ` +
        'Use a revision or a copy of the model with .safetensors weights (many repos have one under refs/pr/…, or convert ' +
        'with `safetensors` convert.py in a sandbox).',
    );
  }
  throw new ConvertError('invalid-input', `${dir}: no .safetensors weights found`);
}

/** Removes temporaries left by a run that was killed (their pid is gone). */
function removeStale(outDir: string, stems: string[]): void {
  let names: string[] = [];
  try {
    names = readdirSync(outDir);
  } catch {
    return;
  }
  for (const f of names) {
    const m = /^\.(.+)\.(?:tmp|staged)-(\d+)(?:\.tmp-\d+(?:-[0-9a-f]+)?)?$/.exec(f);
    if (!m || !stems.includes(m[1])) continue;
    const pid = Number(m[2]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (!alive) {
      try {
        unlinkSync(join(outDir, f));
      } catch {}
    }
  }
}

function ioError(e: unknown, what: string): ConvertError {
  if (e instanceof ConvertError) return e;
  const err = e as NodeJS.ErrnoException;
  const why =
    err?.code === 'ENOSPC'
      ? 'disk full (ENOSPC)'
      : err?.code === 'ENOTDIR'
        ? 'a part of the path is a file, not a folder (ENOTDIR)'
        : err?.code === 'EACCES' || err?.code === 'EPERM'
          ? `permission denied (${err.code})`
          : err?.code === 'EROFS'
            ? 'read-only file system (EROFS)'
            : (err?.message ?? String(e));
  return new ConvertError('io', `${what}: ${why}`);
}

/** The engine refused the data (NaN/Inf, range): an invalid-input error naming the file; cancellation stays that. */
function inputError(e: unknown, file: string, signal?: AbortSignal): unknown {
  if (signal?.aborted || errorCode(e) === 'cancelled') return e;
  return new ConvertError('invalid-input', `${file}: ${(e as Error)?.message ?? String(e)}`);
}

/**
 * Σ‖f_j‖², Σ y² and Σ (y − ŷ)² for y = x · fᵀ (x: n × cols, f: m × cols, ŷ = yq: n × m). A plain function, so V8
 * optimises its loops (it does not inside the async generator); four inputs per pass over a row.
 */
export function productError(
  x: Float32Array,
  n: number,
  f: Float32Array,
  m: number,
  cols: number,
  yq: Float32Array,
): { fSq: number; ySq: number; dySq: number } {
  let fSq = 0;
  for (let i = 0; i < m * cols; i++) fSq += f[i] * f[i];
  let ySq = 0;
  let dySq = 0;
  const ys = new Float64Array(4);
  for (let i = 0; i < n; i += 4) {
    const k = Math.min(4, n - i);
    const x0 = i * cols;
    const x1 = (i + Math.min(1, k - 1)) * cols;
    const x2 = (i + Math.min(2, k - 1)) * cols;
    const x3 = (i + Math.min(3, k - 1)) * cols;
    for (let j = 0; j < m; j++) {
      const fo = j * cols;
      let y0 = 0;
      let y1 = 0;
      let y2 = 0;
      let y3 = 0;
      for (let c = 0; c < cols; c++) {
        const v = f[fo + c];
        y0 += x[x0 + c] * v;
        y1 += x[x1 + c] * v;
        y2 += x[x2 + c] * v;
        y3 += x[x3 + c] * v;
      }
      ys[0] = y0;
      ys[1] = y1;
      ys[2] = y2;
      ys[3] = y3;
      for (let t = 0; t < k; t++) {
        const d = ys[t] - yq[(i + t) * m + j];
        ySq += ys[t] * ys[t];
        dySq += d * d;
      }
    }
  }
  return { fSq, ySq, dySq };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fixed standard-normal inputs, n × cols, the same for every run. */
export function evalInputs(n: number, cols: number, seed = EVAL_SEED): Float32Array {
  const r = mulberry32(seed ^ cols);
  const x = new Float32Array(n * cols);
  for (let i = 0; i < x.length; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    x[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < x.length) x[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return x;
}

/** Σ w² of raw F32/F16/BF16 bytes, in blocks (bf16 widened by a shift, no per-element conversion calls). */
export function sumSquares(raw: Uint8Array, dtype: 'F32' | 'F16' | 'BF16'): number {
  let sum = 0;
  if (dtype === 'BF16') {
    const aligned = raw.byteOffset % 2 === 0 ? raw : raw.slice();
    const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 1);
    const BLOCK = 1 << 16;
    const u32 = new Uint32Array(BLOCK);
    const f32 = new Float32Array(u32.buffer);
    for (let b = 0; b < u16.length; b += BLOCK) {
      const m = Math.min(BLOCK, u16.length - b);
      for (let i = 0; i < m; i++) u32[i] = u16[b + i] << 16;
      let s = 0;
      for (let i = 0; i < m; i++) s += f32[i] * f32[i];
      sum += s;
    }
    return sum;
  }
  const f = toF32(raw, dtype);
  for (let i = 0; i < f.length; i++) sum += f[i] * f[i];
  return sum;
}

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
const finite = (v: number, dflt: number) => (Number.isFinite(v) ? v : dflt);

interface Accumulated {
  /** Σw² over all rows, summed exactly when the tensor is split into chunks. */
  refSq: number;
  /** Σw² over the sampled rows. */
  sampleSq: number;
  errSq: number;
  cosW: number;
  maxAbs: number;
  ySq: number;
  dySq: number;
  chunks: number;
  first?: Metrics;
}

type QuantPlan = Extract<TensorPlan, { kind: 'quantize' }>;
type ChunkJob = Promise<{ raw: Buffer; res: QuantizeResult }>;

function rowsPerChunkFor(p: QuantPlan, chunkBytes: number): number {
  return Math.max(1, Math.min(p.rows, Math.floor(chunkBytes / (p.cols * ELEM_BYTES[p.dtype]))));
}

/** Reads rows [r0, r0 + count) of a tensor and quantizes them (the engine works on its own threads). */
function startChunk(
  ctx: { ck: Checkpoint; o: ConvertOptions; signal?: AbortSignal },
  p: QuantPlan,
  r0: number,
  count: number,
  scaleDtype: 'f16' | 'f32',
): ChunkJob {
  const job = (async () => {
    const raw = await ctx.ck.readRows(p.name, r0, count);
    const res = await quantize({
      bits: p.bits,
      groupSize: p.groupSize,
      symmetric: p.symmetric,
      mode: p.mode,
      scaleDtype,
      data: raw,
      dtype: SRC_DTYPES[p.dtype],
      rows: count,
      cols: p.cols,
      backend: ctx.o.backend,
      threads: ctx.o.threads,
      name: p.name,
      metrics: true,
      signal: ctx.signal,
    });
    return { raw, res };
  })();
  job.catch(() => {}); // a prefetch nobody awaits (cancelled run) must not become an unhandled rejection
  return job;
}

/** One slot: the next tensor's first chunk, started early. */
class Prefetch {
  private name?: string;
  private job?: ChunkJob;
  put(name: string, job: ChunkJob): void {
    this.name = name;
    this.job = job;
  }
  take(name: string): ChunkJob | undefined {
    if (this.name !== name) return undefined;
    const j = this.job;
    this.name = undefined;
    this.job = undefined;
    return j;
  }
}

/**
 * Quantizes one tensor chunk by chunk, streaming q into the NPZ; scales and zero points (small) are written after it.
 * Returns the manifest entry and the weight's accuracy.
 */
async function quantizeTensor(
  p: QuantPlan,
  ctx: {
    ck: Checkpoint;
    writer: NpzWriter;
    o: ConvertOptions;
    chunkBytes: number;
    nEval: number;
    scaleDtype: 'f16' | 'f32';
    /** The safetensors file holding the tensor, for messages. */
    file: string;
    signal?: AbortSignal;
    onRows: (rowsDone: number) => void;
    backendSeen: (b: string) => void;
    /** Shared one-slot prefetch: the next tensor's first chunk is read and quantized while this one is checked. */
    prefetch: Prefetch;
    /** The next tensor to quantize, if any. */
    next?: QuantPlan;
  },
): Promise<{ scales: Uint8Array[]; zeros: Uint8Array[]; acc: Accumulated; crcQ: number; scaleDtype: 'f16' | 'f32' }> {
  const { rows, cols, bits, groupSize } = p;
  const rowBytes = cols * ELEM_BYTES[p.dtype];
  const rowsPerChunk = rowsPerChunkFor(p, ctx.chunkBytes);
  // The output check: n fixed random inputs against an evenly spaced sample of rows, enough for EVAL_MIN_OUTPUTS
  // products per weight (all rows of small weights, with more inputs, at most EVAL_MAX_INPUTS), so its cost is
  // bounded per weight instead of growing with the model.
  const n = Math.max(ctx.nEval, Math.min(EVAL_MAX_INPUTS, Math.ceil(EVAL_MIN_OUTPUTS / rows)));
  const sampleRows = Math.min(rows, Math.ceil(EVAL_MIN_OUTPUTS / n));
  const sampled = (r: number) => {
    // Row r is sampled when it is floor(k · rows / sampleRows) for some k.
    const k = Math.ceil((r * sampleRows) / rows);
    return Math.floor((k * rows) / sampleRows) === r;
  };
  const x = evalInputs(n, cols);
  const packed = Math.ceil((cols * bits) / 8);
  const groups = Math.ceil(cols / groupSize);
  let gBytes = groups * (ctx.scaleDtype === 'f32' ? 4 : 2);
  const acc: Accumulated = { refSq: 0, sampleSq: 0, errSq: 0, cosW: 0, maxAbs: 0, ySq: 0, dySq: 0, chunks: 0 };
  const chunked = rowsPerChunk < rows;
  const scales: Uint8Array[] = [];
  const zeros: Uint8Array[] = [];
  const params = {
    bits,
    groupSize,
    symmetric: p.symmetric,
    mode: p.mode,
    scaleDtype: ctx.scaleDtype,
  };
  let job = ctx.prefetch.take(p.name) ?? startChunk(ctx, p, 0, Math.min(rowsPerChunk, rows), params.scaleDtype);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      check(ctx.signal);
      const count = Math.min(rowsPerChunk, rows - r0);
      let raw: Buffer;
      let res: QuantizeResult;
      try {
        ({ raw, res } = await job);
      } catch (e) {
        // Scales beyond float16's range: switch this tensor to float32 scales if nothing of it is written yet.
        if (!(r0 === 0 && params.scaleDtype === 'f16' && /scaleDtype 'f32'/.test(String((e as Error)?.message)))) {
          throw inputError(e, ctx.file, ctx.signal);
        }
        params.scaleDtype = 'f32';
        gBytes = groups * 4;
        ({ raw, res } = await startChunk(ctx, p, 0, count, 'f32').catch((e2) => {
          throw inputError(e2, ctx.file, ctx.signal);
        }));
      }
      // Keep the engine busy while this chunk is checked and written: start the next chunk (or tensor) now.
      const nr0 = r0 + rowsPerChunk;
      if (nr0 < rows) job = startChunk(ctx, p, nr0, Math.min(rowsPerChunk, rows - nr0), params.scaleDtype);
      else if (ctx.next) {
        const nx = ctx.next;
        ctx.prefetch.put(
          nx.name,
          startChunk(ctx, nx, 0, Math.min(rowsPerChunkFor(nx, ctx.chunkBytes), nx.rows), ctx.scaleDtype),
        );
      }
      ctx.backendSeen(res.backend);
      // Exact only when the tensor is split (to combine the chunks' metrics); otherwise estimated from sampled rows.
      const refSq = chunked ? sumSquares(raw, p.dtype) : 0;
      // The sampled rows of this chunk: float product x · Wᵀ here, x · Ŵᵀ from the engine's qmatmul.
      const picked: number[] = [];
      for (let r = 0; r < count; r++) if (sampled(r0 + r)) picked.push(r);
      if (picked.length) {
        const m = picked.length;
        const sub: Quantized = {
          ...params,
          q: new Uint8Array(m * packed),
          scales: new Uint8Array(m * gBytes),
          zeros: new Uint8Array(m * gBytes),
          rows: m,
          cols,
        };
        const f = new Float32Array(m * cols);
        picked.forEach((r, j) => {
          sub.q.set(res.q.subarray(r * packed, (r + 1) * packed), j * packed);
          sub.scales.set(res.scales.subarray(r * gBytes, (r + 1) * gBytes), j * gBytes);
          sub.zeros.set(res.zeros.subarray(r * gBytes, (r + 1) * gBytes), j * gBytes);
          f.set(toF32(raw.subarray(r * rowBytes, (r + 1) * rowBytes), p.dtype), j * cols);
        });
        const yq = qmatmul(x, n, sub);
        const e = productError(x, n, f, m, cols, yq);
        acc.sampleSq += e.fSq;
        acc.ySq += e.ySq;
        acc.dySq += e.dySq;
      }
      const m = res.metrics;
      if (!m) throw new ConvertError('internal', `${p.name}: the engine returned no metrics`);
      acc.first ??= m;
      acc.refSq += refSq;
      acc.errSq += m.relError * m.relError * refSq;
      acc.cosW += m.cosine * refSq;
      acc.maxAbs = Math.max(acc.maxAbs, m.maxAbsError);
      acc.chunks++;
      scales.push(res.scales);
      zeros.push(res.zeros);
      ctx.onRows(r0 + count);
      yield res.q;
    }
  }
  const { crc32 } = await ctx.writer.addArray(
    memberNames(p.name, bits).q,
    { dtype: 'uint8', shape: [rows, Math.ceil((cols * bits) / 8)] },
    chunks(),
  );
  // ‖W‖² for the layer aggregates: exact for split tensors and for fully sampled ones, else estimated from the sample.
  if (!chunked) acc.refSq = (acc.sampleSq * rows) / sampleRows;
  return { scales, zeros, acc, crcQ: crc32, scaleDtype: params.scaleDtype };
}

export async function convertModel(
  o: ConvertOptions,
  emit: (e: ConvertEvent) => void,
  signal?: AbortSignal,
): Promise<ConvertResult> {
  const t0 = performance.now();
  const fault = faultHook();
  const groupSize = o.groupSize ?? DEFAULT_GROUP_SIZE;
  const mode = o.mode ?? DEFAULT_MODE;
  const symmetric = o.symmetric ?? false;
  const embeddingsBits = o.embeddingsBits ?? 8;
  const scaleDtype = o.scaleDtype ?? 'f16';
  const tol: Tolerances = { ...DEFAULT_TOLERANCES, ...o.tolerance };
  const chunkBytes = Math.max(1, o.chunkBytes ?? 128 * 1024 * 1024);
  const nEval = Math.max(1, Math.floor(o.evalInputs ?? 4));
  if (![1, 2, 4, 8].includes(o.bits))
    throw new ConvertError('invalid-input', `--bits must be 1, 2, 4 or 8 (got ${o.bits})`);
  if (![1, 2, 4, 8].includes(embeddingsBits)) {
    throw new ConvertError('invalid-input', `--embeddings-bits must be 1, 2, 4 or 8 (got ${embeddingsBits})`);
  }
  if (groupSize !== 'row' && !(Number.isInteger(groupSize) && groupSize >= 1)) {
    throw new ConvertError('invalid-input', `--group-size must be a positive integer or 'row' (got ${groupSize})`);
  }
  const outDir = resolve(o.outDir ?? 'models');
  const info = engineInfo();
  emit({
    type: 'start',
    model: o.source,
    bits: o.bits,
    out: outDir,
    backend: o.backend ?? 'auto',
    version: TOOL_VERSION,
  });
  emit({ type: 'stage', stage: 'resolve', message: o.source });
  check(signal);

  // The output name is known before any download, so an existing result is refused before any work.
  const res = await resolveSource(
    o,
    emit,
    (name) => {
      if (!o.force) refuseExisting(outputPaths(outDir, name, o.bits));
    },
    signal,
  );
  check(signal);
  const paths = outputPaths(outDir, res.name, o.bits);
  if (!o.force) refuseExisting(paths);
  const model: ModelInfo = modelInfoFromConfig(readConfig(res.dir), res.name, join(res.dir, 'config.json'));
  model.source = res.source;
  if (res.revision) model.revision = res.revision;
  checkSafetensors(res.dir);

  try {
    mkdirSync(outDir, { recursive: true });
    if (!statSync(outDir).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
  } catch (e) {
    throw ioError(e, `cannot create the output folder ${outDir}`);
  }
  const stems = [basename(paths.npz), basename(paths.manifest), basename(paths.report)];
  removeStale(outDir, stems);
  const tmp = {
    npz: join(outDir, `.${stems[0]}.staged-${process.pid}`),
    manifest: join(outDir, `.${stems[1]}.tmp-${process.pid}`),
    report: join(outDir, `.${stems[2]}.tmp-${process.pid}`),
  };

  const ck = await openCheckpoint(res.dir);
  let writer: NpzWriter | undefined;
  let finished = false;
  try {
    const plans = planModel(ck.tensors, { bits: o.bits, groupSize, symmetric, mode, embeddingsBits });
    const quantCount = plans.filter((p) => p.kind === 'quantize').length;
    if (!quantCount) {
      throw new ConvertError(
        'unsupported',
        `${res.dir}: No quantized data extracted: ${ck.tensors.length} tensors, none of them a 2-D float weight`,
      );
    }
    const byName = new Map(ck.tensors.map((t) => [t.name, t]));
    const sourceBytes = ck.tensors.reduce((a, t) => a + t.byteLength, 0);
    const totalParams = ck.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    try {
      writer = await NpzWriter.create(tmp.npz);
    } catch (e) {
      throw ioError(e, `cannot write to ${outDir}`);
    }
    emit({ type: 'stage', stage: 'quantize', message: `${plans.length} tensors, ${quantCount} quantized` });
    const entries: WeightEntry[] = [];
    const weights: WeightReport[] = [];
    const sums = new Map<string, WeightSums>();
    const backends = new Set<string>();
    let bytesDone = 0;
    const prefetch = new Prefetch();
    for (let i = 0; i < plans.length; i++) {
      check(signal);
      const p = plans[i];
      const t = byName.get(p.name)!;
      const layer = layerIndex(p.name);
      const progress = (done: number) =>
        emit({
          type: 'progress',
          stage: 'quantize',
          tensor: i,
          tensors: plans.length,
          name: p.name,
          bytesDone: Math.min(sourceBytes, done),
          bytesTotal: sourceBytes,
        });
      try {
        if (p.kind === 'keep') {
          const raw = await ck.readRaw(p.name);
          const f = p.dtype === 'BF16' ? toF32(raw, 'BF16') : undefined;
          const data = f ? new Uint8Array(f.buffer, f.byteOffset, f.byteLength) : raw;
          const names = memberNames(p.name, null);
          const { crc32 } = await writer.addArray(names.q, { dtype: p.storeDtype, shape: p.shape }, [data]);
          entries.push({
            name: p.name,
            shape: p.shape,
            bit_width: p.bits,
            q: names.q,
            q_scales: null,
            q_zero_point: null,
            quantization: { type: 'none', bits: p.bits, method: 'none' },
            source: { tensor: p.name, dtype: t.dtype, file: basename(t.file) },
            ...(layer !== undefined ? { layer } : {}),
            checksums: { q: hex(crc32) },
          });
        } else {
          const rowBytes = p.cols * ELEM_BYTES[p.dtype];
          const start = bytesDone;
          const r = await quantizeTensor(p, {
            ck,
            writer,
            o,
            chunkBytes,
            nEval,
            scaleDtype,
            file: join(res.dir, basename(t.file)),
            signal,
            onRows: (rowsDone) => {
              if (p.rows > 0 && rowsDone < p.rows) progress(start + rowsDone * rowBytes);
            },
            backendSeen: (b) => backends.add(b),
            prefetch,
            next: plans.slice(i + 1).find((x): x is QuantPlan => x.kind === 'quantize'),
          });
          const names = memberNames(p.name, p.bits);
          const groups = Math.ceil(p.cols / p.groupSize);
          const npScale = r.scaleDtype === 'f32' ? 'float32' : 'float16';
          const s = await writer.addArray(names.q_scales!, { dtype: npScale, shape: [p.rows, groups] }, r.scales);
          const z = await writer.addArray(names.q_zero_point!, { dtype: npScale, shape: [p.rows, groups] }, r.zeros);
          const a = r.acc;
          const single = a.chunks === 1 && a.first;
          const zeroTensor = a.refSq === 0 && a.maxAbs === 0;
          const rel = zeroTensor ? 0 : single ? a.first!.relError : Math.sqrt(a.errSq / a.refSq);
          const snr = zeroTensor ? 999 : single ? a.first!.snrDb : -20 * Math.log10(rel);
          const cos = zeroTensor ? 1 : single ? a.first!.cosine : a.cosW / a.refSq;
          const outRel = a.ySq > 0 ? Math.sqrt(a.dySq / a.ySq) : a.dySq === 0 ? 0 : Number.POSITIVE_INFINITY;
          const tolerance = tol[p.bits];
          const pass = judge(rel, outRel, tolerance);
          const accuracy = {
            rel_error: finite(rel, 1e9),
            snr_db: finite(snr, rel === 0 ? 999 : -999),
            cosine: finite(cos, 0),
            max_abs_error: finite(a.maxAbs, 1e9),
            output_rel_error: finite(outRel, 1e9),
            pass,
          };
          sums.set(p.name, { refSq: a.refSq });
          weights.push({
            name: p.name,
            bits: p.bits,
            group_size: p.groupSize,
            shape: p.shape,
            params: p.rows * p.cols,
            layer: layer ?? null,
            ...accuracy,
            tolerance,
          });
          entries.push({
            name: p.name,
            shape: p.shape,
            bit_width: p.bits,
            q: names.q,
            q_scales: names.q_scales,
            q_zero_point: names.q_zero_point,
            quantization: {
              type: p.type,
              bits: p.bits,
              method: p.method,
              group_size: p.groupSize,
              scale_dtype: npScale,
              rounding: p.mode,
            },
            source: { tensor: p.name, dtype: t.dtype, file: basename(t.file) },
            ...(layer !== undefined ? { layer } : {}),
            checksums: { q: hex(r.crcQ), q_scales: hex(s.crc32), q_zero_point: hex(z.crc32) },
            accuracy,
          });
        }
      } catch (e) {
        if (signal?.aborted) throw cancelled();
        if (e instanceof ConvertError) throw e;
        const code = errorCode(e);
        if (code === 'io') throw ioError(e, `writing ${paths.npz}`);
        if (code === 'cancelled') throw cancelled();
        throw e;
      }
      bytesDone += t.byteLength;
      progress(bytesDone);
      if (fault?.point === 'after-tensor' && fault.n === i + 1) await fire(fault.signal, signal);
      if (fault?.point === 'enospc-after-tensor' && fault.n === i + 1) {
        throw ioError(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }), `writing ${paths.npz}`);
      }
    }
    check(signal);

    emit({ type: 'stage', stage: 'write', message: paths.npz });
    try {
      await writer.close();
    } catch (e) {
      throw ioError(e, `writing ${paths.npz}`);
    }
    writer = undefined;
    const outputBytes = statSync(tmp.npz).size;
    const seconds = (performance.now() - t0) / 1000;
    const failed = weights.filter((w) => !w.pass);
    const worst = weights.reduce<WeightReport | null>(
      (m, w) => (!m || w.rel_error / w.tolerance > m.rel_error / m.tolerance ? w : m),
      null,
    );
    const backend = [...backends].join('+') || (info.native ? 'cpu' : 'reference');
    const bitsPerWeight = (outputBytes * 8) / Math.max(1, totalParams);
    const report: AccuracyReport = {
      model: res.name,
      source: res.source,
      revision: res.revision,
      bits: o.bits,
      group_size: groupSize,
      symmetric,
      mode,
      embeddings_bits: embeddingsBits,
      tool_version: TOOL_VERSION,
      backend,
      seconds,
      sizes: {
        source_bytes: sourceBytes,
        output_bytes: outputBytes,
        bits_per_weight: bitsPerWeight,
        params: totalParams,
      },
      tolerance: tol,
      evaluation: {
        inputs: nEval,
        min_outputs: EVAL_MIN_OUTPUTS,
        max_inputs: EVAL_MAX_INPUTS,
        rows: 'all rows when rows × inputs ≤ min_outputs, else an evenly spaced sample giving min_outputs products',
        seed: EVAL_SEED,
        metric: 'output_rel_error = ‖x·Ŵᵀ − x·Wᵀ‖ / ‖x·Wᵀ‖, x ~ N(0, 1) fixed; rel_error = ‖W − Ŵ‖ / ‖W‖',
      },
      pass: failed.length === 0,
      summary: {
        weights: weights.length,
        passed: weights.length - failed.length,
        failed: failed.length,
        kept_float: plans.length - quantCount,
        worst: worst?.name ?? null,
      },
      weights,
      layers: layerAggregates(weights, sums),
    };
    emit({
      type: 'stage',
      stage: 'validate',
      message: `${report.summary.passed}/${weights.length} weights within tolerance${report.pass ? '' : ` (${failed.length} over)`}`,
    });
    const manifest: Manifest = {
      format_version: MANIFEST_FORMAT_VERSION,
      model,
      weights: entries,
      metadata: {
        npz: basename(paths.npz),
        created_by: `apl-quant ${TOOL_VERSION}`,
        created_at: new Date().toISOString(),
        accuracy_report: basename(paths.report),
        default_bits: o.bits,
        default_group_size: groupSize,
        embeddings_bits: embeddingsBits,
        total_params: totalParams,
        source_bytes: sourceBytes,
        output_bytes: outputBytes,
        bits_per_weight: bitsPerWeight,
        backend,
        accuracy_pass: report.pass,
      },
    };
    try {
      writeFileSync(tmp.report, `${JSON.stringify(report, null, 2)}\n`);
      writeFileSync(tmp.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    } catch (e) {
      throw ioError(e, `writing ${paths.manifest}`);
    }
    if (fault?.point === 'during-write') await fire(fault.signal, signal);
    check(signal);
    // The commit point: three renames with no await between them, the manifest (the entry point) last.
    try {
      renameSync(tmp.npz, paths.npz);
      renameSync(tmp.report, paths.report);
      renameSync(tmp.manifest, paths.manifest);
    } catch (e) {
      throw ioError(e, `renaming into ${outDir}`);
    }
    finished = true;
    const summary: ConvertResultSummary = {
      ...paths,
      pass: report.pass,
      bitsPerWeight,
      outputBytes,
      sourceBytes,
      seconds,
    };
    emit({ type: 'result', ...summary });
    const result: ConvertResult = { ...summary, accuracy: report };
    emit({ type: 'stage', stage: 'done' });
    return result;
  } finally {
    await ck.close().catch(() => {});
    if (!finished) {
      if (writer) await writer.abort().catch(() => {});
      for (const f of Object.values(tmp)) {
        try {
          unlinkSync(f);
        } catch {}
      }
    }
  }
}

function refuseExisting(paths: OutputPaths): void {
  const existing = Object.values(paths).filter((p) => existsSync(p));
  if (existing.length) {
    throw new ConvertError('exists', `${existing[0]} already exists; pass --force to replace it`);
  }
}
