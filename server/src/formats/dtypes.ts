// Half-precision and 8-bit float conversions shared by the readers, the converter and the inspector.
// Scalar helpers take/return raw bit patterns as numbers; array helpers work on little-endian raw bytes.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | undefined;
/** All 65536 float16 values as float32 (256 KB, built on first use). */
export function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Slow(h);
  }
  return f16Table;
}

function f16ToF32Slow(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float16 bits → number. */
export function f16ToF32(h: number): number {
  return f16Lut()[h & 0xffff];
}

/** number → float16 bits, rounding to nearest even (overflow → ±Inf, NaN → quiet NaN). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** bfloat16 bits → number. */
export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** number → bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function u16View(raw: Uint8Array): Uint16Array {
  if (raw.byteOffset % 2 === 0) return new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength >> 1);
  return new Uint16Array(raw.slice().buffer, 0, raw.byteLength >> 1);
}

/** Little-endian float16 bytes → Float32Array. */
export function f16BytesToF32(
  raw: Uint8Array,
  out: Float32Array = new Float32Array(raw.byteLength >> 1),
): Float32Array {
  const src = u16View(raw);
  const lut = f16Lut();
  for (let i = 0; i < src.length; i++) out[i] = lut[src[i]];
  return out;
}

// A 114-byte WebAssembly SIMD kernel: bf16(src, dst, blocks) widens 8 bf16 values per 16-byte block to f32
// (i32x4.extend_{low,high}_i16x8_u, then i32x4.shl 16) over a 3 MiB memory: input at [0, 1 MiB), output at
// [1 MiB, 3 MiB). Several times faster than the scalar JavaScript loop, which stays the reference and the
// fallback (APL_NO_WASM=1 forces it).
const BF16_WASM =
  'AGFzbQEAAAABBwFgA39/fwADAgEABQMBADAHDgIDbWVtAgAEYmYxNgAACkYBRAADQCABIAD9AAAA/akBQRD9qwH9CwAAIAEgAP0AAAD9qgFBEP2rAf0LABAgAEEQaiEAIAFBIGohASACQQFrIgINAAsL';
const WASM_IN = 1 << 20;
let wasmKernel: { mem: Uint8Array; bf16: (src: number, dst: number, blocks: number) => void } | null | undefined;

function bf16Kernel() {
  if (wasmKernel === undefined) {
    wasmKernel = null;
    if (process.env.APL_NO_WASM !== '1' && typeof WebAssembly === 'object') {
      try {
        const mod = new WebAssembly.Module(Buffer.from(BF16_WASM, 'base64'));
        const inst = new WebAssembly.Instance(mod, {});
        const ex = inst.exports as { mem: WebAssembly.Memory; bf16: (s: number, d: number, n: number) => void };
        wasmKernel = { mem: new Uint8Array(ex.mem.buffer), bf16: ex.bf16 };
      } catch {
        wasmKernel = null; // no WebAssembly SIMD here: the scalar loop does the work
      }
    }
  }
  return wasmKernel;
}

/** Which bf16 → f32 path this process uses: 'wasm-simd' or 'scalar'. */
export function bf16Backend(): 'wasm-simd' | 'scalar' {
  return bf16Kernel() ? 'wasm-simd' : 'scalar';
}

/** Little-endian bfloat16 bytes → Float32Array (exact: bf16 is the top half of an f32). */
export function bf16BytesToF32(
  raw: Uint8Array,
  out: Float32Array = new Float32Array(raw.byteLength >> 1),
): Float32Array {
  const n = raw.byteLength >> 1;
  const k = n >= 512 ? bf16Kernel() : null;
  if (k) {
    const outBytes = new Uint8Array(out.buffer, out.byteOffset, n * 4);
    const whole = (n >> 3) << 4; // input bytes in whole 8-value blocks
    for (let o = 0; o < whole; o += WASM_IN) {
      const len = Math.min(WASM_IN, whole - o);
      k.mem.set(raw.subarray(o, o + len), 0);
      k.bf16(0, WASM_IN, len >> 4);
      outBytes.set(k.mem.subarray(WASM_IN, WASM_IN + 2 * len), 2 * o);
    }
    for (let i = whole >> 1; i < n; i++) out[i] = bf16ToF32(raw[2 * i] | (raw[2 * i + 1] << 8));
    return out;
  }
  return bf16BytesToF32Scalar(raw, out);
}

