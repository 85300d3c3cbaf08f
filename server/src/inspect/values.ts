// Raw .npy bytes → numbers, for every numpy dtype the formats reader names, in either byte order.
// Pure (DataView only): the inspector host decodes pages and statistics samples with it.
import { bf16ToF32, f16ToF32 } from '../formats/dtypes';

/** Bytes per element of a numpy dtype name (`float32`, `uint8`, ...); undefined for dtypes we cannot show. */
export function dtypeSize(dtype: string): number | undefined {
  switch (dtype) {
    case 'bool':
    case 'uint8':
    case 'int8':
      return 1;
    case 'uint16':
    case 'int16':
    case 'float16':
    case 'bfloat16':
      return 2;
    case 'uint32':
    case 'int32':
    case 'float32':
      return 4;
    case 'uint64':
    case 'int64':
    case 'float64':
      return 8;
    default:
      return undefined;
  }
}

/**
 * Decodes `count` elements starting at byte `byteOffset` of `bytes` into `out` (from `outOffset`).
 * int64/uint64 beyond 2^53 lose precision (shown as the nearest double), as numpy's float conversion does.
 */
export function decodeInto(
  bytes: Uint8Array,
  dtype: string,
  littleEndian: boolean,
  out: Float64Array | number[],
  outOffset = 0,
  byteOffset = 0,
  count?: number,
): number {
  const size = dtypeSize(dtype);
  if (size === undefined) throw new Error(`cannot show values of dtype ${dtype}`);
  const n = count ?? Math.floor((bytes.byteLength - byteOffset) / size);
  if (byteOffset + n * size > bytes.byteLength)
    throw new Error(`need ${n * size} bytes, have ${bytes.byteLength - byteOffset}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, n * size);
  const le = littleEndian;
  switch (dtype) {
    case 'bool':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getUint8(i) ? 1 : 0;
      break;
    case 'uint8':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getUint8(i);
      break;
    case 'int8':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getInt8(i);
      break;
    case 'uint16':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getUint16(2 * i, le);
      break;
    case 'int16':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getInt16(2 * i, le);
      break;
    case 'float16':
      for (let i = 0; i < n; i++) out[outOffset + i] = f16ToF32(dv.getUint16(2 * i, le));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) out[outOffset + i] = bf16ToF32(dv.getUint16(2 * i, le));
      break;
    case 'uint32':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getUint32(4 * i, le);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getInt32(4 * i, le);
      break;
    case 'float32':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat32(4 * i, le);
      break;
    case 'uint64':
      for (let i = 0; i < n; i++) out[outOffset + i] = Number(dv.getBigUint64(8 * i, le));
      break;
    case 'int64':
      for (let i = 0; i < n; i++) out[outOffset + i] = Number(dv.getBigInt64(8 * i, le));
      break;
    case 'float64':
      for (let i = 0; i < n; i++) out[outOffset + i] = dv.getFloat64(8 * i, le);
      break;
  }
  return n;
}

export function decode(bytes: Uint8Array, dtype: string, littleEndian = true): Float64Array {
  const size = dtypeSize(dtype);
  if (size === undefined) throw new Error(`cannot show values of dtype ${dtype}`);
  const out = new Float64Array(Math.floor(bytes.byteLength / size));
  decodeInto(bytes, dtype, littleEndian, out);
  return out;
}

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
