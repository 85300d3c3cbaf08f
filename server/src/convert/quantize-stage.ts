// The quantize stage: the plan for every tensor, then each in order into a new NPZ (at the temporary path): kept
// tensors as they are (bf16 widened to f32), the others through quantizeTensor; per tensor its manifest entry, its
// report row and progress. The NPZ is closed when all went well and aborted otherwise.
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Backend } from '../../../native/index';
import { type BitWidth, memberNames, type WeightEntry } from '../formats/manifest';
import { NpzWriter } from '../formats/npz';
import { type Checkpoint, toF32 } from '../formats/safetensors';
import type { ConvertEvent } from '../protocol';
import type { WeightReport } from '../report';
import { type WeightSums, weightAccuracy } from './accuracy';
import { BufferPool, Prefetch } from './buffer-pool';
import { ConvertError, cancelledError, errorCode, ioError, throwIfCancelled } from './errors';
import { layerIndex } from './families';
import { keptEntry, kquantEntry, quantizedEntry } from './manifest-builder';
import type { ConvertHooks, Settings } from './options';
import { planModel, type QuantPlan, type TensorPlan } from './plan';
import { quantizeKquantTensor, startKqChunk } from './quantize-kquant';
import { ELEM_BYTES, quantizeTensor, rowsPerChunkFor, startChunk } from './quantize-tensor';
import { ReadAhead } from './read-ahead';
import { span, traced } from './trace';

export interface QuantizeStageInput {
  ck: Checkpoint;
  settings: Settings;
  /** Where the NPZ is written (a temporary name). */
  npzTmp: string;
  /** The model folder (for messages naming a safetensors file). */
  dir: string;
  /** The final NPZ path (for messages: the temporary name means nothing to a user). */
  npzPath: string;
  backend?: Backend;
  threads?: number;
  emit: (e: ConvertEvent) => void;
  signal?: AbortSignal;
  hooks?: ConvertHooks;
  /**
   * Write the NPZ with O_DIRECT (the writer's default where the addon has it). False when the run reads the NPZ
   * back at once (--eval): through the page cache the reader finds it there instead of reading the disk.
   */
  npzDirect?: boolean;
}

export interface QuantizeStageResult {
  entries: WeightEntry[];
  weights: WeightReport[];
  sums: Map<string, WeightSums>;
  /** The engine backends that did the work. */
  backends: Set<string>;
  sourceBytes: number;
  /** Size of the closed NPZ. */
  outputBytes: number;
  totalParams: number;
  plans: TensorPlan[];
  /** Tensors stored as float. */
  keptFloat: number;
}

export async function quantizeStage(a: QuantizeStageInput): Promise<QuantizeStageResult> {
  const { ck, settings, signal } = a;
  const { bits, groupSize, symmetric, mode, embeddingsBits, format } = settings;
  const plans = planModel(ck.tensors, { bits, groupSize, symmetric, mode, embeddingsBits, format });
  const quantCount = plans.filter((p) => p.kind === 'quantize').length;
  if (!quantCount) {
    throw new ConvertError(
      'unsupported',
      `${a.dir}: No quantized data extracted: ${ck.tensors.length} tensors, none of them a 2-D float weight`,
    );
  }
  const totalParams = ck.tensors.reduce((n, t) => n + t.shape.reduce((x, y) => x * y, 1), 0);
  let writer: NpzWriter | undefined;
  try {
    const staging = { bufferBytes: stagingBytesFor(ck.tensors.reduce((n, t) => n + t.byteLength, 0)) };
    writer = await NpzWriter.create(a.npzTmp, a.npzDirect === false ? { direct: false } : { staging });
  } catch (e) {
    throw ioError(e, `cannot write to ${settings.outDir}`);
  }
  try {
    a.emit({ type: 'stage', stage: 'quantize', message: `${plans.length} tensors, ${quantCount} quantized` });
    const r = await quantizeTensors(a, plans, writer);
    throwIfCancelled(signal);
    a.emit({ type: 'stage', stage: 'write', message: a.npzPath });
    try {
      await traced('close', undefined, () => writer!.close());
    } catch (e) {
      throw ioError(e, `writing ${a.npzPath}`);
    }
    writer = undefined;
    const outputBytes = statSync(a.npzTmp).size;
    return { ...r, outputBytes, totalParams, plans, keptFloat: plans.length - quantCount };
  } finally {
    if (writer) await writer.abort().catch(() => {});
  }
}

