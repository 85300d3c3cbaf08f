// One tensor through the engine: read in row chunks, quantized (the engine works on its own threads), q streamed
// into the NPZ while scales and zero points are collected; the sampled rows' matrix product checked on the way. The
// next chunk, or the next tensor's first chunk (a one-slot prefetch), is started before the current one is checked
// and written, so the engine stays busy. A tensor whose scales overflow float16 switches to float32 scales.
import {
  type Backend,
  engineChunkRows,
  type InputDType,
  type MetricsSums,
  type OutputCheckRequest,
  type Quantized,
  type QuantizeResult,
  qmatmul,
  quantize,
} from '../../../native/index';
import { memberNames } from '../formats/manifest';
import type { NpzWriter } from '../formats/npz';
import { type Checkpoint, toF32 } from '../formats/safetensors';
import {
  type Accumulated,
  addChunk,
  type ChunkCheck,
  emptyAccumulated,
  evalInputs,
  evalSample,
  finishAccumulated,
  floatProducts,
} from './accuracy';
import type { Prefetch } from './buffer-pool';
import { ConvertError, inputError, isScaleOverflow, throwIfCancelled } from './errors';
import type { QuantPlan } from './plan';
import { span, traced } from './trace';

const SRC_DTYPES: Record<string, InputDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
/** Source bytes per element, by safetensors dtype. */
export const ELEM_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

type ChunkJob = Promise<{ raw: Buffer; res: QuantizeResult; check: OutputCheckRequest }>;

/**
 * Rows per chunk of a tensor: as many as fit in chunkBytes (at least one), rounded down to a multiple of the engine's
 * own chunk of rows where at least one fits, so every chunk starts where one call over the whole tensor would start
 * an engine chunk, and the chunks' continued metrics are that call's to the last bit (native/load.ts MetricsSums).
 */
export function rowsPerChunkFor(p: QuantPlan, chunkBytes: number): number {
  const fit = Math.max(1, Math.min(p.rows, Math.floor(chunkBytes / (p.cols * ELEM_BYTES[p.dtype]))));
  const unit = engineChunkRows(p.cols);
  return fit >= unit && fit < p.rows ? fit - (fit % unit) : fit;
}

/** Where a tensor's chunk continues from: the metrics' sums and the Σ‖f‖² chain of the chunks before it. */
export interface ChunkFrom {
  sums?: MetricsSums;
  fSq: number;
}

/**
 * The output check the engine computes for rows [r0, r0 + count): its sampled rows, the Σ‖f‖² chain continued from
 * the chunks before, and arrays for the products (n × sampled rows), summed over all chunks at the end.
 */
export function checkFor(p: QuantPlan, r0: number, count: number, nEval: number, fSqFrom = 0): OutputCheckRequest {
  const { n, sampled } = evalSample(p.rows, nEval);
  const picked: number[] = [];
  for (let r = 0; r < count; r++) if (sampled(r0 + r)) picked.push(r);
  return {
    x: evalInputs(n, p.cols),
    n,
    rows: Int32Array.from(picked),
    fSqFrom,
    y: new Float64Array(n * picked.length),
    yq: new Float32Array(n * picked.length),
  };
}

/** A chunk's output check as the engine gave it (into the request's arrays), or undefined (the reference ran). */
export function engineCheck(res: { check?: { fSq: number } }, req: OutputCheckRequest): ChunkCheck | undefined {
  if (!res.check || !req.y || !req.yq) return undefined;
  return { fSq: res.check.fSq, m: req.rows.length, y: req.y, yq: req.yq };
}

/** What a chunk job needs from the stage, for either engine. */
export interface ChunkSource {
  ck: Checkpoint;
  backend?: Backend;
  threads?: number;
  signal?: AbortSignal;
  nEval: number;
  chunkBytes: number;
  prefetch: Prefetch;
}

/** What quantizing one tensor needs from the stage, for either engine. */
export interface TensorContext extends ChunkSource {
  writer: NpzWriter;
  /** The safetensors file holding the tensor, for messages. */
  file: string;
  onRows: (rowsDone: number) => void;
  backendSeen: (b: string) => void;
  /**
   * The next tensor to quantize, if any: its first chunk is started while this one is written, when it is of the
   * path's own type (any for the groupwise path, a kquant one for the kquant path).
   */
  next?: QuantPlan;
  /** The next tensor to quantize, of either type, started through prefetch.startFirst (the stage's way). */
  following?: QuantPlan;
}

