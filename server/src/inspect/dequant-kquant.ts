// The inspector's dequantized rows of a kquant weight (two-level scales, docs/FORMAT.md): rows of q, q_codes, q_d
// and q_dmin read from the archive and turned into float32 by the engine's kdequantize (native/kquant.ts).
import { type KqFormat, kdequantize, kqSizes } from '../../../native/kquant';
import type { WeightEntry } from '../formats/manifest';
import type { NpyHeader } from '../formats/npy';

export interface KquantRowSource {
  header(member: string): Promise<NpyHeader>;
  data(member: string, offset: number, length: number): Promise<Uint8Array>;
}

/** The format of a kquant manifest entry (validated by the caller's checks), or undefined for other types. */
export function kquantFormatOfEntry(w: WeightEntry): KqFormat | undefined {
  const q = w.quantization;
  if (q?.type !== 'kquant' || (q.bits !== 2 && q.bits !== 4)) return undefined;
  const f = { bits: q.bits, group: q.group_size, super: q.super_size, scaleBits: q.scale_bits, minBits: q.min_bits };
  if (![f.group, f.super, f.scaleBits, f.minBits].every((v) => Number.isInteger(v) && (v as number) > 0))
    return undefined;
  if (!w.q_codes || !w.q_d || !w.q_dmin) return undefined;
  return f as KqFormat;
}

/** The members of a kquant entry: q, codes, d, dmin. */
export function kquantMembers(w: WeightEntry): string[] {
  return [w.q, w.q_codes!, w.q_d!, w.q_dmin!];
}

/** Dequantized rows [row, row + rowCount) (all columns) of a kquant weight. */
export async function kquantRows(
  src: KquantRowSource,
  w: WeightEntry,
  f: KqFormat,
  cols: number,
  row: number,
  rowCount: number,
): Promise<Float32Array> {
  const per = kqSizes(1, cols, f);
  const members = kquantMembers(w);
  const keys = ['q', 'codes', 'd', 'dmin'] as const;
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) {
    const h = await src.header(members[i]);
    const want = i < 2 ? 'uint8' : 'float16';
    const total = (row + rowCount) * per[keys[i]];
    if (h.dtype !== want || h.fortranOrder || h.dataBytes < total || (i >= 2 && !h.littleEndian)) {
      throw new Error(
        `${members[i]}: expected ${row + rowCount}+ rows of ${per[keys[i]]} bytes (${want}), found ${h.dtype} ${JSON.stringify(h.shape)}`,
      );
    }
    parts.push(await src.data(members[i], row * per[keys[i]], rowCount * per[keys[i]]));
  }
  return kdequantize({ ...f, rows: rowCount, cols, q: parts[0], codes: parts[1], d: parts[2], dmin: parts[3] });
}
