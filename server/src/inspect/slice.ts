// 2-D slices of N-d tensors: which elements a slice's cell stands for (C or Fortran order), checked against the
// shape. Pure: the session reads only the elements a page of the slice shows.
import type { InspectorSlice } from '../protocol';

/** The slice's grid (rows = shape[rowAxis], cols = shape[colAxis]); a bad slice throws one line naming it. */
export function sliceGrid(name: string, shape: readonly number[], s: InspectorSlice): { rows: number; cols: number } {
  const n = shape.length;
  const axis = (a: unknown) => Number.isSafeInteger(a) && (a as number) >= 0 && (a as number) < n;
  if (n < 2 || !axis(s?.rowAxis) || !axis(s?.colAxis) || s.rowAxis === s.colAxis)
    throw new Error(`${name}: bad slice axes ${s?.rowAxis}, ${s?.colAxis} for shape (${shape.join(', ')})`);
  if (!Array.isArray(s.index) || s.index.length !== n)
    throw new Error(`${name}: a slice of shape (${shape.join(', ')}) needs ${n} indices`);
  for (let k = 0; k < n; k++) {
    if (k === s.rowAxis || k === s.colAxis) continue;
    const i = s.index[k];
    if (!Number.isSafeInteger(i) || i < 0 || i >= shape[k])
      throw new Error(`${name}: index ${i} on axis ${k} is outside 0 … ${shape[k] - 1}`);
  }
  return { rows: shape[s.rowAxis], cols: shape[s.colAxis] };
}

/** Element strides of a shape in C order (last axis fastest) or Fortran order (first axis fastest). */
export function strides(shape: readonly number[], fortranOrder: boolean): number[] {
  const out = new Array<number>(shape.length);
  let st = 1;
  if (fortranOrder) {
    for (let k = 0; k < shape.length; k++) {
      out[k] = st;
      st *= shape[k];
    }
  } else {
    for (let k = shape.length - 1; k >= 0; k--) {
      out[k] = st;
      st *= shape[k];
    }
  }
  return out;
}

/**
 * Flat element offsets of the cells [row, row + rowCount) × [col, col + colCount) of a (checked) slice, row-major.
 */
export function sliceIndices(
  h: { shape: number[]; fortranOrder: boolean },
  s: InspectorSlice,
  row: number,
  rowCount: number,
  col: number,
  colCount: number,
): number[] {
  const st = strides(h.shape, h.fortranOrder);
  let base = 0;
  for (let k = 0; k < h.shape.length; k++) if (k !== s.rowAxis && k !== s.colAxis) base += s.index[k] * st[k];
  const rs = st[s.rowAxis];
  const cs = st[s.colAxis];
  const out = new Array<number>(rowCount * colCount);
  let i = 0;
  for (let r = row; r < row + rowCount; r++)
    for (let c = col; c < col + colCount; c++) out[i++] = base + r * rs + c * cs;
  return out;
}
