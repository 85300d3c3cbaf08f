// In-memory stand-ins for what the per-tensor quantize stages (quantize-tensor.ts, quantize-kquant.ts) talk to, so
// that they run in process (mutation testing reaches them there; a spawned CLI it does not): a checkpoint that
// serves rows from hand-made bytes and logs each read, and an NPZ writer that keeps a copy of every array's bytes as
// it is streamed (as the real writer writes each chunk out before it pulls the next).
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { KQ_PRESETS } from '../../../native/kquant';
import { type Accumulated, type ChunkCheck, evalSample, productSums } from '../../../server/src/convert/accuracy';
import { Prefetch } from '../../../server/src/convert/buffer-pool';
import { ConvertError } from '../../../server/src/convert/errors';
import type { QuantPlan } from '../../../server/src/convert/plan';
import type { quantizeKquantTensor } from '../../../server/src/convert/quantize-kquant';
import type { NpzWriter } from '../../../server/src/formats/npz';
import { type Checkpoint, toF32 } from '../../../server/src/formats/safetensors';
import { gaussian } from '../../helpers/random';

export type SrcDtype = 'F32' | 'F16' | 'BF16';

export interface MemTensor {
  name: string;
  dtype: SrcDtype;
  rows: number;
  cols: number;
  raw: Buffer;
}

export interface Read {
  name: string;
  r0: number;
  count: number;
  /** Whether the rows went into the caller's buffer (given, and large enough). */
  pooled: boolean;
  /** The buffer the rows went into (the caller's, or a new one). */
  buffer: ArrayBufferLike;
}

/** A plan quantizing tensor t: groupwise 4-bit g32, asymmetric, error-minimising, unless `over` says otherwise. */
export function planOf(t: MemTensor, over: Partial<QuantPlan> = {}): QuantPlan {
  return {
    kind: 'quantize',
    name: t.name,
    dtype: t.dtype,
    shape: [t.rows, t.cols],
    rows: t.rows,
    cols: t.cols,
    bits: 4,
    groupSize: 32,
    symmetric: false,
    mode: 'optimized',
    ...over,
  } as unknown as QuantPlan;
}

/** The same with convert's kquant preset of `bits` (its group size and two-level scales). */
export function kqPlanOf(t: MemTensor, bits: 2 | 4 = 4): QuantPlan {
  const kq = KQ_PRESETS[bits];
  return planOf(t, { bits, groupSize: kq.group, kq } as Partial<QuantPlan>);
}

/** A checkpoint over in-memory tensors; `reads` lists every readRows call in order. */
export function memCheckpoint(tensors: MemTensor[]): { ck: Checkpoint; reads: Read[] } {
  const reads: Read[] = [];
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const ck = {
    dir: '/mem',
    files: ['model.safetensors'],
    tensors: [],
    metadata: {},
    tensor: () => undefined,
    async readRows(name: string, r0: number, count: number, into?: Uint8Array): Promise<Buffer> {
      const t = byName.get(name);
      if (!t) throw new Error(`no tensor ${name}`);
      if (!(r0 >= 0 && count >= 0 && r0 + count <= t.rows))
        throw new Error(`${name}: rows ${r0}+${count} of ${t.rows}`);
      const rowBytes = t.raw.length / t.rows;
      const src = t.raw.subarray(r0 * rowBytes, (r0 + count) * rowBytes);
      const pooled = !!into && into.byteLength >= src.length;
      if (pooled && into) {
        const out = Buffer.from(into.buffer, into.byteOffset, src.length);
        out.set(src);
        reads.push({ name, r0, count, pooled, buffer: into.buffer });
        return out;
      }
      const out = Buffer.from(Uint8Array.prototype.slice.call(src).buffer);
      reads.push({ name, r0, count, pooled, buffer: out.buffer });
      return out;
    },
    readRaw: () => Promise.reject(new Error('not used')),
    readF32: () => Promise.reject(new Error('not used')),
    close: async () => {},
  };
  return { ck: ck as unknown as Checkpoint, reads };
}

export interface Written {
  header: { dtype: string; shape: number[] };
  bytes: Buffer;
  chunks: number;
  crc32: number;
  /** The distinct buffers the chunks came in. */
  buffers: Set<ArrayBufferLike>;
}

/** A writer that copies each chunk as it arrives; `arrays` by member name. */
export function memWriter() {
  const arrays = new Map<string, Written>();
  const writer = {
    path: '/mem/out.npz',
    async addArray(
      name: string,
      header: { dtype: string; shape: number[] },
      data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    ) {
      const parts: Buffer[] = [];
      const buffers = new Set<ArrayBufferLike>();
      const add = (c: Uint8Array) => {
        buffers.add(c.buffer);
        parts.push(Buffer.from(c)); // a copy, now
      };
      if (data instanceof Uint8Array) add(data);
      else for await (const c of data as AsyncIterable<Uint8Array>) add(c);
      const bytes = Buffer.concat(parts);
      const w = { header, bytes, chunks: parts.length, crc32: crc32(bytes), buffers };
      arrays.set(name, w);
      return { crc32: w.crc32, size: bytes.length };
    },
  };
  return { writer: writer as unknown as NpzWriter, arrays };
}

