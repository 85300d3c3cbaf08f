// numpy .npy: headers v1/v2/v3, dtypes bool, (u)int8..64, float16/32/64 in both byte orders, C and Fortran order,
// 0-d and empty arrays, 64-byte header alignment. Parsing reads only the header, never the data.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { ElementDType } from '../../../native/index';
import { byteswapInPlace } from './dtypes';
import { FormatError } from './errors';
import type { RandomAccessSource } from './source';

/** The dtypes a .npy holds: the engine's element types (native/index.ts) less those numpy itself lacks. */
export type NpDtype = Exclude<ElementDType, 'bfloat16' | 'float8_e4m3fn' | 'float8_e5m2'>;

export const NP_DTYPES: readonly NpDtype[] = [
  'bool',
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'uint64',
  'int64',
  'float16',
  'float32',
  'float64',
];

const CODES: Record<NpDtype, string> = {
  bool: 'b1',
  uint8: 'u1',
  int8: 'i1',
  uint16: 'u2',
  int16: 'i2',
  uint32: 'u4',
  int32: 'i4',
  uint64: 'u8',
  int64: 'i8',
  float16: 'f2',
  float32: 'f4',
  float64: 'f8',
};
const BY_CODE = new Map<string, NpDtype>(Object.entries(CODES).map(([k, v]) => [v, k as NpDtype]));

export function dtypeItemSize(dtype: NpDtype): number {
  return Number(CODES[dtype].slice(1));
}

/** numpy's descr for a dtype: '<f4', '|u1', '>i8', ... */
export function dtypeDescr(dtype: NpDtype, littleEndian = true): string {
  const code = CODES[dtype];
  if (code.endsWith('1')) return `|${code}`;
  return `${littleEndian ? '<' : '>'}${code}`;
}

/** Parses a descr ('<f4', '>i2', '|b1', '=u8'); undefined when it is not one of the supported dtypes. */
export function parseDescr(descr: string): { dtype: NpDtype; littleEndian: boolean } | undefined {
  const m = /^([<>|=]?)([biuf]\d+)$/.exec(descr);
  if (!m) return undefined;
  const dtype = BY_CODE.get(m[2]);
  if (!dtype) return undefined;
  return { dtype, littleEndian: m[1] !== '>' };
}

export interface NpyHeader {
  dtype: NpDtype;
  descr: string;
  littleEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Bytes of magic + length + header dict (the data starts right after). */
  headerBytes: number;
  /** Absolute offset of the data in the source. */
  dataOffset: number;
  /** Bytes of array data: count × itemSize. */
  dataBytes: number;
  itemSize: number;
  /** Number of elements (product of the shape; 1 for 0-d). */
  count: number;
  version: [number, number];
}

/**
 * A member whose elements are not numbers: fixed-width strings ('<U5': UTF-32 code points; '|S8': bytes) or
 * Python objects ('|O': a pickle, never unpickled; its dataBytes is the rest of the member and itemSize 0).
 */
export interface NpyOtherHeader extends Omit<NpyHeader, 'dtype'> {
  dtype: 'unicode' | 'bytes' | 'object';
}
export type NpyAnyHeader = NpyHeader | NpyOtherHeader;

export function isNumericHeader(h: NpyAnyHeader): h is NpyHeader {
  return h.dtype !== 'unicode' && h.dtype !== 'bytes' && h.dtype !== 'object';
}

/** numpy's spelling of a header's dtype: float32, uint8, ... or the descr ('<U5', '|S8', '|O') for the others. */
export function dtypeName(h: NpyAnyHeader): string {
  return isNumericHeader(h) ? h.dtype : h.descr;
}

function parseOtherDescr(descr: string): { dtype: NpyOtherHeader['dtype']; itemSize: number } | undefined {
  const m = /^([<>|=]?)([USO])(\d*)$/.exec(descr);
  if (!m) return undefined;
  if (m[2] === 'O') return m[3] === '' || m[3] === '8' ? { dtype: 'object', itemSize: 0 } : undefined;
  const n = m[3] === '' ? 0 : Number(m[3]);
  return m[2] === 'U' ? { dtype: 'unicode', itemSize: 4 * n } : { dtype: 'bytes', itemSize: n };
}

/** Largest header dict accepted (numpy itself refuses more than 10 000 bytes unless told otherwise). */
export const MAX_NPY_HEADER_BYTES = 1 << 20;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// --- a tiny parser for the Python literal of the header dict ---

type PyValue = string | number | boolean | null | PyValue[] | { [k: string]: PyValue };

