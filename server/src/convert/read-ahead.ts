// Read-ahead for the quantize stage (issue 13): the source rows of the chunks after the one being quantized are read
// while the kernel runs, so reading no longer waits for the kernel nor the kernel for reading. The stage knows every
// chunk in the order the tensors take them (each quantized tensor's rows in chunks of rowsPerChunkFor); a read asked
// for in that order is taken from here, started earlier if it was not yet. Reads run one at a time, in order, into
// the conversion's pooled buffers; how far ahead is bounded by bytes (the chunk being quantized and those read
// ahead), so peak memory stays bounded whatever the model. A read asked out of order (a chunk read again after a
// float16 scale overflow, a tensor run on its own in a test) is made directly, as before.
import type { Checkpoint } from '../formats/safetensors';
import type { QuantPlan } from './plan';
import { span } from './trace';

/** One chunk of a quantized tensor: rows [r0, r0 + count) and their bytes in the checkpoint. */
export interface ChunkRef {
  name: string;
  r0: number;
  count: number;
  bytes: number;
}

export class ReadAhead {
  /** Chunks read ahead of the one asked for, at most (besides the byte bound). */
  static readonly MAX_AHEAD = 2;
  /** Index of the next chunk to be asked for. */
  private next = 0;
  /** Index of the next chunk to start reading. */
  private started = 0;
  private reads = new Map<number, Promise<Buffer>>();
  /** The rows of reads that have ended and not yet been taken. */
  private rows = new Map<number, Buffer>();
  /** The read chain: each read starts when the one before it ended (failed or not). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Reads in flight or waiting on the chain. */
  private queued = 0;

  /**
   * @param take gives the buffer a chunk of `bytes` is read into (the conversion's pool).
   * @param budget bytes of the chunk being quantized plus those read ahead; a chunk over it waits for its turn.
   * @param pool given, a chunk two ahead that would need a fresh buffer (`pool.reuse` finds no free one) waits
   *   when the rows of the chunk asked for now come back, before its turn, in a buffer the pool would lend for it
   *   (`pool.lends`): it is read when the chunk before it is asked for, into that buffer. A fresh
   *   buffer's first touch costs more CPU than reading into it (issue 13: the first layer's three 23 MB MLP row
   *   buffers of the small checkpoint; 31 fresh buffers, 394 MiB, for the 2.2 GB one).
   */
  constructor(
    private readonly ck: Checkpoint,
    private readonly chunks: ChunkRef[],
    private readonly take: (bytes: number) => Uint8Array,
    private readonly budget: number,
    private readonly pool?: {
      reuse(bytes: number): Uint8Array | undefined;
      lends(have: number, bytes: number): boolean;
    },
  ) {}

  /** Chunks read or being read ahead and not yet taken (what this holds: at most MAX_AHEAD + 1). */
  get held(): number {
    return new Set([...this.reads.keys(), ...this.rows.keys()]).size;
  }

  /** The chunks of the quantized plans in the order the stage takes them (rowsPerChunk: rows per chunk of a plan). */
  static chunksOf(plans: QuantPlan[], rowsPerChunk: (p: QuantPlan) => number, elemBytes: (p: QuantPlan) => number) {
    const out: ChunkRef[] = [];
    for (const p of plans) {
      const per = rowsPerChunk(p);
      for (let r0 = 0; r0 < p.rows; r0 += per) {
        const count = Math.min(per, p.rows - r0);
        out.push({ name: p.name, r0, count, bytes: count * p.cols * elemBytes(p) });
      }
    }
    return out;
  }

  /**
   * Rows [r0, r0 + count) of tensor `name` when this is the chunk expected next, else undefined (the caller reads it
   * itself); reads ahead what the budget allows. The rows themselves when their read has already ended, so the
   * caller can hand them to the engine in the same turn, not after an `await` behind whatever else the event loop
   * has queued (the NPZ writer's CRC and copies: up to 10 ms of an idle engine at a tensor's start, issue 13); else
   * the read's promise.
   */
  readNow(name: string, r0: number, count: number): Buffer | Promise<Buffer> | undefined {
    const c = this.chunks[this.next];
    if (!c || c.name !== name || c.r0 !== r0 || c.count !== count) return undefined;
    const i = this.next++;
    if (this.started <= i) this.start(); // its turn, whatever its size
    const job = this.reads.get(i)!;
    const rows = this.rows.get(i);
    this.reads.delete(i);
    this.rows.delete(i);
    this.ahead(i);
    return rows ?? job;
  }

  /** Starts reads after chunk i (the one now quantized) while they fit the budget together with it. */
  private ahead(i: number): void {
    let bytes = 0;
    for (let k = i; k < this.started; k++) bytes += this.chunks[k].bytes;
    while (this.started < this.chunks.length && this.started - i <= ReadAhead.MAX_AHEAD) {
      const b = this.chunks[this.started].bytes;
      if (bytes + b > this.budget) break;
      let into = this.pool?.reuse(b);
      // The rows of chunk i are given back before chunk i + 1 is asked for, when this one's turn comes.
      if (!into && this.started - i > 1 && this.pool?.lends(this.chunks[i].bytes, b)) break;
      into ??= this.take(b);
      bytes += b;
      this.start(into);
    }
  }

  private start(into = this.take(this.chunks[this.started].bytes)): void {
    const i = this.started++;
    const c = this.chunks[i];
    const read = async () => {
      try {
        const t0 = performance.now();
        const raw = await this.ck.readRows(c.name, c.r0, c.count, into);
        span('read', t0, c.name);
        if (this.reads.has(i)) this.rows.set(i, raw); // not yet taken
        return raw;
      } finally {
        this.queued--;
      }
    };
    // With no read in flight or waiting, this one is issued now, not a turn later: the caller's work until then
    // (the first chunk's check inputs, ≈ 10 ms of cold code) runs while the disk reads.
    const job = this.queued++ === 0 ? read() : this.chain.then(read);
    // The chain's catch also handles a read-ahead nobody takes (a cancelled or failed run): no unhandled rejection.
    this.chain = job.catch(() => {});
    this.reads.set(i, job);
  }
}
