// In-memory stand-ins for what the per-tensor quantize stages (quantize-tensor.ts, quantize-kquant.ts) talk to, so
// that they run in process (mutation testing reaches them there; a spawned CLI it does not): a checkpoint that
// serves rows from hand-made bytes and logs each read, and an NPZ writer that keeps a copy of every array's bytes as
// it is streamed (as the real writer writes each chunk out before it pulls the next).
import { crc32 } from 'node:zlib';
import type { Checkpoint } from '../../../server/src/formats/safetensors';
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
  return { writer: writer as unknown as import('../../../server/src/formats/npz').NpzWriter, arrays };
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
