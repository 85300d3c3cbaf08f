// One tensor of type kquant (two-level scales, docs/FORMAT.md) through native/kquant.ts, the way the groupwise path
// runs (quantize-tensor.ts): read in row chunks into reused buffers, quantized on the engine's threads with the
// output check fused in (the sampled rows' x · Ŵᵀ against x · Wᵀ), q streamed into the NPZ while the codes
// and super-scales are collected (written after q). The next chunk, or the next kquant tensor's first chunk, is
// started before the current one is written, so reading, quantizing and writing overlap. The TypeScript reference
// engine (no addon) leaves the check to this file, with the same arithmetic.
import type { OutputCheckRequest } from '../../../native/index';
import {
  type KqFormat,
  type KqQuantized,
  type KqQuantizeResult,
  kdequantize,
  kqSizes,
  kquantize,
} from '../../../native/kquant';
import { kquantMemberNames } from '../formats/manifest';
import {
  type Accumulated,
  addChunk,
  type ChunkCheck,
  emptyAccumulated,
  evalInputs,
  evalSample,
  finishAccumulated,
} from './accuracy';
import { ConvertError, inputError, throwIfCancelled } from './errors';
import type { QuantPlan } from './plan';
import {
  type ChunkFrom,
  checkFor,
  engineCheck,
  readChunk,
  rowsPerChunkFor,
  sampledCheck,
  startNext,
  type TensorContext,
  writeChunk,
} from './quantize-tensor';
import { span } from './trace';

export interface KquantTensorResult {
  acc: Accumulated;
  crc: { q: number; q_codes: number; q_d: number; q_dmin: number };
}

/** x · Ŵᵀ for x: n × cols and Ŵ: m × cols (row-major), as n × m. */
function matmulT(x: Float32Array, n: number, w: Float32Array, m: number, cols: number): Float32Array {
  const y = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const xo = i * cols;
    for (let j = 0; j < m; j++) {
      const wo = j * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[xo + c] * w[wo + c];
      y[i * m + j] = s;
    }
  }
  return y;
}

type KqChunkJob = Promise<{ raw: Uint8Array; res: KqQuantizeResult; check: OutputCheckRequest }>;

type KqContext = TensorContext;

/** Reads rows [r0, r0 + count) of a kquant tensor into a reused buffer and quantizes them (with the check). */
export function startKqChunk(ctx: KqContext, p: QuantPlan, r0: number, count: number, from?: ChunkFrom): KqChunkJob {
  const kq = p.kq as KqFormat;
  const job = (async () => {
    const read = readChunk(ctx, p, r0, count, from);
    const { raw, options } = read instanceof Promise ? await read : read; // as startChunk: no await when read
    const t0 = performance.now();
    const sz = kqSizes(count, p.cols, kq);
    const [codesInto, dInto, dminInto] = ctx.prefetch.sideArrays([sz.codes, sz.d, sz.dmin]);
    const res = await kquantize({
      ...kq,
      ...options,
      qInto: ctx.prefetch.buffers.take(sz.q),
      codesInto,
      dInto,
      dminInto,
    }).catch((e) => {
      throw inputError(e, ctx.file, ctx.signal);
    });
    span('kernel', t0, p.name);
    return { raw, res, check: options.check };
  })();
  job.catch(() => {}); // a prefetch nobody awaits (cancelled run) must not become an unhandled rejection
  return job;
}

