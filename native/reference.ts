// TypeScript port of the scalar reference kernels in native/src/quant.h. It is the fallback when the addon cannot
// load, and the tests compare it with the C++ reference bit for bit (q exactly; scales and zeros exactly too, since
// every float32 operation is spelled out with Math.fround in the same order as the C++).
//
// The scheme (see native/README.md): w ≈ (q − zero) · scale per group of `groupSize` consecutive elements of a row.
//  - asymmetric:   scale = (max − min) / (2^bits − 1), zero = −min / scale (a float zero point);
//  - symmetric:    zero = 2^(bits−1), scale = m / −2^(bits−1) where m is the element of largest magnitude (so the
//                  scale may be negative, like llama.cpp's Q4_0: all 2^bits levels are used);
//  - 1 bit:        zero = 0.5, scale = 2 · mean|w|, q = w > 0 (the `symmetric` flag makes no difference);
//  - 'optimized':  for 2, 4 and 8 bits, a few starting grids (the min/max grid and a finer one) each refined by alternating
//                  least squares (assign q by rounding, then refit scale and zero in closed form); the candidate with the
//                  least squared error wins.
// Scale and zero are rounded to the stored dtype (f16 by default) BEFORE q is computed, so dequantizing what is stored
// reproduces exactly what was measured.
//
// The port is split by responsibility; this module is its one entry point:
//  - reference-core.ts   types, constants, sizes, the f32/f16/bf16 row reader, the error-metrics accumulator;
//  - reference-quant.ts  the group kernel and the row loop (quantize);
//  - reference-deq.ts    dequantize, error metrics, qmatmul;
//  - reference-stats.ts  element decoding (every numpy dtype, either byte order), streaming statistics, histograms.
// Element conversions (float16, bfloat16, float8) are in dtypes.ts. Nothing under native/ imports from outside it.

export * from './reference-core';
export * from './reference-deq';
export * from './reference-quant';
export * from './reference-stats';
