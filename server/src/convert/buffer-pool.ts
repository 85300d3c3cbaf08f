// The buffers a conversion reuses (BufferPool: source rows, packed q, a chunk's small outputs) and its one-slot
// prefetch of the next tensor's first chunk (Prefetch), which owns the pools.
import { hugePageBytes } from '../../../native/index';
import type { QuantPlan } from './plan';
import type { ReadAhead } from './read-ahead';

/** Huge page size (Linux x86-64 and most arm64): buffers this large or larger are rounded up to it. */
const HUGE = 2 * 1024 * 1024;

/**
 * Reused byte buffers (source rows, packed q): a conversion allocates a few and reads and quantizes into them
 * again and again, instead of a fresh buffer per chunk (page faults, and garbage collections forced by external
 * memory). A buffer is taken for the smallest free one that fits; a few are kept: at most six, and at most
 * `maxFreeBytes` together (the smallest dropped first), so what the pool holds stays bounded whatever the model.
 */
export class BufferPool {
  /** Whole buffers, free to lend (each the full view of its memory: `full`). */
  private free: Uint8Array[] = [];
  private freeBytes = 0;
  /** The full view behind each buffer this pool made, by its ArrayBuffer (a lent view starts where it starts). */
  private static readonly full = new WeakMap<ArrayBufferLike, Uint8Array>();
  /** @param maxFreeBytes what the free buffers may hold together (a buffer larger than that alone is not kept). */
  constructor(readonly maxFreeBytes = Number.POSITIVE_INFINITY) {}
  take(bytes: number): Uint8Array {
    return this.reuse(bytes) ?? BufferPool.fresh(bytes).subarray(0, bytes);
  }
  /** A free buffer for `bytes` as `take` would lend it, or undefined where `take` would make a fresh one. */
  reuse(bytes: number): Uint8Array | undefined {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const n = this.free[i].byteLength;
      if (BufferPool.lends(n, bytes) && (best < 0 || n < this.free[best].byteLength)) best = i;
    }
    if (best < 0) return undefined;
    const b = this.free.splice(best, 1)[0];
    this.freeBytes -= b.byteLength;
    return b.subarray(0, bytes);
  }
  /**
   * Whether a free buffer of `have` bytes is lent for a request of `bytes`: at most twice the size a fresh buffer
   * would have, or 32 MiB more. The largest buffers (an embedding's rows) lent for a small request would be missing
   * when the head's rows are asked for, which would cost a fresh one as large. Twice the rounded size, so a 64 MiB
   * buffer serves a 31.99 MiB request (a 70B-shaped down projection's q: 2 × 31.99 MiB fell 16 KiB short, and two
   * fresh 32 MiB buffers were made beside two free 64 MiB ones).
   */
  static lends(have: number, bytes: number): boolean {
    return have >= bytes && have <= Math.max(2 * BufferPool.sizeFor(bytes), bytes + 16 * HUGE);
  }
  /**
   * The size of a fresh buffer for `bytes`: from 512 KiB up rounded up to whole 2 MiB (one fault for a chunk's
   * scales or codes instead of 128 or more; at most 1.5 MiB more memory for such a buffer).
   */
  private static sizeFor(bytes: number): number {
    return bytes >= HUGE / 4 ? Math.ceil(bytes / HUGE) * HUGE : Math.max(1, bytes);
  }
  /**
   * A new buffer: large ones rounded up to whole 2 MiB (so later, slightly larger chunks still fit), starting at a
   * 2 MiB boundary and in huge pages where the system allows (hugePageBytes), since touching fresh memory page by
   * page costs more than reading it.
   */
  private static fresh(bytes: number): Uint8Array {
    const size = BufferPool.sizeFor(bytes);
    const b = size >= HUGE ? hugePageBytes(size) : new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
    BufferPool.full.set(b.buffer, b);
    return b;
  }
  /** Gives a buffer back (any view `take` lent, or one of its own: a buffer this pool did not make is kept whole). */
  give(v: Uint8Array): void {
    const b = BufferPool.full.get(v.buffer) ?? new Uint8Array(v.buffer);
    this.free.push(b);
    this.freeBytes += b.byteLength;
    if (this.free.length <= 6 && this.freeBytes <= this.maxFreeBytes) return;
    // Over a bound: drop the smallest until within both (the garbage collector frees what is dropped).
    this.free.sort((a, b) => b.byteLength - a.byteLength);
    while (this.free.length > 6 || this.freeBytes > this.maxFreeBytes) this.freeBytes -= this.free.pop()!.byteLength;
  }
}

/**
 * One slot: the next tensor's first chunk, started early (by either quantization type: the taker names the job's
 * type); and the conversion's buffer pool.
 */
export class Prefetch {
  readonly buffers: BufferPool;
  /**
   * The small output arrays of a chunk (scales and zero points; codes, d and dmin), as views of one reused buffer:
   * fresh arrays for each chunk cost a zero fill and first touches (issue 13).
   */
  readonly side = new BufferPool(16 * 1024 * 1024);
  /** @param maxFreeBytes the pool's bound on its free buffers' bytes (BufferPool). */
  constructor(maxFreeBytes?: number) {
    this.buffers = new BufferPool(maxFreeBytes);
  }
  /** Consecutive views of one buffer from the side pool, of `sizes` bytes; give the first back (sideDone) once written. */
  sideArrays(sizes: number[]): Uint8Array[] {
    const all = this.side.take(sizes.reduce((a, b) => a + b, 0));
    let o = 0;
    return sizes.map((n) => {
      const v = all.subarray(o, o + n);
      o += n;
      return v;
    });
  }
  /** Gives the buffer behind sideArrays' views back (pass the first view; the others are the same buffer). */
  sideDone(first: Uint8Array): void {
    this.side.give(first);
  }
  /** The stage's read-ahead (read-ahead.ts); without one every chunk is read when its job starts. */
  readAhead?: ReadAhead;
  /**
   * Starts the first chunk of a tensor of either quantization type (set by the stage, which knows both engines):
   * the last chunk of a tensor starts the next tensor's first one with it when the types differ.
   */
  startFirst?: (p: QuantPlan) => Promise<unknown>;
  private name?: string;
  private job?: Promise<unknown>;
  put(name: string, job: Promise<unknown>): void {
    this.name = name;
    this.job = job;
  }
  take<T>(name: string): Promise<T> | undefined {
    if (this.name !== name) return undefined;
    const j = this.job as Promise<T> | undefined;
    this.name = undefined;
    this.job = undefined;
    return j;
  }
}
