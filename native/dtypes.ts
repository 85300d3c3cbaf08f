// Element conversions of the engine: float16, bfloat16 and float8 bit patterns to and from numbers, round to
// nearest even. The one implementation: the reference kernels use it, and server/src/formats re-exports it.
// Nothing here imports from outside native/.

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