const MiB = 1024 * 1024;

/**
 * The O_DIRECT writer's staging buffers for a checkpoint of `sourceBytes`: about 1/128 of it, 2 to 8 MiB each (three
 * of them). Fresh memory costs this VM's host a fault per page on first touch (a pread into a fresh 100 MB buffer:
 * 0.37–0.66 s of CPU, into a reused one 8.5 ms; docs/PERFORMANCE.md, "convpipe"), so a small checkpoint's 64 MB NPZ
 * does not pay for 24 MiB of staging (2 MiB buffers: 6 MiB), while a large one keeps the 8 MiB writes (fewer system
 * calls per byte). The bytes written are the same.
 */
export function stagingBytesFor(sourceBytes: number): number {
  return Math.min(8 * MiB, Math.max(2 * MiB, 2 ** Math.floor(Math.log2(Math.max(1, sourceBytes / 128)))));
}

async function quantizeTensors(a: QuantizeStageInput, plans: TensorPlan[], writer: NpzWriter) {
  const { ck, settings, signal } = a;
  const byName = new Map(ck.tensors.map((t) => [t.name, t]));
  const sourceBytes = ck.tensors.reduce((n, t) => n + t.byteLength, 0);
  const entries: WeightEntry[] = [];
  const weights: WeightReport[] = [];
  const sums = new Map<string, WeightSums>();
  const backends = new Set<string>();
  let bytesDone = 0;
  // The pool's free buffers within two chunks' bytes (at least 64 MiB): whatever the model, what the pool keeps
  // for reuse is bounded, besides the buffers in use (the rows of the chunks read and quantized, their q).
  const prefetch = new Prefetch(Math.max(2 * settings.chunkBytes, 64 * 1024 * 1024));
  const quantized = plans.filter((x): x is QuantPlan => x.kind === 'quantize');
  // Source rows read ahead while the kernel runs: the chunk being quantized and those read ahead (two at most)
  // together within three chunks' bytes (a chunk is at most chunkBytes unless one row is larger, or one engine chunk
  // of rows), so the source rows in memory stay bounded by the chunk size whatever the model.
  prefetch.readAhead = new ReadAhead(
    ck,
    ReadAhead.chunksOf(
      quantized,
      (p) => rowsPerChunkFor(p, settings.chunkBytes),
      (p) => ELEM_BYTES[p.dtype],
    ),
    (bytes) => prefetch.buffers.take(bytes),
    (ReadAhead.MAX_AHEAD + 1) * settings.chunkBytes,
    { reuse: (bytes) => prefetch.buffers.reuse(bytes), lends: BufferPool.lends },
  );
  const chunkSource = {
    ck,
    backend: a.backend,
    threads: a.threads,
    chunkBytes: settings.chunkBytes,
    nEval: settings.nEval,
    signal,
    prefetch,
  };
  // The next tensor's first chunk, of either type, with its own engine and file (for messages).
  prefetch.startFirst = (p: QuantPlan) => {
    const count = Math.min(rowsPerChunkFor(p, settings.chunkBytes), p.rows);
    if (!p.kq) return startChunk(chunkSource, p, 0, count, settings.scaleDtype);
    const file = join(a.dir, basename(byName.get(p.name)!.file));
    return startKqChunk({ ...chunkSource, file, writer, onRows: () => {}, backendSeen: () => {} }, p, 0, count);
  };
  /** Failures inside a tensor's work as the run reports them: cancelled, io naming the NPZ, or as they are. */
  const asRunError = (e: unknown): unknown => {
    if (signal?.aborted) return cancelledError();
    if (e instanceof ConvertError) return e;
    const code = errorCode(e);
    if (code === 'io') return ioError(e, `writing ${a.npzPath}`);
    if (code === 'cancelled') return cancelledError();
    return e;
  };
  for (let i = 0; i < plans.length; i++) {
    throwIfCancelled(signal);
    const p = plans[i];
    const t = byName.get(p.name)!;
    const layer = layerIndex(p.name);
    const progress = (done: number) =>
      a.emit({
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
        const tk = performance.now();
        const raw = await ck.readRaw(p.name);
        const f = p.dtype === 'BF16' ? toF32(raw, 'BF16') : undefined;
        const data = f ? new Uint8Array(f.buffer, f.byteOffset, f.byteLength) : raw;
        const names = memberNames(p.name, null);
        const { crc32 } = await writer.addArray(names.q, { dtype: p.storeDtype, shape: p.shape }, [data]);
        entries.push(keptEntry(p, t, layer, crc32));
        span('keep', tk, p.name);
      } else {
        const rowBytes = p.cols * ELEM_BYTES[p.dtype];
        const start = bytesDone;
        // The next tensor to quantize: its first chunk is started while this one is checked and written.
        const following = plans.slice(i + 1).find((x): x is QuantPlan => x.kind === 'quantize');
        // What both quantization types take, and what both record for the report.
        const common = {
          ck,
          writer,
          backend: a.backend,
          threads: a.threads,
          chunkBytes: settings.chunkBytes,
          nEval: settings.nEval,
          file: join(a.dir, basename(t.file)),
          signal,
          onRows: (rowsDone: number) => {
            if (p.rows > 0 && rowsDone < p.rows) progress(start + rowsDone * rowBytes);
          },
          backendSeen: (b: string) => backends.add(b),
        };
        const record = (acc: Parameters<typeof weightAccuracy>[0]) => {
          const tolerance = settings.tolerance[p.bits as BitWidth];
          const accuracy = weightAccuracy(acc, tolerance);
          sums.set(p.name, { refSq: acc.refSq });
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
          return accuracy;
        };
        if (p.kq) {
          const r = await quantizeKquantTensor(p, { ...common, prefetch, following });
          entries.push(kquantEntry(p, t, layer, r.crc, record(r.acc)));
        } else {
          const r = await quantizeTensor(p, {
            ...common,
            scaleDtype: settings.scaleDtype,
            prefetch,
            following,
          });
          const names = memberNames(p.name, p.bits);
          const groups = Math.ceil(p.cols / p.groupSize);
          const npScale = r.scaleDtype === 'f32' ? 'float32' : 'float16';
          const tw = performance.now();
          const s = await writer.addArray(names.q_scales!, { dtype: npScale, shape: [p.rows, groups] }, r.scales);
          const z = await writer.addArray(names.q_zero_point!, { dtype: npScale, shape: [p.rows, groups] }, r.zeros);
          for (const b of r.scales) prefetch.sideDone(b); // each chunk's scales and zero points: one side buffer
          span('write', tw, p.name);
          const accuracy = record(r.acc);
          entries.push(quantizedEntry(p, t, layer, npScale, { q: r.crcQ, scales: s.crc32, zeros: z.crc32 }, accuracy));
        }
      }
    } catch (e) {
      throw asRunError(e);
    }
    bytesDone += t.byteLength;
    progress(bytesDone);
    if (a.hooks?.afterTensor) {
      try {
        await a.hooks.afterTensor(i, signal);
      } catch (e) {
        throw asRunError(e);
      }
    }
  }
  return { entries, weights, sums, backends, sourceBytes };
}