/** The scalar reference for bf16BytesToF32. */
export function bf16BytesToF32Scalar(
  raw: Uint8Array,
  out: Float32Array = new Float32Array(raw.byteLength >> 1),
): Float32Array {
  const n = raw.byteLength >> 1;
  if (raw.byteOffset % 4 === 0 && out.byteOffset % 4 === 0) {
    // Two bf16 values per 32-bit load: the low one shifted up, the high one masked in place.
    const pairs = n >> 1;
    const s = new Int32Array(raw.buffer, raw.byteOffset, pairs);
    const d = new Int32Array(out.buffer, out.byteOffset, n);
    for (let i = 0, j = 0; i < pairs; i++, j += 2) {
      const v = s[i];
      d[j] = v << 16;
      d[j + 1] = v & -65536;
    }
    if (n & 1) d[n - 1] = (raw[2 * n - 2] | (raw[2 * n - 1] << 8)) << 16;
    return out;
  }
  const src = u16View(raw);
  const dst = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) dst[i] = src[i] << 16;
  return out;
}

/** Float32Array → little-endian float16 bytes. */
export function f32ToF16Bytes(v: ArrayLike<number>): Uint8Array {
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = f32ToF16(v[i]);
  return new Uint8Array(out.buffer);
}

/** Float32Array → little-endian bfloat16 bytes. */
export function f32ToBf16Bytes(v: ArrayLike<number>): Uint8Array {
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = f32ToBf16(v[i]);
  return new Uint8Array(out.buffer);
}

function f8Table(expBits: number, bias: number, fn: boolean): Float32Array {
  const t = new Float32Array(256);
  const mBits = 7 - expBits;
  const eMax = (1 << expBits) - 1;
  for (let b = 0; b < 256; b++) {
    const s = b & 0x80 ? -1 : 1;
    const e = (b >> mBits) & eMax;
    const m = b & ((1 << mBits) - 1);
    let v: number;
    if (fn) {
      // E4M3FN: no infinities; only S.1111.111 is NaN.
      if (e === eMax && m === (1 << mBits) - 1) v = Number.NaN;
      else if (e === 0) v = s * m * 2 ** (1 - bias - mBits);
      else v = s * (1 + m / (1 << mBits)) * 2 ** (e - bias);
    } else if (e === eMax) v = m ? Number.NaN : s * Number.POSITIVE_INFINITY;
    else if (e === 0) v = s * m * 2 ** (1 - bias - mBits);
    else v = s * (1 + m / (1 << mBits)) * 2 ** (e - bias);
    t[b] = v;
  }
  return t;
}

let e4m3: Float32Array | undefined;
let e5m2: Float32Array | undefined;
/** float8_e4m3fn byte → number. */
export function f8e4m3ToF32(b: number): number {
  e4m3 ??= f8Table(4, 7, true);
  return e4m3[b & 0xff];
}
/** float8_e5m2 byte → number. */
export function f8e5m2ToF32(b: number): number {
  e5m2 ??= f8Table(5, 15, false);
  return e5m2[b & 0xff];
}
/** The 256-entry decode table of an 8-bit float format. */
export function f8Lut(kind: 'e4m3' | 'e5m2'): Float32Array {
  if (kind === 'e4m3') {
    e4m3 ??= f8Table(4, 7, true);
    return e4m3;
  }
  e5m2 ??= f8Table(5, 15, false);
  return e5m2;
}

/** Reverses the byte order of each `itemSize`-byte element in place. */
export function byteswapInPlace(buf: Uint8Array, itemSize: number): Uint8Array {
  if (itemSize <= 1) return buf;
  for (let i = 0; i + itemSize <= buf.length; i += itemSize) {
    for (let a = i, b = i + itemSize - 1; a < b; a++, b--) {
      const t = buf[a];
      buf[a] = buf[b];
      buf[b] = t;
    }
  }
  return buf;
}