/**
 * After a chunk (rows from r0 on are left): the tensor's next chunk, returned; or, at its end, the next tensor's
 * first chunk put in the prefetch slot: `ctx.next` through `start` when `own` takes it, else `ctx.following` through
 * the stage's prefetch.startFirst. Started before the current chunk is written, so the engine stays busy.
 */
export function startNext<J extends Promise<unknown>>(
  ctx: TensorContext,
  p: QuantPlan,
  r0: number,
  rowsPerChunk: number,
  start: (q: QuantPlan, r0: number, count: number) => J,
  own: (q: QuantPlan) => boolean,
): J | undefined {
  if (r0 < p.rows) return start(p, r0, Math.min(rowsPerChunk, p.rows - r0));
  if (ctx.next && own(ctx.next)) {
    const nx = ctx.next;
    ctx.prefetch.put(nx.name, start(nx, 0, Math.min(rowsPerChunkFor(nx, ctx.chunkBytes), nx.rows)));
  } else if (ctx.following && ctx.prefetch.startFirst) {
    ctx.prefetch.put(ctx.following.name, ctx.prefetch.startFirst(ctx.following));
  }
  return undefined;
}

/** Hands a chunk's q to the NPZ writer (yielded to it), after reporting the rows done; then gives the buffer back. */
export async function* writeChunk(ctx: TensorContext, p: QuantPlan, rowsDone: number, q: Uint8Array) {
  ctx.onRows(rowsDone);
  const tw = performance.now();
  yield q;
  span('write', tw, p.name);
  ctx.prefetch.buffers.give(q); // written: the writer is done with it
}

/**
 * The output check of a chunk in TypeScript (the reference engine leaves it out): the sampled rows' float products and
 * the Σ‖f‖² chain continued from fSqFrom (accuracy.ts floatProducts), and ŷ from `quantized` (given the picked rows'
 * indices in the chunk: their products with x through the dequantized rows, n × picked).
 */
export function sampledCheck(
  raw: Uint8Array,
  dtype: QuantPlan['dtype'],
  cols: number,
  r0: number,
  count: number,
  x: Float32Array,
  n: number,
  sampled: (r: number) => boolean,
  fSqFrom: number,
  quantized: (picked: number[]) => Float32Array,
): ChunkCheck {
  const { picked, f } = sampledRows(raw, dtype, cols, r0, count, sampled);
  if (!picked.length) return { fSq: fSqFrom, m: 0, y: new Float64Array(0), yq: new Float32Array(0) };
  const e = floatProducts(x, n, f, picked.length, cols, fSqFrom);
  return { fSq: e.fSq, m: picked.length, y: e.y, yq: quantized(picked) };
}

/** The TypeScript output check's rows: the chunk's sampled rows (indices in the chunk) and their values as float32. */
export function sampledRows(
  raw: Uint8Array,
  dtype: QuantPlan['dtype'],
  cols: number,
  r0: number,
  count: number,
  sampled: (r: number) => boolean,
): { picked: number[]; f: Float32Array } {
  const rowBytes = cols * ELEM_BYTES[dtype];
  const picked: number[] = [];
  for (let r = 0; r < count; r++) if (sampled(r0 + r)) picked.push(r);
  const f = new Float32Array(picked.length * cols);
  picked.forEach((r, j) => {
    f.set(toF32(raw.subarray(r * rowBytes, (r + 1) * rowBytes), dtype), j * cols);
  });
  return { picked, f };
}

/**
 * Reads rows [r0, r0 + count) of a tensor into a pooled buffer, with the job options both engines (groupwise and
 * kquant) take for them: the rows, threads, metrics, the fused output check and cancellation.
 */
export function readChunk(ctx: ChunkSource, p: QuantPlan, r0: number, count: number, from?: ChunkFrom) {
  const rows =
    ctx.prefetch.readAhead?.readNow(p.name, r0, count) ??
    traced('read', p.name, () =>
      ctx.ck.readRows(p.name, r0, count, ctx.prefetch.buffers.take(count * p.cols * ELEM_BYTES[p.dtype])),
    );
  // Made while a read is in flight: the check's inputs cost ≈ 10 ms the first time for a shape (cold code).
  const options = chunkOptions(ctx, p, r0, count, from);
  return rows instanceof Promise
    ? rows.then((raw) => ({ raw, options: { ...options, data: raw } }))
    : { raw: rows, options: { ...options, data: rows } };
}

