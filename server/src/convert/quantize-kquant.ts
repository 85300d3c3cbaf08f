// One tensor of type kquant (two-level scales, docs/FORMAT.md) through native/kquant.ts: read in row chunks,
// quantized, q streamed into the NPZ while the codes and super-scales are collected (written after q). The accuracy
// comes from the same sums as the groupwise path (quantize-tensor.ts): the engine's per-chunk metrics, and the
// sampled rows' product x · Ŵᵀ (Ŵ dequantized by the engine) against x · Wᵀ.
import type { Backend } from '../../../native/index';
import {
  type KqFormat,
  type KqInputDType,
  type KqQuantized,
  kdequantize,
  kqSizes,
  kquantize,
} from '../../../native/kquant';
import { kquantMemberNames } from '../formats/manifest';
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
import { ConvertError, inputError, throwIfCancelled } from './errors';
import type { QuantPlan } from './plan';
import { ELEM_BYTES } from './quantize-tensor';

const SRC_DTYPES: Record<string, KqInputDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

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

/** Quantizes one kquant tensor into the NPZ (members q, q_codes, q_d, q_dmin); returns their CRC-32s and the sums. */
export async function quantizeKquantTensor(
  p: QuantPlan,
  ctx: {
    ck: Checkpoint;
    writer: NpzWriter;
    backend?: Backend;
    threads?: number;
    chunkBytes: number;
    nEval: number;
    /** The safetensors file holding the tensor, for messages. */
    file: string;
    signal?: AbortSignal;
    onRows: (rowsDone: number) => void;
    backendSeen: (b: string) => void;
  },
): Promise<KquantTensorResult> {
  if (!p.kq) throw new ConvertError('internal', `${p.name}: not a kquant plan`);
  const kq: KqFormat = p.kq;
  const { rows, cols } = p;
  const rowBytes = cols * ELEM_BYTES[p.dtype];
  const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(ctx.chunkBytes / rowBytes)));
  const chunked = rowsPerChunk < rows;
  const { n, sampleRows, sampled } = evalSample(rows, ctx.nEval);
  const x = evalInputs(n, cols);
  const per = kqSizes(1, cols, kq);
  const acc = emptyAccumulated();
  const codes: Uint8Array[] = [];
  const d: Uint8Array[] = [];
  const dmin: Uint8Array[] = [];
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
      throwIfCancelled(ctx.signal);
      const count = Math.min(rowsPerChunk, rows - r0);
      const raw = await ctx.ck.readRows(p.name, r0, count);
      const res = await kquantize({
        ...kq,
        data: raw,
        dtype: SRC_DTYPES[p.dtype],
        rows: count,
        cols,
        backend: ctx.backend,
        threads: ctx.threads,
        name: p.name,
        metrics: true,
        signal: ctx.signal,
      }).catch((e) => {
        throw inputError(e, ctx.file, ctx.signal);
      });
      ctx.backendSeen(res.backend);
      const refSq = chunked ? sumSquares(raw, p.dtype) : 0;
      const picked: number[] = [];
      for (let r = 0; r < count; r++) if (sampled(r0 + r)) picked.push(r);
      if (picked.length) {
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
        const f = new Float32Array(m * cols);
        picked.forEach((r, j) => {
          for (const k of ['q', 'codes', 'd', 'dmin'] as const) {
            sub[k].set(res[k].subarray(r * per[k], (r + 1) * per[k]), j * per[k]);
          }
          f.set(toF32(raw.subarray(r * rowBytes, (r + 1) * rowBytes), p.dtype), j * cols);
        });
        const yq = matmulT(x, n, kdequantize(sub), m, cols);
        const e = productError(x, n, f, m, cols, yq);
        acc.sampleSq += e.fSq;
        acc.ySq += e.ySq;
        acc.dySq += e.dySq;
      }
      if (!res.metrics) throw new ConvertError('internal', `${p.name}: the engine returned no metrics`);
      addChunkMetrics(acc, res.metrics, refSq);
      codes.push(res.codes);
      d.push(res.d);
      dmin.push(res.dmin);
      ctx.onRows(r0 + count);
      yield res.q;
    }
  }
  const names = kquantMemberNames(p.name, p.bits);
  const groups = Math.ceil(cols / kq.group);
  const supers = Math.ceil(cols / kq.super);
  const q = await ctx.writer.addArray(names.q, { dtype: 'uint8', shape: [rows, per.q] }, chunks());
  const c = await ctx.writer.addArray(
    names.q_codes,
    { dtype: 'uint8', shape: [rows, Math.ceil((groups * (kq.scaleBits + kq.minBits)) / 8)] },
    codes,
  );
  const dd = await ctx.writer.addArray(names.q_d, { dtype: 'float16', shape: [rows, supers] }, d);
  const dm = await ctx.writer.addArray(names.q_dmin, { dtype: 'float16', shape: [rows, supers] }, dmin);
  if (!chunked) acc.refSq = (acc.sampleSq * rows) / sampleRows;
  return { acc, crc: { q: q.crc32, q_codes: c.crc32, q_d: dd.crc32, q_dmin: dm.crc32 } };
}
