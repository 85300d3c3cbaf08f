// What the inspector session reads through: one .npy file, the members of a .npz, or the tensors of a safetensors
// checkpoint (backing-safetensors.ts) — headers of any dtype, byte ranges of data — and the page requests it accepts.
import { basename } from 'node:path';
import { type NpyHeader, type NpyOtherHeader, parseNpyAnyHeader } from '../formats/npy';
import { openNpz } from '../formats/npz';
import { openFileSource, type RandomAccessSource } from '../formats/source';
import { isSafetensorsIndex, openSafetensorsBacking, openShardedBacking } from './backing-safetensors';

/**
 * A member of numbers: a .npy header, or a safetensors tensor's described the same way. Its dtype may be one numpy
 * lacks (bfloat16, float8_e4m3fn: the engine decodes them) or one the engine cannot decode (refused when read).
 */
export interface TensorHeader extends Omit<NpyHeader, 'dtype'> {
  dtype: string;
}
export type MemberHeader = TensorHeader | NpyOtherHeader;
const OTHER = new Set(['unicode', 'bytes', 'object']);
/** A string, bytes or object member (not numbers). */
export const isOther = (h: MemberHeader): h is NpyOtherHeader => OTHER.has(h.dtype);
export type BackingKind = 'npz' | 'npy' | 'safetensors';

/** At most this many values per page request. */
export const MAX_PAGE_ELEMENTS = 1 << 16;

export interface Backing {
  kind: BackingKind;
  names: string[];
  /** Bytes on disk when more than the opened file (a sharded checkpoint: the index and its shards). */
  diskBytes?: number;
  /** `shard`: the file holding the tensor, in a sharded checkpoint. */
  info(name: string): { compressed: boolean; storedBytes: number; shard?: string } | undefined;
  header(name: string): Promise<MemberHeader>;
  /** Bytes [offset, offset + length) of the member's array data (after its .npy header). */
  data(name: string, offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openBacking(path: string): Promise<Backing> {
  if (isSafetensorsIndex(path)) return openShardedBacking(path);
  if (/\.safetensors$/i.test(path)) return openSafetensorsBacking(path);
  const src: RandomAccessSource = await openFileSource(path);
  try {
    const magic = await src.read(0, Math.min(6, src.size));
    if (magic[0] === 0x93 && magic.subarray(1, 6).toString('latin1') === 'NUMPY') {
      const header = await parseNpyAnyHeader(src);
      const name = basename(path);
      return {
        kind: 'npy',
        names: [name],
        info: (n) => (n === name ? { compressed: false, storedBytes: src.size } : undefined),
        header: async () => header,
        data: (_n, offset, length) => src.read(header.dataOffset + offset, length),
        close: () => src.close(),
      };
    }
    const npz = await openNpz(src);
    return {
      kind: 'npz',
      names: npz.members.map((m) => m.name),
      info: (n) => {
        const m = npz.member(n);
        return m && { compressed: m.compressed, storedBytes: m.compressedSize };
      },
      header: (n) => npz.readAnyHeader(n),
      data: (n, offset, length) => npz.readData(n, offset, length),
      close: () => npz.close(),
    };
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** A page request clamped to a rows × cols grid; bad or oversized requests throw. */
export function clampPage(rows: number, cols: number, row: number, rowCount: number, col: number, colCount: number) {
  const ints = [row, rowCount, col, colCount];
  if (!ints.every((x) => Number.isSafeInteger(x) && x >= 0))
    throw new Error(`bad page request ${JSON.stringify(ints)}`);
  row = Math.min(row, rows);
  col = Math.min(col, cols);
  rowCount = Math.min(rowCount, rows - row);
  colCount = Math.min(colCount, cols - col);
  if (rowCount * colCount > MAX_PAGE_ELEMENTS) {
    throw new Error(`page of ${rowCount} × ${colCount} values is larger than ${MAX_PAGE_ELEMENTS}`);
  }
  return { row, col, rowCount, colCount };
}
