// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// then the tensor bytes. Every dtype of the format is recognised; F32/F16/BF16 convert to f32. Sharded checkpoints
// are read through model.safetensors.index.json. https://github.com/huggingface/safetensors#format
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bf16BytesToF32, f16BytesToF32 } from './dtypes';
import { FormatError } from './errors';
import { matrixView } from './manifest';
import { shapeCount } from './npy';
import { readSafetensorsIndex } from './safetensors-index';
import { openFileSource, type RandomAccessSource, readIntoFrom } from './source';

export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'C64'
  | 'F64'
  | 'I64'
  | 'U64';

/** Bits per element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** The dtype as numpy (or ml_dtypes, for the types numpy lacks) spells it. */
export const SAFETENSORS_NUMPY_NAMES: Readonly<Record<SafetensorsDtype, string>> = {
  BOOL: 'bool',
  U8: 'uint8',
  I8: 'int8',
  F8_E5M2: 'float8_e5m2',
  F8_E4M3: 'float8_e4m3fn',
  F8_E8M0: 'float8_e8m0fnu',
  F4: 'float4_e2m1fn',
  F6_E2M3: 'float6_e2m3fn',
  F6_E3M2: 'float6_e3m2fn',
  I16: 'int16',
  U16: 'uint16',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  U32: 'uint32',
  F32: 'float32',
  C64: 'complex64',
  F64: 'float64',
  I64: 'int64',
  U64: 'uint64',
};

export function isSafetensorsDtype(d: string): d is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BITS, d);
}

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) relative to the start of the data section (as in the header). */
  dataOffsets: [number, number];
  byteLength: number;
}

