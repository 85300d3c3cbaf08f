// Half-precision and 8-bit float conversions shared by the readers, the converter and the inspector.
// Scalar helpers take/return raw bit patterns as numbers; array helpers work on little-endian raw bytes.
// The scalar conversions are the engine's (native/dtypes.ts); this module adds the array helpers.
import { bf16ToF32, f16Lut, f32ToBf16, f32ToF16 } from '../../../native/dtypes';

export {
  bf16ToF32,
  byteswapInPlace,
  f8e4m3ToF32,
  f8e5m2ToF32,
  f8Lut,
  f16Lut,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
} from '../../../native/dtypes';

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

// Equivalent mutants, marked for Stryker (docs/TESTING.md): the kernel and the scalar loop give bit-identical
// values for every input (bf16-edges.test.ts compares them at every length around the switch), so which one runs,
// and whether the kernel is cached, changes speed only, which bench/ measures. Nothing else is exempt.
function bf16Kernel() {
  // Stryker disable next-line all: caching (instantiating again gives the same kernel)
  if (wasmKernel === undefined) {
    wasmKernel = null;
    // Stryker disable next-line all: without WebAssembly the instantiation throws and the catch gives null too
    const haveWasm = typeof WebAssembly === 'object';
    if (process.env.APL_NO_WASM !== '1' && haveWasm) {
      try {
        const mod = new WebAssembly.Module(Buffer.from(BF16_WASM, 'base64'));
        const inst = new WebAssembly.Instance(mod, {});
        const ex = inst.exports as { mem: WebAssembly.Memory; bf16: (s: number, d: number, n: number) => void };
        wasmKernel = { mem: new Uint8Array(ex.mem.buffer), bf16: ex.bf16 };
        // Stryker disable next-line all: the catch repeats the null assigned above
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
  // Stryker disable next-line all: the choice between two bit-identical paths (see bf16Kernel)
  const k = n >= 512 ? bf16Kernel() : null;
  // Stryker disable next-line all: the same choice
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
  // 32-bit loads need a 4-byte aligned input: an unaligned one is copied first (a Float32Array's own offset is
  // always a multiple of 4).
  const src = raw.byteOffset % 4 === 0 ? raw : raw.slice();
  // Two bf16 values per 32-bit load: the low one shifted up, the high one masked in place.
  const pairs = n >> 1;
  const s = new Int32Array(src.buffer, src.byteOffset, pairs);
  const d = new Int32Array(out.buffer, out.byteOffset, n);
  for (let i = 0, j = 0; i < pairs; i++, j += 2) {
    const v = s[i];
    d[j] = v << 16;
    d[j + 1] = v & -65536;
  }
  if (n & 1) d[n - 1] = (src[2 * n - 2] | (src[2 * n - 1] << 8)) << 16;
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
