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
