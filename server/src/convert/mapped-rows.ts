// Source rows mapped instead of read (issue 13): a chunk's bytes as a read-only view of the checkpoint file's page
// cache (native mapFile: mmap, populated on a libuv pool thread), which the kernel reads directly. Reading into pooled
// buffers cost a copy out of the page cache and, for every fresh buffer, the first touch of new memory, which on a
// virtual machine the host backs page by page: a pread into a fresh 100 MB buffer took 0.37–0.66 s of CPU here, into a
// reused one 8.5 ms, and mapping the same cached bytes 2–6 ms. A mapped chunk is given back with `unmapRows`
// (BufferPool.give does it), which unmaps at once, so the rows in memory stay within the read-ahead's byte bound as
// pooled ones did. APL_CONVERT_MMAP=0 reads as before (for comparison); so does a run without the addon's mapFile.
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
 * A mapper of `ck`'s rows, or undefined when mapping is off (APL_CONVERT_MMAP=0). Any failure to map (no addon
 * support, a file the mapping refuses, a range the header does not hold) resolves undefined: the read that follows
 * reports a real problem with the checkpoint's own messages.
 */
export function rowMapper(ck: Checkpoint): RowMapper | undefined {
  if (process.env.APL_CONVERT_MMAP === '0') return undefined;
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