/** A float16's bits for a value float16 holds exactly (a normal number or 0). */
function f16Bits(v: number): number {
  const s = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return s;
  const e = Math.floor(Math.log2(a));
  return s | ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
}

/** Raw bytes of x in a source dtype (F16: x rounded to multiples of 1/1024 first, which float16 holds exactly). */
export function bytesOf(x: Float32Array, dtype: SrcDtype): Buffer {
  if (dtype === 'F32') return Buffer.from(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
  const out = Buffer.alloc(x.length * 2);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const bits = dtype === 'BF16' ? u[i] >>> 16 : f16Bits(Math.round(x[i] * 1024) / 1024);
    out.writeUInt16LE(bits, i * 2);
  }
  return out;
}

/** A rows × cols tensor of Gaussian values (σ = 0.02), `edit` applied to the values before encoding. */
export function tensor(
  name: string,
  dtype: SrcDtype,
  rows: number,
  cols: number,
  seed: number,
  edit?: (x: Float32Array) => void,
): MemTensor {
  const x = gaussian(rows * cols, seed, 0.02);
  edit?.(x);
  return { name, dtype, rows, cols, raw: bytesOf(x, dtype) };
}

/** Relative closeness for sums the engine and the reference add up in a different order. */
export function near(actual: number, expected: number, rel = 1e-6, what = ''): void {
  const ok = Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), 1e-30);
  if (!ok) throw new Error(`${what}: ${actual} is not within ${rel} of ${expected}`);
}

/** What both per-tensor stages take: quantizeKquantTensor's context (quantizeTensor's adds scaleDtype). */
export type StageCtx = Parameters<typeof quantizeKquantTensor>[1];

/** A context for one direct stage call: 2 threads, chunks of 1 MiB, 4 eval inputs, no progress; `over` replaces. */
export function stageCtx(file: string, ck: Checkpoint, writer: NpzWriter, over: Partial<StageCtx> = {}): StageCtx {
  return {
    ck,
    writer,
    threads: 2,
    chunkBytes: 1 << 20,
    nEval: 4,
    file,
    onRows: () => {},
    backendSeen: () => {},
    prefetch: new Prefetch(),
    ...over,
  };
}

export interface RunOpts {
  chunkBytes: number;
  nEval?: number;
  signal?: AbortSignal;
  onRows?: (name: string, r: number) => void;
}

/**
 * Runs plans in order through one prefetch slot, one checkpoint and one writer, as the quantize stage does: each
 * result with the reads made during its run, the rows reported per tensor, the backends seen.
 */
export async function runPlans<R>(
  stage: (p: QuantPlan, ctx: StageCtx) => Promise<R>,
  file: string,
  tensors: MemTensor[],
  plans: QuantPlan[],
  o: RunOpts,
) {
  const { ck, reads } = memCheckpoint(tensors);
  const { writer, arrays } = memWriter();
  const prefetch = new Prefetch();
  const rows = new Map<string, number[]>();
  const backends = new Set<string>();
  const results = [];
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i];
    rows.set(p.name, []);
    const readsBefore = reads.length;
    const r = await stage(p, {
      ck,
      writer,
      threads: 2,
      chunkBytes: o.chunkBytes,
      nEval: o.nEval ?? 4,
      file,
      signal: o.signal,
      onRows: (n) => {
        rows.get(p.name)!.push(n);
        o.onRows?.(p.name, n);
      },
      backendSeen: (b) => backends.add(b),
      prefetch,
      next: plans[i + 1],
    });
    results.push({ ...r, readsDuring: reads.slice(readsBefore) });
  }
  return { results, reads, arrays, rows, backends };
}

/** The error a promise rejects with (an assertion failure when it resolves). */
export function errorOf(run: Promise<unknown>): Promise<unknown> {
  return run.then(
    () => assert.fail('no error'),
    (e) => e,
  );
}

/** Each row of each tensor read exactly once, in order, in reads of at most `perRead` rows. */
export function readOnce(reads: Read[], t: MemTensor, perRead: number): void {
  const mine = reads.filter((r) => r.name === t.name);
  let next = 0;
  for (const r of mine) {
    assert.equal(r.r0, next, `${t.name}: rows read in order, once (${JSON.stringify(mine)})`);
    assert.ok(r.count >= 1 && r.count <= perRead, `${t.name}: a read of ${r.count} rows (at most ${perRead})`);
    assert.ok(r.pooled, `${t.name}: rows ${r.r0}+${r.count} read into a pooled buffer of their size`);
    next += r.count;
  }
  assert.equal(next, t.rows, `${t.name}: every row read (${JSON.stringify(mine)})`);
}

/**
 * Buffers come back to the pool once read and once written: one source buffer (a chunk's rows are given back before
 * the next chunk is read, so a split tensor holds one chunk of rows; no read-ahead here) and 2 buffers of the member
 * q streamed from (one written while the next is quantized), not a new pair per chunk.
 */
