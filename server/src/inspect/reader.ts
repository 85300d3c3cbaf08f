// Reads members of an open file for the inspector: headers (cached), elements at given indices (ascending runs
// coalesced into one read each, a bounded number in flight) and the strings of text members. Every data read goes
// through `data`, which counts the bytes read and can log the ranges (tests prove a page reads only its rows).
import { basename } from 'node:path';
import { decodeInto, type ElementDType } from '../../../native/index';
import type { Backing, MemberHeader, TensorHeader } from './backing';
import { isOther } from './backing';
import { decodeText } from './values';

/** Element runs closer than this are read as one (reading a few KiB more beats another read). */
const COALESCE_BYTES = 4096;
/** Reads in flight at once for a page. */
export const READ_CONCURRENCY = 16;

export class MemberReader {
  private readonly headers = new Map<string, MemberHeader>();
  /** Bytes of member data read so far. */
  bytesRead = 0;
  /** When set, every data read is recorded as [member, offset, length]. */
  readLog?: [name: string, offset: number, length: number][];

  constructor(
    readonly path: string,
    readonly backing: Backing,
  ) {}

  /** Bytes [offset, offset + length) of a member's data. */
  data(name: string, offset: number, length: number): Promise<Buffer> {
    this.bytesRead += length;
    this.readLog?.push([name, offset, length]);
    return this.backing.data(name, offset, length);
  }

  async anyHeader(name: string): Promise<MemberHeader> {
    let h = this.headers.get(name);
    if (!h) {
      if (!this.backing.info(name))
        throw new Error(`${basename(this.path)}: no member named ${JSON.stringify(name).slice(1, -1)}`);
      h = await this.backing.header(name);
      this.headers.set(name, h);
    }
    return h;
  }

  /** The header of a member of numbers; a string, bytes or object member is refused by name. */
  async header(name: string): Promise<TensorHeader> {
    const h = await this.anyHeader(name);
    if (isOther(h))
      throw new Error(`${name}: ${h.descr} holds ${h.dtype === 'object' ? 'Python objects' : 'text'}, not numbers`);
    return h;
  }

  /** The elements at `indices` (flat element offsets in the member's data), decoded by the engine. */
  async readElements(name: string, h: TensorHeader, indices: number[]): Promise<Float64Array> {
    const out = new Float64Array(indices.length);
    await this.readRuns(
      name,
      h,
      indices,
      (buf, first, count, put) => {
        const tmp = new Float64Array(count);
        decodeInto(buf, h.dtype as ElementDType, h.littleEndian, tmp);
        put((i) => tmp[i - first]);
      },
      out,
    );
    return out;
  }

  /** The strings at `indices` of a string or bytes member (trailing NULs dropped, as numpy shows them). */
  async readTexts(name: string, h: MemberHeader, indices: number[]): Promise<string[]> {
    const out = new Array<string>(indices.length);
    await this.readRuns(
      name,
      h,
      indices,
      (buf, first, _count, put) => {
        put((i) =>
          decodeText(
            buf.subarray((i - first) * h.itemSize, (i - first + 1) * h.itemSize),
            h.dtype === 'unicode',
            h.littleEndian,
          ),
        );
      },
      out,
    );
    return out;
  }

  /**
   * Reads the elements at `indices`: ascending runs are coalesced into one read each (and runs separated by less
   * than COALESCE_BYTES into one), issued READ_CONCURRENCY at a time.
   */
  private async readRuns<T>(
    name: string,
    h: MemberHeader,
    indices: number[],
    decode: (buf: Buffer, first: number, count: number, put: (at: (index: number) => T) => void) => void,
    out: { [k: number]: T },
  ): Promise<void> {
    const size = Math.max(1, h.itemSize);
    const order = indices.map((_, i) => i).sort((a, b) => indices[a] - indices[b]);
    const runs: [from: number, to: number][] = []; // [i, j) positions in `order`
    const gap = Math.max(1, Math.floor(COALESCE_BYTES / size));
    let i = 0;
    while (i < order.length) {
      let j = i + 1;
      while (j < order.length && indices[order[j]] - indices[order[j - 1]] <= gap) j++;
      runs.push([i, j]);
      i = j;
    }
    for (let r = 0; r < runs.length; r += READ_CONCURRENCY) {
      await Promise.all(
        runs.slice(r, r + READ_CONCURRENCY).map(async ([from, to]) => {
          const first = indices[order[from]];
          const last = indices[order[to - 1]];
          const buf = await this.data(name, first * size, (last - first + 1) * size);
          decode(buf, first, last - first + 1, (at) => {
            for (let k = from; k < to; k++) out[order[k]] = at(indices[order[k]]);
          });
        }),
      );
    }
  }
}
