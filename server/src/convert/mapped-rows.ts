// Source rows mapped instead of read (issue 13), opt-in: with APL_CONVERT_MMAP=1 a chunk's bytes are a read-only view
// of the checkpoint file's page cache (native mapFile: mmap, populated on a libuv pool thread), which the kernel reads
// directly, and BufferPool.give unmaps them (`unmapRows`), so the rows in memory stay within the read-ahead's byte
// bound as pooled ones do. Not the default: on this VM a mapped page's first access costs a fault on the host
// (≈ 1.6 µs per 4 KiB page), about what the copy out of the page cache into a reused pooled buffer costs, and it
// lands in the kernel's and the check's loops. Measured against reading (docs/PERFORMANCE.md, "convpipe"): the
// 2.2 GB checkpoint's convert took 1.13–1.19× more CPU mapped (peak RSS 324 against 407–436 MB), the small one
// 1.03–1.1×, the 70B-shaped layer 1.05–1.12×. Kept for machines where mapping is cheaper (bare metal, unmeasured)
// and for peak memory; a run without the addon's mapFile reads.
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { mapFile, unmapFile } from '../../../native/index';
import type { Checkpoint } from '../formats/safetensors';
import type { ChunkRef } from './read-ahead';

/** Maps a chunk's rows, or resolves undefined where it cannot (the caller reads them instead). */
export type RowMapper = (c: ChunkRef) => Promise<Buffer | undefined>;

/** The safetensors data section's offset in a file: 8 + the header length (its first 8 bytes, little-endian). */
function dataStartOf(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(8);
    if (readSync(fd, b, 0, 8, 0) !== 8) return -1;
    const n = b.readBigUInt64LE(0);
    return n > BigInt(Number.MAX_SAFE_INTEGER - 8) ? -1 : 8 + Number(n);
  } finally {
    closeSync(fd);
  }
}

/**
 * A mapper of `ck`'s rows, or undefined when mapping is off (unless APL_CONVERT_MMAP=1). Any failure to map (no addon
 * support, a file the mapping refuses, a range the header does not hold) resolves undefined: the read that follows
 * reports a real problem with the checkpoint's own messages.
 */
export function rowMapper(ck: Checkpoint): RowMapper | undefined {
  if (process.env.APL_CONVERT_MMAP !== '1') return undefined;
  const starts = new Map<string, number>();
  return async (c) => {
    try {
      const t = ck.tensor(c.name);
      if (!t || !c.count) return undefined;
      const rowBytes = c.bytes / c.count;
      const begin = t.dataOffsets[0] + c.r0 * rowBytes;
      if (!Number.isInteger(rowBytes) || begin + c.bytes > t.dataOffsets[1]) return undefined;
      const path = join(ck.dir, t.file);
      const start = starts.get(path) ?? dataStartOf(path);
      starts.set(path, start);
      if (start < 0) return undefined;
      const v = await mapFile(path, start + begin, c.bytes);
      return v && Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    } catch {
      return undefined;
    }
  };
}

/** Unmaps rows a RowMapper gave (true), or leaves any other buffer alone (false). */
export function unmapRows(v: Uint8Array): boolean {
  return unmapFile(v);
}