export function pooledBuffers(reads: Read[], q: Written, chunks: number): void {
  const rawBufs = new Set(reads.map((x) => x.buffer));
  assert.ok(rawBufs.size <= 1, `${chunks} chunks read into ${rawBufs.size} buffers (at most 1)`);
  assert.ok(q.buffers.size <= 2, `${chunks} chunks of q in ${q.buffers.size} buffers (at most 2)`);
}

/** Σw² of a tensor's values, one float64 chain in element order (independent of the stages). */
export function sumSquaresOf(t: MemTensor): number {
  const f = toF32(t.raw, t.dtype);
  let s = 0;
  for (let i = 0; i < f.length; i++) s += f[i] * f[i];
  return s;
}

/** The whole-tensor call's figures the accuracy sums are checked against. */
export interface SumsRef {
  res: { metrics?: { maxAbsError: number; relError: number; cosine: number; snrDb: number } };
  /** The whole tensor's output check in TypeScript (benchChecks / benchKqChecks inTs). */
  check: ChunkCheck;
  refSq: number;
}

/**
 * The accuracy sums of a tensor run in `chunks` chunks against the whole tensor's: the Σ‖f‖² chain and Σ y² (float
 * products, continued and summed in one call's order) to the last bit, Σ (y − ŷ)² and the metrics within rounding
 * (the TypeScript check's ŷ and a one-call engine run; sameRunSums checks chunked against whole runs bit for bit),
 * the max |error| exactly, ‖W‖² estimated from the sampled rows.
 */
export function sameSums(r: { acc: Accumulated }, ref: SumsRef, p: QuantPlan, chunks: number, nEval = 4): void {
  const a = r.acc;
  const m = ref.res.metrics!;
  assert.equal(a.chunks, chunks, `${p.name}: chunks`);
  const { n, sampleRows } = evalSample(p.rows, nEval);
  const want = productSums([ref.check], n);
  assert.equal(a.sampleSq, ref.check.fSq, `${p.name}: the Σ‖f‖² chain over the chunks is the whole tensor's`);
  assert.equal(a.ySq, want.ySq, `${p.name}: Σ y² over the chunks is the whole tensor's`);
  near(a.dySq, want.dySq, 1e-5, `${p.name} dySq`);
  assert.ok(a.dySq > 0 && a.ySq > a.dySq);
  assert.ok(a.metrics, `${p.name}: metrics`);
  assert.equal(a.metrics.maxAbsError, m.maxAbsError, `${p.name}: max |error| over the chunks is the whole tensor's`);
  near(a.metrics.relError, m.relError, 1e-9, `${p.name} relError`);
  near(a.metrics.cosine, m.cosine, 1e-12, `${p.name} cosine`);
  near(a.metrics.snrDb, m.snrDb, 1e-9, `${p.name} snrDb`);
  // ‖W‖² from the sampled rows (Σ over them × rows / sampled), whatever the chunks; exact when every row is sampled.
  assert.equal(a.refSq, (a.sampleSq * p.rows) / sampleRows, `${p.name} refSq (estimated)`);
  if (sampleRows === p.rows) near(a.refSq, ref.refSq, 1e-6, `${p.name} refSq (every row sampled)`);
}

/** Two runs of the same tensor (split in chunks, and whole): the same accuracy, bit for bit. */
export function sameRunSums(split: { acc: Accumulated }, whole: { acc: Accumulated }, what: string): void {
  const pick = (a: Accumulated) => ({
    metrics: a.metrics,
    sums: a.sums,
    sampleSq: a.sampleSq,
    ySq: a.ySq,
    dySq: a.dySq,
    refSq: a.refSq,
  });
  assert.deepEqual(pick(split.acc), pick(whole.acc), `${what}: a split tensor's accuracy is the whole tensor's`);
}

/**
 * A run of the one tensor t in chunks, as one whole-tensor call (ref): progress on whole rows (expectRows), the
 * accuracy sums, each row read once, buffers from the pool, the call's backend.
 */
export function chunkedAsOneCall(
  run: Awaited<ReturnType<typeof runPlans<{ acc: Accumulated }>>>,
  t: MemTensor,
  p: QuantPlan,
  ref: SumsRef & { res: { backend: string } },
  expectRows: number[],
): void {
  assert.deepEqual(run.rows.get(t.name), expectRows);
  sameSums(run.results[0], ref, p, expectRows.length);
  readOnce(run.reads, t, expectRows[0]);
  pooledBuffers(run.reads, run.arrays.get(`${t.name}_q${p.bits}.npy`)!, expectRows.length);
  assert.deepEqual([...run.backends], [ref.res.backend]);
}

/**
 * A run cancelled when it reports its first 2 rows (chunks of 2 rows): the cancelled error, and no progress after
 * (no further chunk written).
 */
export async function cancelledAfterFirstChunk(run: (o: RunOpts) => Promise<unknown>, chunkBytes: number) {
  const ac = new AbortController();
  const seen: number[] = [];
  const err = await errorOf(
    run({
      chunkBytes,
      signal: ac.signal,
      onRows: (_n, r) => {
        seen.push(r);
        if (r === 2) ac.abort();
      },
    }),
  );
  assert.ok(err instanceof ConvertError && err.code === 'cancelled', String(err));
  assert.deepEqual(seen, [2]);
}
