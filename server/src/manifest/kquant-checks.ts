// The manifest checks of a kquant weight (two-level scales, docs/FORMAT.md): its quantization fields, and the dtype
// and shape each of its members (q, q_codes, q_d, q_dmin) must have. checks.ts calls these for type kquant.
import { checkFormat, type KqFormat } from '../../../native/kquant';
import { matrixView, packedRowBytes } from '../formats/manifest';

/** The kquant format of a manifest quantization block, or a one-line problem. */
export function kquantFormatOf(q: Record<string, unknown>): KqFormat | string {
  const f = {
    bits: q.bits,
    group: q.group_size,
    super: q.super_size,
    scaleBits: q.scale_bits,
    minBits: q.min_bits,
  } as unknown as KqFormat;
  for (const [k, v] of [
    ['group_size', f.group],
    ['super_size', f.super],
    ['scale_bits', f.scaleBits],
    ['min_bits', f.minBits],
  ] as const)
    if (v === undefined) return `kquant needs ${k}`;
  if (f.bits !== 2 && f.bits !== 4) return `kquant needs bits 2 or 4 (got ${String(f.bits)})`;
  try {
    checkFormat(f, 'kquant');
  } catch (e) {
    return (e as Error).message;
  }
  return f;
}

/** Problems with a kquant entry's fields other than the members' contents (one line each). */
export function kquantEntryProblems(w: Record<string, unknown>, q: Record<string, unknown>): string[] {
  const out: string[] = [];
  const f = kquantFormatOf(q);
  if (typeof f === 'string') out.push(f);
  for (const fld of ['q_codes', 'q_d', 'q_dmin'] as const)
    if (typeof w[fld] !== 'string') out.push(`${fld} is needed for a kquant weight`);
  for (const fld of ['q_scales', 'q_zero_point'] as const)
    if (w[fld] !== null) out.push(`${fld} must be null for kquant (old readers must not misread it)`);
  if (q.method !== undefined && q.method !== 'asymmetric') out.push('kquant needs method "asymmetric"');
  if (q.scale_dtype !== undefined && q.scale_dtype !== 'float16') out.push('kquant stores d and dmin as float16');
  return out;
}

/** The dtype and the shapes a member of a kquant weight may have; undefined for a field kquant does not use. */
export function kquantMemberWant(
  fld: string,
  q: Record<string, unknown>,
  shape: readonly number[],
): { dtype: string[]; shapes: number[][] } | undefined {
  const f = kquantFormatOf(q);
  if (typeof f === 'string') return undefined;
  const { rows, cols } = matrixView(shape);
  const lead = shape.slice(0, -1);
  const both = (n: number) => [
    [rows, n],
    [...lead, n],
  ];
  const groups = Math.ceil(cols / f.group);
  if (fld === 'q') return { dtype: ['uint8'], shapes: both(packedRowBytes(cols, f.bits)) };
  if (fld === 'q_codes') return { dtype: ['uint8'], shapes: both(Math.ceil((groups * (f.scaleBits + f.minBits)) / 8)) };
  if (fld === 'q_d' || fld === 'q_dmin') return { dtype: ['float16'], shapes: both(Math.ceil(cols / f.super)) };
  return undefined;
}
