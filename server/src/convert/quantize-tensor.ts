// One tensor through the engine: read in row chunks, quantized (the engine works on its own threads), q streamed
// into the NPZ while scales and zero points are collected; the sampled rows' matrix product checked on the way. The
// next chunk, or the next tensor's first chunk (a one-slot prefetch), is started before the current one is checked
// and written, so the engine stays busy. A tensor whose scales overflow float16 switches to float32 scales.
import {
  type Backend,
  type InputDType,
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
  addChunkMetrics,
  emptyAccumulated,
  evalInputs,
  evalSample,
  productError,
  sumSquares,
} from './accuracy';
import { ConvertError, inputError, isScaleOverflow, throwIfCancelled } from './errors';
import type { QuantPlan } from './plan';

const SRC_DTYPES: Record<string, InputDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
/** Source bytes per element, by safetensors dtype. */
export const ELEM_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

type ChunkJob = Promise<{ raw: Buffer; res: QuantizeResult }>;

function rowsPerChunkFor(p: QuantPlan, chunkBytes: number): number {
  return Math.max(1, Math.min(p.rows, Math.floor(chunkBytes / (p.cols * ELEM_BYTES[p.dtype]))));
}

/** Reads rows [r0, r0 + count) of a tensor and quantizes them (the engine works on its own threads). */
function startChunk(
  ctx: { ck: Checkpoint; backend?: Backend; threads?: number; signal?: AbortSignal },
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
      backend: ctx.backend,
      threads: ctx.threads,
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
export class Prefetch {
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
 * Quantizes one tensor chunk by chunk, streaming q into the NPZ. Returns q's CRC-32, the scales and zero points
 * (small; the caller writes them after q), the scale dtype used, and the sums the weight's accuracy comes from.
 */
export async function quantizeTensor(
  p: QuantPlan,
  ctx: {
    ck: Checkpoint;
    writer: NpzWriter;
    backend?: Backend;
    threads?: number;
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
  const { n, sampleRows, sampled } = evalSample(rows, ctx.nEval);
  const x = evalInputs(n, cols);
  const packed = Math.ceil((cols * bits) / 8);
  const groups = Math.ceil(cols / groupSize);
  let gBytes = groups * (ctx.scaleDtype === 'f32' ? 4 : 2);
  const acc = emptyAccumulated();
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
      throwIfCancelled(ctx.signal);
      const count = Math.min(rowsPerChunk, rows - r0);
      let raw: Buffer;
      let res: QuantizeResult;
      try {
        ({ raw, res } = await job);
      } catch (e) {
        // Scales beyond float16's range: switch this tensor to float32 scales if nothing of it is written yet.
        if (!(r0 === 0 && params.scaleDtype === 'f16' && isScaleOverflow(e))) {
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
      addChunkMetrics(acc, m, refSq);
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