/** The job options both engines take for a chunk's rows, but the rows themselves. */
function chunkOptions(ctx: ChunkSource, p: QuantPlan, r0: number, count: number, from?: ChunkFrom) {
  return {
    dtype: SRC_DTYPES[p.dtype],
    rows: count,
    cols: p.cols,
    backend: ctx.backend,
    threads: ctx.threads,
    name: p.name,
    metrics: true,
    ...(from?.sums ? { metricsFrom: from.sums } : {}),
    check: checkFor(p, r0, count, ctx.nEval, from?.fSq),
    signal: ctx.signal,
  };
}

/** Reads rows [r0, r0 + count) of a tensor and quantizes them (the engine works on its own threads). */
export function startChunk(
  ctx: ChunkSource,
  p: QuantPlan,
  r0: number,
  count: number,
  scaleDtype: 'f16' | 'f32',
  from?: ChunkFrom,
): ChunkJob {
  const job = (async () => {
    const read = readChunk(ctx, p, r0, count, from);
    // Rows already read go to the engine in this turn (readNow); an await would queue the call behind the writer.
    const { raw, options } = read instanceof Promise ? await read : read;
    const t0 = performance.now();
    const g = count * Math.ceil(p.cols / p.groupSize) * (scaleDtype === 'f32' ? 4 : 2);
    const [scalesInto, zerosInto] = ctx.prefetch.sideArrays([g, g]);
    const res = await quantize({
      ...options,
      bits: p.bits,
      groupSize: p.groupSize,
      symmetric: p.symmetric,
      mode: p.mode,
      scaleDtype,
      qInto: ctx.prefetch.buffers.take(count * Math.ceil((p.cols * p.bits) / 8)),
      scalesInto,
      zerosInto,
    });
    span('kernel', t0, p.name);
    return { raw, res, check: options.check };
  })();
  job.catch(() => {}); // a prefetch nobody awaits (cancelled run) must not become an unhandled rejection
  return job;
}

/**
 * Quantizes one tensor chunk by chunk, streaming q into the NPZ. Returns q's CRC-32, the scales and zero points
 * (small; the caller writes them after q), the scale dtype used, and the sums the weight's accuracy comes from.
 */
export async function quantizeTensor(
  p: QuantPlan,
  ctx: TensorContext & { scaleDtype: 'f16' | 'f32' },
): Promise<{ scales: Uint8Array[]; zeros: Uint8Array[]; acc: Accumulated; crcQ: number; scaleDtype: 'f16' | 'f32' }> {
  const { rows, cols, bits, groupSize } = p;
  const rowsPerChunk = rowsPerChunkFor(p, ctx.chunkBytes);
  const { n, sampleRows, sampled } = evalSample(rows, ctx.nEval);
  const packed = Math.ceil((cols * bits) / 8);
  const groups = Math.ceil(cols / groupSize);
  let gBytes = groups * (ctx.scaleDtype === 'f32' ? 4 : 2);
  const acc = emptyAccumulated();
  const scales: Uint8Array[] = [];
  const zeros: Uint8Array[] = [];
  const params = {
    bits,
    groupSize,
    symmetric: p.symmetric,
    mode: p.mode,
    scaleDtype: ctx.scaleDtype,
  };
  let job =
    ctx.prefetch.take<Awaited<ChunkJob>>(p.name) ??
    startChunk(ctx, p, 0, Math.min(rowsPerChunk, rows), params.scaleDtype);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      throwIfCancelled(ctx.signal);
      const count = Math.min(rowsPerChunk, rows - r0);
      let raw: Buffer;
      let res: QuantizeResult;
      let req: OutputCheckRequest;
      try {
        ({ raw, res, check: req } = await job);
      } catch (e) {
        // Scales beyond float16's range: switch this tensor to float32 scales if nothing of it is written yet.
        if (!(r0 === 0 && params.scaleDtype === 'f16' && isScaleOverflow(e))) {
          throw inputError(e, ctx.file, ctx.signal);
        }
        params.scaleDtype = 'f32';
        gBytes = groups * 4;
        ({
          raw,
          res,
          check: req,
        } = await startChunk(ctx, p, 0, count, 'f32').catch((e2) => {
          throw inputError(e2, ctx.file, ctx.signal);
        }));
      }
      // The sampled rows' products and the Σ‖f‖² chain: the engine computes them on its threads; the TypeScript
      // reference engine leaves them to accuracy.ts, with the same arithmetic.
      const w = { ...params, dtype: p.dtype, cols, packed, gBytes };
      const c =
        engineCheck(res, req) ?? checkInTs(raw, res, w, r0, count, evalInputs(n, cols), n, sampled, acc.sampleSq);
      // The source rows are done with before the next chunk is read: it can take their buffer, so a tensor split
      // in chunks holds one chunk of rows, not two (peak RSS: issue 13's 512 MB at 7B shapes).
      ctx.prefetch.buffers.give(raw);
      // Keep the engine busy while this chunk is written: start the next chunk (or tensor) now.
      const dt = (q: QuantPlan) => (q === p ? params.scaleDtype : ctx.scaleDtype);
      const from: ChunkFrom = { sums: res.metricsSums, fSq: c.fSq };
      const start = (q: QuantPlan, q0: number, n: number) =>
        startChunk(ctx, q, q0, n, dt(q), q === p ? from : undefined);
      job = startNext(ctx, p, r0 + rowsPerChunk, rowsPerChunk, start, () => true) ?? job;
      ctx.backendSeen(res.backend);
      const m = res.metrics;
      if (!m) throw new ConvertError('internal', `${p.name}: the engine returned no metrics`);
      addChunk(acc, m, res.metricsSums, c);
      scales.push(res.scales);
      zeros.push(res.zeros);
      yield* writeChunk(ctx, p, r0 + count, res.q);
    }
  }
  const { crc32 } = await ctx.writer.addArray(
    memberNames(p.name, bits).q,
    { dtype: 'uint8', shape: [rows, Math.ceil((cols * bits) / 8)] },
    chunks(),
  );
  finishAccumulated(acc, n, rows, sampleRows);
  return { scales, zeros, acc, crcQ: crc32, scaleDtype: params.scaleDtype };
}