/** Quantizes one kquant tensor into the NPZ (members q, q_codes, q_d, q_dmin); returns their CRC-32s and the sums. */
export async function quantizeKquantTensor(p: QuantPlan, ctx: KqContext): Promise<KquantTensorResult> {
  if (!p.kq) throw new ConvertError('internal', `${p.name}: not a kquant plan`);
  const kq: KqFormat = p.kq;
  const { rows, cols } = p;
  const rowsPerChunk = rowsPerChunkFor(p, ctx.chunkBytes);
  const { n, sampleRows, sampled } = evalSample(rows, ctx.nEval);
  const acc = emptyAccumulated();
  const codes: Uint8Array[] = [];
  const d: Uint8Array[] = [];
  const dmin: Uint8Array[] = [];
  let job = ctx.prefetch.take<Awaited<KqChunkJob>>(p.name) ?? startKqChunk(ctx, p, 0, Math.min(rowsPerChunk, rows));
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      throwIfCancelled(ctx.signal);
      const count = Math.min(rowsPerChunk, rows - r0);
      const { raw, res, check: req } = await job;
      const c = engineCheck(res, req) ?? checkInTs(p, raw, res, r0, count, n, sampled, acc.sampleSq);
      // The source rows are done with before the next chunk is read: it can take their buffer, so a tensor split
      // in chunks holds one chunk of rows, not two (peak RSS: issue 13's 512 MB at 7B shapes).
      ctx.prefetch.buffers.give(raw);
      // Keep the engine busy while this chunk is written: start the next chunk (or kquant tensor) now.
      const from: ChunkFrom = { sums: res.metricsSums, fSq: c.fSq };
      const start = (q: QuantPlan, q0: number, n: number) => startKqChunk(ctx, q, q0, n, q === p ? from : undefined);
      job = startNext(ctx, p, r0 + rowsPerChunk, rowsPerChunk, start, (q) => !!q.kq) ?? job;
      ctx.backendSeen(res.backend);
      if (!res.metrics) throw new ConvertError('internal', `${p.name}: the engine returned no metrics`);
      addChunk(acc, res.metrics, res.metricsSums, c);
      codes.push(res.codes);
      d.push(res.d);
      dmin.push(res.dmin);
      yield* writeChunk(ctx, p, r0 + count, res.q);
    }
  }
  const per = kqSizes(1, cols, kq);
  const names = kquantMemberNames(p.name, p.bits);
  const groups = Math.ceil(cols / kq.group);
  const supers = Math.ceil(cols / kq.super);
  const q = await ctx.writer.addArray(names.q, { dtype: 'uint8', shape: [rows, per.q] }, chunks());
  const tw = performance.now();
  const c = await ctx.writer.addArray(
    names.q_codes,
    { dtype: 'uint8', shape: [rows, Math.ceil((groups * (kq.scaleBits + kq.minBits)) / 8)] },
    codes,
  );
  const dd = await ctx.writer.addArray(names.q_d, { dtype: 'float16', shape: [rows, supers] }, d);
  const dm = await ctx.writer.addArray(names.q_dmin, { dtype: 'float16', shape: [rows, supers] }, dmin);
  for (const b of codes) ctx.prefetch.sideDone(b); // each chunk's codes, d and dmin: one side buffer
  span('write', tw, p.name);
  finishAccumulated(acc, n, rows, sampleRows);
  return { acc, crc: { q: q.crc32, q_codes: c.crc32, q_d: dd.crc32, q_dmin: dm.crc32 } };
}

/** The output check in TypeScript (the reference engine gives none): the sampled rows' products and Σ‖f‖². */
function checkInTs(
  p: QuantPlan,
  raw: Uint8Array,
  res: KqQuantized,
  r0: number,
  count: number,
  n: number,
  sampled: (r: number) => boolean,
  fSqFrom: number,
): ChunkCheck {
  const kq = p.kq as KqFormat;
  const { cols } = p;
  const per = kqSizes(1, cols, kq);
  const x = evalInputs(n, cols);
  return sampledCheck(raw, p.dtype, cols, r0, count, x, n, sampled, fSqFrom, (picked) => {
    const m = picked.length;
    const sub: KqQuantized = {
      ...kq,
      rows: m,
      cols,
      q: new Uint8Array(m * per.q),
      codes: new Uint8Array(m * per.codes),
      d: new Uint8Array(m * per.d),
      dmin: new Uint8Array(m * per.dmin),
    };
    picked.forEach((r, j) => {
      for (const k of ['q', 'codes', 'd', 'dmin'] as const) {
        sub[k].set(res[k].subarray(r * per[k], (r + 1) * per[k]), j * per[k]);
      }
    });
    return matmulT(x, n, kdequantize(sub), m, cols);
  });
}

/** For bench/convert.bench.ts: a whole kquant tensor's output check, as the engine request and as the TypeScript path. */
export function benchKqChecks(
  p: QuantPlan,
  raw: Uint8Array,
  res: KqQuantized,
  s: { nEval: number; chunkBytes: number },
): { request: ReturnType<typeof checkFor>; inTs: () => ChunkCheck } {
  const request = checkFor(p, 0, p.rows, s.nEval);
  const { sampled } = evalSample(p.rows, s.nEval);
  return { request, inTs: () => checkInTs(p, raw, res, 0, p.rows, request.n, sampled, 0) };
}
