// Lists the tensors of a .npz, .npy or .safetensors file (name, numpy dtype, shape, bytes), optionally with
// streamed statistics. Reads headers only, unless stats are asked for; then data flows through in chunks.
import { FormatError } from './errors';
import { dtypeName, isNumericHeader, parseNpyAnyHeader } from './npy';
import { openNpz } from './npz';
import { openSafetensors, SAFETENSORS_NUMPY_NAMES } from './safetensors';
import { openFileSource, type RandomAccessSource, readIntoFrom } from './source';
import { isStatsDtype, streamStats, type TensorStatsResult } from './stats';

export type FileFormat = 'npz' | 'npy' | 'safetensors';

export interface InspectedTensor {
  name: string;
  /** numpy's spelling: float32, uint8, bfloat16 (ml_dtypes), ... */
  dtype: string;
  shape: number[];
  /** Bytes of array data. */
  bytes: number;
  /** With `stats`: the statistics, or null for dtypes they cannot be computed on (F4, C64, ...). */
  stats?: Omit<TensorStatsResult, 'count'> | null;
}

export interface InspectResult {
  file: string;
  format: FileFormat;
  tensors: InspectedTensor[];
}

export interface InspectOptions {
  stats?: boolean;
  /** Bytes per chunk when streaming data for stats (default 4 MiB). */
  chunkBytes?: number;
  /** Called before each tensor's stats are computed (for progress). */
  onTensor?: (name: string, index: number, total: number) => void;
}

/** Picks the format from the extension, else from the first bytes. */
export async function detectFormat(src: RandomAccessSource): Promise<FileFormat> {
  const lower = src.name.toLowerCase();
  if (lower.endsWith('.npz')) return 'npz';
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith('.safetensors')) return 'safetensors';
  const head = await src.read(0, Math.min(6, src.size));
  if (head[0] === 0x50 && head[1] === 0x4b) return 'npz';
  if (head[0] === 0x93 && head.subarray(1, 6).toString('latin1') === 'NUMPY') return 'npy';
  if (src.size >= 9) {
    const b = await src.read(8, 1);
    if (b[0] === 0x7b) return 'safetensors';
  }
  throw new FormatError(src.name, 'unrecognised file: not .npz, .npy or .safetensors');
}

const strip = (s: TensorStatsResult) => ({ min: s.min, max: s.max, mean: s.mean, std: s.std, nan: s.nan, inf: s.inf });

/** Chunks of a byte range through one reused buffer (each valid until the next is asked for). */
async function* rangeChunks(src: RandomAccessSource, offset: number, length: number, step: number) {
  const shared = Buffer.allocUnsafe(Math.min(step, length));
  for (let o = 0; o < length; o += step) {
    const b = shared.subarray(0, Math.min(step, length - o));
    await readIntoFrom(src, b, offset + o);
    yield b;
  }
}

export async function inspectSource(src: RandomAccessSource, opts: InspectOptions = {}): Promise<InspectResult> {
  const format = await detectFormat(src);
  const chunk = opts.chunkBytes ?? 4 << 20;
  const tensors: InspectedTensor[] = [];
  if (format === 'npy') {
    const h = await parseNpyAnyHeader(src);
    const t: InspectedTensor = {
      name: basename(src.name).replace(/\.npy$/i, ''),
      dtype: dtypeName(h),
      shape: h.shape,
      bytes: h.dataBytes,
    };
    if (opts.stats && !isNumericHeader(h)) t.stats = null;
    else if (opts.stats && isNumericHeader(h)) {
      opts.onTensor?.(t.name, 0, 1);
      const step = Math.max(h.itemSize, chunk - (chunk % h.itemSize));
      t.stats = strip(await streamStats(rangeChunks(src, h.dataOffset, h.dataBytes, step), h.dtype, h.littleEndian));
    }
    tensors.push(t);
  } else if (format === 'npz') {
    const z = await openNpz(src);
    for (const [i, m] of z.members.entries()) {
      // A string, bytes or object member is listed (without statistics), never a reason to refuse the archive.
      const h = await z.readAnyHeader(m.name);
      const t: InspectedTensor = { name: m.key, dtype: dtypeName(h), shape: h.shape, bytes: h.dataBytes };
      if (opts.stats && !isNumericHeader(h)) t.stats = null;
      else if (opts.stats && isNumericHeader(h)) {
        opts.onTensor?.(t.name, i, z.members.length);
        t.stats = strip(await streamStats(z.dataChunks(m.name, chunk, { reuseBuffer: true }), h.dtype, h.littleEndian));
      }
      tensors.push(t);
    }
  } else {
    const f = await openSafetensors(src);
    const list = [...f.tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]);
    for (const [i, st] of list.entries()) {
      const dtype = SAFETENSORS_NUMPY_NAMES[st.dtype];
      const t: InspectedTensor = { name: st.name, dtype, shape: st.shape, bytes: st.byteLength };
      if (opts.stats) {
        opts.onTensor?.(t.name, i, list.length);
        if (isStatsDtype(dtype)) {
          const item =
            st.byteLength /
              Math.max(
                1,
                st.shape.reduce((a, b) => a * b, 1),
              ) || 1;
          const step = Math.max(item, chunk - (chunk % item));
          const base = f.dataStart + st.dataOffsets[0];
          t.stats = strip(await streamStats(rangeChunks(src, base, st.byteLength, step), dtype));
        } else t.stats = null;
      }
      tensors.push(t);
    }
  }
  return { file: src.name, format, tensors };
}

/** Opens, inspects and closes a file. Errors are FormatErrors naming the file. */
export async function inspectFile(path: string, opts: InspectOptions = {}): Promise<InspectResult> {
  const src = await openFileSource(path);
  try {
    return await inspectSource(src, opts);
  } finally {
    await src.close();
  }
}

function basename(p: string): string {
  return p.split(/[/\\]/).pop() ?? p;
}