function parsePyLiteral(text: string, fail: (why: string) => never): PyValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) fail('header nests too deeply');
    ws();
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string in header');
      const s = text.slice(i + 1, end);
      if (s.includes('\\')) fail('escape sequences in header strings are not supported');
      i = end + 1;
      return s;
    }
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      const dict: { [k: string]: PyValue } = {};
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        const v = value(depth + 1);
        if (c === '{') {
          ws();
          if (text[i] !== ':') fail("expected ':' in header dict");
          i++;
          if (typeof v !== 'string') fail('header dict keys must be strings');
          if (Object.hasOwn(dict, v)) fail(`duplicate key '${v}' in header`);
          dict[v] = value(depth + 1);
        } else items.push(v);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}' in header at character ${i}`);
      }
      return c === '{' ? dict : items;
    }
    const m = /^(-?\d+)L?|^(True|False|None)/.exec(text.slice(i, i + 40));
    if (!m) fail(`unexpected text in header at character ${i}`);
    i += m[0].length;
    if (m[2]) return m[2] === 'True' ? true : m[2] === 'False' ? false : null;
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) fail(`number ${m[1]} in header is too large`);
    return n;
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing text after header dict');
  return v;
}

/** Checks a shape and returns the element count; throws a FormatError naming `file` for bad or overflowing dims. */
export function shapeCount(file: string, shape: readonly unknown[], itemSize = 1): number {
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      throw new FormatError(file, `invalid shape dimension ${String(d)} in [${shape.join(', ')}]`);
    count *= d;
    if (count * itemSize > Number.MAX_SAFE_INTEGER)
      throw new FormatError(file, `shape [${shape.join(', ')}] overflows`);
  }
  return count;
}

/**
 * Parses the header at `offset` given a reader over `size` bytes: shared by files, buffers and compressed zip
 * members (whose reader inflates on demand).
 */
export async function parseNpyHeaderWith(
  name: string,
  read: (offset: number, length: number) => Promise<Buffer>,
  size: number,
  offset = 0,
): Promise<NpyHeader> {
  const h = await parseNpyAnyHeaderWith(name, read, size, offset);
  if (!isNumericHeader(h)) throw new FormatError(name, `unsupported dtype '${h.descr}'`);
  return h;
}

/** parseNpyHeaderWith, also accepting string, bytes and object arrays (see NpyOtherHeader). */
export async function parseNpyAnyHeaderWith(
  name: string,
  read: (offset: number, length: number) => Promise<Buffer>,
  size: number,
  offset = 0,
): Promise<NpyAnyHeader> {
  const fail = (why: string): never => {
    throw new FormatError(name, why);
  };
  const avail = size - offset;
  if (avail < 10) fail(`not a .npy file: ${avail} bytes is too short for a header (truncated?)`);
  const pre = await read(offset, Math.min(12, avail));
  if (!pre.subarray(0, 6).equals(MAGIC)) fail('not a .npy file (bad magic)');
  const major = pre[6];
  const minor = pre[7];
  let prefix: number;
  let hlen: number;
  if (major === 1) {
    prefix = 10;
    hlen = pre.readUInt16LE(8);
  } else if (major === 2 || major === 3) {
    if (pre.length < 12) fail('truncated .npy header');
    prefix = 12;
    hlen = pre.readUInt32LE(8);
  } else return fail(`unsupported .npy version ${major}.${minor}`);
  if (hlen > MAX_NPY_HEADER_BYTES) fail(`header length ${hlen} exceeds the ${MAX_NPY_HEADER_BYTES}-byte limit`);
  if (prefix + hlen > avail) fail(`header length ${hlen} runs past the end of the file (${avail} bytes)`);
  const raw = await read(offset + prefix, hlen);
  const text = raw.toString(major === 3 ? 'utf8' : 'latin1');
  const dict = parsePyLiteral(text.trim(), fail);
  if (!dict || typeof dict !== 'object' || Array.isArray(dict)) return fail('header is not a dict');
  const descr = dict.descr;
  if (typeof descr !== 'string') {
    return fail(Array.isArray(descr) ? 'structured dtypes are not supported' : "header has no 'descr' string");
  }
  const dt = parseDescr(descr);
  const other = dt ? undefined : parseOtherDescr(descr);
  if (!dt && !other) return fail(`unsupported dtype '${descr}'`);
  const fortranOrder = dict.fortran_order;
  if (typeof fortranOrder !== 'boolean') fail("header has no boolean 'fortran_order'");
  const shape = dict.shape;
  if (!Array.isArray(shape)) return fail("header has no 'shape' tuple");
  const itemSize = dt ? dtypeItemSize(dt.dtype) : other!.itemSize;
  const count = shapeCount(name, shape, itemSize);
  const dataOffset = offset + prefix + hlen;
  const dataBytes = other?.dtype === 'object' ? Math.max(0, size - dataOffset) : count * itemSize;
  if (dataBytes > size - dataOffset) {
    fail(
      `shape [${shape.join(', ')}] needs ${dataBytes} bytes of data but only ${size - dataOffset} remain (truncated?)`,
    );
  }
  return {
    dtype: dt ? dt.dtype : other!.dtype,
    descr,
    littleEndian: dt ? dt.littleEndian : descr[0] !== '>',
    fortranOrder: fortranOrder as boolean,
    shape: shape as number[],
    headerBytes: prefix + hlen,
    dataOffset,
    dataBytes,
    itemSize,
    count,
    version: [major, minor],
  };
}

