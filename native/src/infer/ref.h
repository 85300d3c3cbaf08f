// The scalar reference of the inference kernels: the spec that every SIMD and CUDA variant is tested against.
// Compiled with -ffp-contract=off; every float32 operation is written out in order. Functions are static:
// each translation unit (compiled with its own -m flags) keeps its own copy, so the linker can never hand the
// scalar kernel a copy compiled for AVX-512.
#pragma once

#include "infer.h"

namespace apl {
namespace infer {

/** Value c of a packed row (first value in the lowest bits). */
APL_HD static inline unsigned packed_at(const uint8_t* qrow, int64_t c, int bits) {
  if (bits == 8) return qrow[c];
  int per = 8 / bits;
  return (qrow[c / per] >> ((c % per) * bits)) & ((1u << bits) - 1);
}

/** Quantizes x[lo, hi) to int8 with one scale: writes xq[lo, hi), returns the scale, *sum = Σ xq. */
static inline float act_quantize_group_ref(const float* x, int64_t lo, int64_t hi, int8_t* xq, int32_t* sum) {
  float amax = 0.0f;
  for (int64_t i = lo; i < hi; i++) {
    float a = fabsf(x[i]);
    if (a > amax) amax = a;
  }
  float d = amax / 127.0f;
  float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int64_t i = lo; i < hi; i++) {
    float t = x[i] * inv;
    t = rintf(t);
    t = t > 127.0f ? 127.0f : (t < -127.0f ? -127.0f : t);
    int v = (int)t;
    xq[i] = (int8_t)v;
    s += v;
  }
  *sum = s;
  return d;
}

static inline void act_quantize_ref(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx,
                                    int32_t* xsum) {
  int64_t gpr = groups_per_row(cols, group);
  for (int64_t g = 0; g < gpr; g++) {
    int64_t lo = g * group, hi = lo + group < cols ? lo + group : cols;
    dx[g] = act_quantize_group_ref(x, lo, hi, xq, xsum + g);
  }
}

/** One group's contribution, added to its lane (the order every variant keeps). */
static inline void combine_group(float* acc, int64_t g, int32_t isum, float s, float z, float dx,
                                 int32_t xsum) {
  float d = s * dx;
  float a = (float)isum;
  float xs = (float)xsum;
  float b = z * xs;
  float t = a - b;
  float term = d * t;
  acc[g & 7] += term;
}

/** Integer dot of row r's group g with the (natural-order) activations. */
static inline int32_t group_isum_ref(const uint8_t* qrow, int64_t lo, int64_t hi, int bits,
                                     const int8_t* xq) {
  int32_t s = 0;
  for (int64_t c = lo; c < hi; c++) s += (int32_t)packed_at(qrow, c, bits) * (int32_t)xq[c];
  return s;
}

static inline float qdot_ref(const Linear& w, int64_t r, const int8_t* xq, const float* dx,
                             const int32_t* xsum) {
  int64_t gpr = w.gpr();
  const uint8_t* qrow = w.q + r * w.row_bytes();
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t g = 0; g < gpr; g++) {
    int64_t lo = g * w.group, hi = lo + w.group < w.cols ? lo + w.group : w.cols;
    int32_t isum = group_isum_ref(qrow, lo, hi, w.bits, xq);
    combine_group(acc, g, isum, load_param(w.scales, r * gpr + g, w.f16),
                  load_param(w.zeros, r * gpr + g, w.f16), dx[g], xsum[g]);
  }
  return reduce8(acc);
}

static inline float float_at(const uint8_t* p, int64_t i, int dtype) {
  if (dtype == kF32) {
    float f;
    memcpy(&f, p + i * 4, 4);
    return f;
  }
  uint16_t h;
  memcpy(&h, p + i * 2, 2);
  return dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

static inline float fdot_ref(const Linear& w, int64_t r, const float* x) {
  const uint8_t* row = w.data + r * w.cols * dtype_size(w.dtype);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t c = 0; c < w.cols; c++) {
    float p = float_at(row, c, w.dtype) * x[c];
    acc[c & 7] += p;
  }
  return reduce8(acc);
}

}  // namespace infer
}  // namespace apl