/** The output check in TypeScript (when the engine did not compute it): the sampled rows' products and Σ‖f‖². */
function checkInTs(
  raw: Buffer,
  res: QuantizeResult,
  w: Omit<Quantized, 'q' | 'scales' | 'zeros' | 'rows'> & {
    dtype: 'F32' | 'F16' | 'BF16';
    packed: number;
    gBytes: number;
  },
  r0: number,
  count: number,
  x: Float32Array,
  n: number,
  sampled: (r: number) => boolean,
  fSqFrom: number,
): ChunkCheck {
  const { cols, packed, gBytes } = w;
  return sampledCheck(raw, w.dtype, cols, r0, count, x, n, sampled, fSqFrom, (picked) => {
    const m = picked.length;
    const sub: Quantized = {
      bits: w.bits,
      groupSize: w.groupSize,
      symmetric: w.symmetric,
      mode: w.mode,
      scaleDtype: w.scaleDtype,
      q: new Uint8Array(m * packed),
      scales: new Uint8Array(m * gBytes),
      zeros: new Uint8Array(m * gBytes),
      rows: m,
      cols,
    };
    picked.forEach((r, j) => {
      sub.q.set(res.q.subarray(r * packed, (r + 1) * packed), j * packed);
      sub.scales.set(res.scales.subarray(r * gBytes, (r + 1) * gBytes), j * gBytes);
      sub.zeros.set(res.zeros.subarray(r * gBytes, (r + 1) * gBytes), j * gBytes);
    });
    return qmatmul(x, n, sub);
  });
}

/** For bench/convert.bench.ts: a whole tensor's output check, as the engine request and as the TypeScript path. */
export function benchChecks(
  p: QuantPlan,
  raw: Buffer,
  res: QuantizeResult,
  s: { nEval: number; chunkBytes: number; scaleDtype: 'f16' | 'f32' },
): { request: OutputCheckRequest; inTs: () => ChunkCheck } {
  const request = checkFor(p, 0, p.rows, s.nEval);
  const { sampled } = evalSample(p.rows, s.nEval);
  const packed = Math.ceil((p.cols * p.bits) / 8);
  const gBytes = Math.ceil(p.cols / p.groupSize) * (s.scaleDtype === 'f32' ? 4 : 2);
  const w = { ...p, scaleDtype: s.scaleDtype, packed, gBytes };
  return {
    request,
    inTs: () => checkInTs(raw, res, w, 0, p.rows, request.x, request.n, sampled, 0),
  };
}