/** Parses the .npy header at `offset` of a source, reading only the header. */
export function parseNpyHeader(src: RandomAccessSource, offset = 0): Promise<NpyHeader> {
  return parseNpyHeaderWith(src.name, (o, l) => src.read(o, l), src.size, offset);
}

/** parseNpyHeader, also accepting string, bytes and object arrays. */
export function parseNpyAnyHeader(src: RandomAccessSource, offset = 0): Promise<NpyAnyHeader> {
  return parseNpyAnyHeaderWith(src.name, (o, l) => src.read(o, l), src.size, offset);
}

export interface NpyHeaderSpec {
  dtype?: NpDtype;
  descr?: string;
  shape: readonly number[];
  fortranOrder?: boolean;
}

/** Resolves a spec to its descr and dtype; throws on unsupported ones. */
export function resolveSpec(spec: NpyHeaderSpec): { descr: string; dtype: NpDtype; littleEndian: boolean } {
  if (spec.descr !== undefined) {
    const dt = parseDescr(spec.descr);
    if (!dt) throw new Error(`unsupported numpy descr '${spec.descr}'`);
    return { descr: spec.descr, ...dt };
  }
  if (!spec.dtype || !(spec.dtype in CODES)) throw new Error(`unsupported numpy dtype '${spec.dtype}'`);
  return { descr: dtypeDescr(spec.dtype), dtype: spec.dtype, littleEndian: true };
}

/** numpy's header bytes (as numpy ≥ 1.24 writes them: sorted keys, growth padding, 64-byte alignment). */
export function encodeNpyHeader(spec: NpyHeaderSpec): Buffer {
  const { descr } = resolveSpec(spec);
  const fortran = !!spec.fortranOrder;
  for (const d of spec.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`invalid shape dimension ${d}`);
  }
  const shapeRepr = spec.shape.length === 1 ? `(${spec.shape[0]},)` : `(${spec.shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeRepr}, }`;
  if (spec.shape.length > 0) {
    const growth = String(spec.shape[fortran ? spec.shape.length - 1 : 0]);
    dict += ' '.repeat(Math.max(0, 21 - growth.length));
  }
  const body = Buffer.from(dict, 'latin1');
  for (const [major, lenBytes] of [
    [1, 2],
    [2, 4],
  ] as const) {
    const hlen = body.length + 1;
    const padlen = 64 - ((6 + 2 + lenBytes + hlen) % 64);
    const total = hlen + padlen;
    if (lenBytes === 2 && total >= 65536) continue;
    const out = Buffer.alloc(6 + 2 + lenBytes + total, 0x20);
    MAGIC.copy(out, 0);
    out[6] = major;
    out[7] = 0;
    if (lenBytes === 2) out.writeUInt16LE(total, 8);
    else out.writeUInt32LE(total, 8);
    body.copy(out, 8 + lenBytes);
    out[out.length - 1] = 0x0a;
    return out;
  }
  throw new Error('unreachable');
}

export type NpTypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/**
 * Raw data bytes → a typed array in native (little-endian) order. bool → Uint8Array, float16 → Uint16Array of raw
 * bits (see dtypes.ts), int64/uint64 → BigInt64Array/BigUint64Array. Always copies.
 */
export function toTypedArray(dtype: NpDtype, raw: Uint8Array, littleEndian = true): NpTypedArray {
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  if (!littleEndian) byteswapInPlace(copy, dtypeItemSize(dtype));
  const b = copy.buffer;
  switch (dtype) {
    case 'bool':
    case 'uint8':
      return copy;
    case 'int8':
      return new Int8Array(b);
    case 'uint16':
    case 'float16':
      return new Uint16Array(b);
    case 'int16':
      return new Int16Array(b);
    case 'uint32':
      return new Uint32Array(b);
    case 'int32':
      return new Int32Array(b);
    case 'uint64':
      return new BigUint64Array(b);
    case 'int64':
      return new BigInt64Array(b);
    case 'float32':
      return new Float32Array(b);
    case 'float64':
      return new Float64Array(b);
  }
}

/** Reads a whole .npy from a source: the header and its data as a native-order typed array. */
export async function readNpyArray(src: RandomAccessSource): Promise<{ header: NpyHeader; data: NpTypedArray }> {
  const header = await parseNpyHeader(src);
  const raw = await src.read(header.dataOffset, header.dataBytes);
  return { header, data: toTypedArray(header.dtype, raw, header.littleEndian) };
}

/** Writes `path` atomically (temp file + rename). `data` holds the raw little-endian bytes (or a typed array). */
export async function writeNpyFile(
  path: string,
  dtype: NpDtype,
  shape: readonly number[],
  data: ArrayBufferView,
  fortranOrder = false,
): Promise<void> {
  const header = encodeNpyHeader({ dtype, shape, fortranOrder });
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const want = shapeCount(path, shape, dtypeItemSize(dtype)) * dtypeItemSize(dtype);
  if (bytes.byteLength !== want) {
    throw new Error(`${path}: shape [${shape.join(', ')}] of ${dtype} needs ${want} bytes, got ${bytes.byteLength}`);
  }
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.write(bytes, 0, bytes.length, header.length);
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
