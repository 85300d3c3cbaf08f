// How the inspector lays values out: the grid a shape is shown as, and numbers in JSON pages. Decoding raw bytes to
// numbers is the engine's (native/index.ts decodeInto: every numpy dtype, either byte order).

/** A number for a JSON page: non-finite values become the strings 'NaN', 'Infinity', '-Infinity'. */
export function jsonValue(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** Rows × cols the inspector shows for a shape: the last axis as columns; a 1-D tensor as n × 1. */
export function gridShape(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  if (shape.length === 1) return { rows: shape[0], cols: 1 };
  const cols = shape[shape.length - 1];
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i];
  return { rows, cols };
}

/**
 * One element of a numpy string ('U': UTF-32 code points in the header's byte order) or bytes ('S') array as text,
 * trailing NULs dropped as numpy drops them; a byte outside printable ASCII in a bytes element shows as \xNN.
 */
export function decodeText(raw: Uint8Array, unicode: boolean, littleEndian = true): string {
  let s = '';
  if (unicode) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i + 4 <= raw.byteLength; i += 4) {
      const cp = dv.getUint32(i, littleEndian);
      s += cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
    }
    return s.replace(/\0+$/, '');
  }
  let end = raw.length;
  while (end > 0 && raw[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) {
    const b = raw[i];
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** Offset (in elements) of grid cell (r, c) in the member's data. */
export function elementIndex(
  h: { shape: number[]; fortranOrder: boolean },
  rows: number,
  cols: number,
  r: number,
  c: number,
): number {
  if (!h.fortranOrder || h.shape.length < 2) return r * cols + c;
  // Fortran order: the first axes vary fastest. Row r is a C-order multi-index over shape[:-1].
  const lead = h.shape.slice(0, -1);
  let rem = r;
  let off = 0;
  let stride = 1;
  const idx = new Array<number>(lead.length);
  for (let k = lead.length - 1; k >= 0; k--) {
    idx[k] = rem % lead[k];
    rem = Math.floor(rem / lead[k]);
  }
  for (let k = 0; k < lead.length; k++) {
    off += idx[k] * stride;
    stride *= lead[k];
  }
  return off + c * rows;
}

/** Columns [col, col + colCount) of a row-major rows × cols matrix. */
export function cutColumns(m: Float32Array, rows: number, cols: number, col: number, colCount: number): Float64Array {
  if (col === 0 && colCount === cols) return Float64Array.from(m);
  const out = new Float64Array(rows * colCount);
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * cols + col, r * cols + col + colCount), r * colCount);
  return out;
}