export interface SafetensorsFile {
  readonly name: string;
  readonly tensors: SafetensorsTensor[];
  readonly metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  readonly dataStart: number;
  tensor(name: string): SafetensorsTensor | undefined;
  /** Raw little-endian bytes of a tensor, or of a byte range within it. */
  /** `into` (at least byteLength bytes): read into it instead of a new buffer; the result is a view of it. */
  readRaw(name: string, byteOffset?: number, byteLength?: number, into?: Uint8Array): Promise<Buffer>;
  /** A F32/F16/BF16 tensor as float32 (into `out` when given: no allocation of the result). */
  readF32(name: string, out?: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Largest JSON header accepted. */
export const MAX_SAFETENSORS_HEADER = 100 << 20;

export async function openSafetensors(src: RandomAccessSource): Promise<SafetensorsFile> {
  const file = src.name;
  const fail = (why: string): never => {
    throw new FormatError(file, why);
  };
  if (src.size < 8) fail(`not a safetensors file (${src.size} bytes is too short)`);
  const lenBig = (await src.read(0, 8)).readBigUInt64LE(0);
  if (lenBig > BigInt(MAX_SAFETENSORS_HEADER))
    fail(`header length ${lenBig} exceeds the ${MAX_SAFETENSORS_HEADER}-byte limit`);
  const hlen = Number(lenBig);
  if (8 + hlen > src.size) fail(`header length ${hlen} runs past the end of the file (${src.size} bytes; truncated?)`);
  const text = (await src.read(8, hlen)).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return fail('header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataSize = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Array.isArray(v)) fail('__metadata__ is not an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t !== 'object') fail(`tensor '${name}': entry is not an object`);
    if (typeof t.dtype !== 'string' || !isSafetensorsDtype(t.dtype))
      fail(`tensor '${name}': unknown dtype ${JSON.stringify(t.dtype)}`);
    const dtype = t.dtype as SafetensorsDtype;
    if (!Array.isArray(t.shape)) return fail(`tensor '${name}': shape is not an array`);
    const shape = t.shape as number[];
    let count: number;
    try {
      count = shapeCount(file, shape);
    } catch (e) {
      return fail(`tensor '${name}': ${(e as FormatError).problem}`);
    }
    const bits = count * SAFETENSORS_DTYPE_BITS[dtype];
    if (!Number.isSafeInteger(bits)) fail(`tensor '${name}': shape [${shape.join(', ')}] overflows`);
    if (bits % 8) fail(`tensor '${name}': ${count} elements of ${dtype} are not a whole number of bytes`);
    const off = t.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
    ) {
      return fail(`tensor '${name}': data_offsets must be two non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] are reversed`);
    if (end > dataSize) fail(`tensor '${name}': data_offsets [${begin}, ${end}] run past the data (${dataSize} bytes)`);
    if (end - begin !== bits / 8) {
      fail(
        `tensor '${name}': data_offsets span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${bits / 8}`,
      );
    }
    tensors.push({ name, dtype, shape, dataOffsets: [begin, end], byteLength: end - begin });
  }
  const sorted = [...tensors].sort(
    (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.dataOffsets[0] < a.dataOffsets[1]) fail(`tensors '${a.name}' and '${b.name}' overlap in the data`);
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const get = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new FormatError(file, `no tensor named '${name}'`);
    return t;
  };
  const readRaw = async (name: string, byteOffset = 0, byteLength?: number, into?: Uint8Array) => {
    const t = get(name);
    const len = byteLength ?? t.byteLength - byteOffset;
    if (
      !Number.isSafeInteger(byteOffset) ||
      !Number.isSafeInteger(len) ||
      byteOffset < 0 ||
      len < 0 ||
      byteOffset + len > t.byteLength
    ) {
      throw new FormatError(
        file,
        `tensor '${name}': byte range ${byteOffset}+${len} is outside its ${t.byteLength} bytes`,
      );
    }
    if (into && into.byteLength >= len) {
      const view = Buffer.from(into.buffer, into.byteOffset, len);
      await readIntoFrom(src, view, dataStart + t.dataOffsets[0] + byteOffset);
      return view;
    }
    return src.read(dataStart + t.dataOffsets[0] + byteOffset, len);
  };
  return {
    name: file,
    tensors,
    metadata,
    dataStart,
    tensor: (name) => byName.get(name),
    readRaw,
    async readF32(name, out) {
      const t = get(name);
      const item = SAFETENSORS_DTYPE_BITS[t.dtype] / 8;
      if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16')
        toF32(new Uint8Array(0), t.dtype, `${file}: tensor '${name}'`);
      const n = t.byteLength / item;
      if (out && out.length < n)
        throw new Error(`${file}: tensor '${name}': output holds ${out.length} values, needs ${n}`);
      const dst = out ?? new Float32Array(n);
      // Read and convert in pieces through one reused buffer straight into the result: no second full-size
      // buffer, no per-piece allocation, cache-friendly.
      const step = Math.min(t.byteLength, 2 << 20);
      const scratch = Buffer.allocUnsafe(step);
      const base = dataStart + t.dataOffsets[0];
      for (let o = 0; o < t.byteLength; o += step) {
        const raw = scratch.subarray(0, Math.min(step, t.byteLength - o));
        await readIntoFrom(src, raw, base + o);
        toF32Into(raw, t.dtype, dst.subarray(o / item, (o + raw.length) / item));
      }
      return out ? dst.subarray(0, n) : dst;
    },
    close: () => src.close(),
  };
}

/** Raw little-endian F32/F16/BF16 bytes → Float32Array (always a fresh, aligned array). */
export function toF32(raw: Uint8Array, dtype: string, what = 'tensor'): Float32Array {
  const item = dtype === 'F32' ? 4 : 2;
  return toF32Into(raw, dtype, new Float32Array(Math.floor(raw.byteLength / item)), what);
}

/** Like toF32, into `out` (which must hold raw.byteLength / itemSize values); returns `out`. */
export function toF32Into(raw: Uint8Array, dtype: string, out: Float32Array, what = 'tensor'): Float32Array {
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw.subarray(0, out.length * 4));
      return out;
    case 'F16':
      return f16BytesToF32(raw, out);
    case 'BF16':
      return bf16BytesToF32(raw, out);
    default:
      throw new Error(`${what}: cannot convert ${dtype} to float32 (only F32, F16 and BF16)`);
  }
}

export interface CheckpointTensor extends SafetensorsTensor {
  /** The safetensors file (base name within the checkpoint folder). */
  file: string;
}

export interface Checkpoint {
  readonly dir: string;
  /** Safetensors file names (relative to `dir`), in order. */
  readonly files: string[];
  readonly tensors: CheckpointTensor[];
  readonly metadata: Record<string, string>;
  tensor(name: string): CheckpointTensor | undefined;
  /**
   * Raw bytes (source dtype) of rows [rowStart, rowStart + rowCount) of the tensor's rows × cols view; into a
   * caller's buffer when `into` is given and large enough (the result is then a view of it).
   */
  readRows(name: string, rowStart: number, rowCount: number, into?: Uint8Array): Promise<Buffer>;
  readRaw(name: string, byteOffset?: number, byteLength?: number): Promise<Buffer>;
  readF32(name: string, out?: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/**
 * Opens a checkpoint folder: `model.safetensors.index.json` (sharded) if present, else `model.safetensors`, else
 * every `*.safetensors` in the folder (sorted). Throws a FormatError naming the file at fault.
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const indexPath = join(dir, SAFETENSORS_INDEX);
  let files: string[];
  let weightMap: Map<string, string> | undefined;
  const exists = (p: string) =>
    stat(p).then(
      (s) => s.isFile(),
      () => false,
    );
  if (await exists(indexPath)) {
    ({ weightMap, files } = await readSafetensorsIndex(indexPath));
  } else if (await exists(join(dir, 'model.safetensors'))) {
    files = ['model.safetensors'];
  } else {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      throw new FormatError(
        dir,
        `cannot read the checkpoint folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    files = names.filter((n) => n.endsWith('.safetensors')).sort();
    if (!files.length) throw new FormatError(dir, 'no model.safetensors, index or *.safetensors file in the folder');
  }
  const opened: SafetensorsFile[] = [];
  try {
    for (const f of files) opened.push(await openSafetensors(await openFileSource(join(dir, f))));
  } catch (e) {
    await Promise.all(opened.map((o) => o.close()));
    throw e;
  }
  const byFile = new Map(files.map((f, i) => [f, opened[i]]));
  const tensors: CheckpointTensor[] = [];
  const where = new Map<string, CheckpointTensor>();
  const fail = async (path: string, why: string): Promise<never> => {
    await Promise.all(opened.map((o) => o.close()));
    throw new FormatError(path, why);
  };
  for (const [i, sf] of opened.entries()) {
    for (const t of sf.tensors) {
      if (weightMap && weightMap.get(t.name) !== files[i]) continue; // not the index's copy
      if (where.has(t.name)) await fail(sf.name, `tensor '${t.name}' also appears in ${where.get(t.name)!.file}`);
      const ct = { ...t, file: files[i] };
      tensors.push(ct);
      where.set(t.name, ct);
    }
  }
  if (weightMap) {
    for (const [t, f] of weightMap) {
      if (!where.has(t)) await fail(join(dir, f), `tensor '${t}' listed in ${SAFETENSORS_INDEX} is missing`);
    }
  }
  const metadata = Object.assign({}, ...opened.map((o) => o.metadata)) as Record<string, string>;
  const get = (name: string) => {
    const t = where.get(name);
    if (!t) throw new FormatError(dir, `no tensor named '${name}' in the checkpoint`);
    return t;
  };
  return {
    dir,
    files,
    tensors,
    metadata,
    tensor: (name) => where.get(name),
    async readRows(name, rowStart, rowCount, into) {
      const t = get(name);
      const { rows, cols } = matrixView(t.shape);
      const rowBytes = (cols * SAFETENSORS_DTYPE_BITS[t.dtype]) / 8;
      if (!Number.isInteger(rowBytes))
        throw new FormatError(byFile.get(t.file)!.name, `tensor '${name}': rows are not whole bytes`);
      if (
        !Number.isSafeInteger(rowStart) ||
        !Number.isSafeInteger(rowCount) ||
        rowStart < 0 ||
        rowCount < 0 ||
        rowStart + rowCount > rows
      ) {
        throw new FormatError(
          byFile.get(t.file)!.name,
          `tensor '${name}': rows ${rowStart}+${rowCount} are outside its ${rows} rows`,
        );
      }
      return byFile.get(t.file)!.readRaw(name, rowStart * rowBytes, rowCount * rowBytes, into);
    },
    readRaw: (name, o, l) => byFile.get(get(name).file)!.readRaw(name, o, l),
    readF32: (name, out) => byFile.get(get(name).file)!.readF32(name, out),
    async close() {
      await Promise.all(opened.map((o) => o.close()));
    },
  };
}

export interface SafetensorsInput {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes. */
  data: Uint8Array;
}

/** Encodes a safetensors file in memory (header padded to 8 bytes with spaces, tensors in the given order). */
export function encodeSafetensors(tensors: SafetensorsInput[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    const want = (shapeCount(t.name, t.shape) * SAFETENSORS_DTYPE_BITS[t.dtype]) / 8;
    if (want !== t.data.byteLength)
      throw new Error(`tensor '${t.name}': ${t.data.byteLength} bytes, shape needs ${want}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length + off);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  let p = 8 + hb.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (temp file + rename). */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsInput[],
  metadata?: Record<string, string>,
): Promise<void> {
  const { writeFile, rename } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, encodeSafetensors(tensors, metadata));
  await rename(tmp, path);
}
