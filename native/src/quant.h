// Format constants and the scalar reference kernels: the spec that the SIMD (src/cpu/), CUDA (src/cuda/) and
// TypeScript (native/reference.ts) versions are tested against. No napi.h here, so a plain C++ program links
// it.
//
// Scheme: w ≈ (q − zero) · scale per group of `group` consecutive elements of a row (the last group of a row
// may be shorter). q is packed 8/bits values per byte, first value in the lowest bits, rows padded to whole
// bytes.
//  - asymmetric: scale = (max − min)/(2^bits − 1), zero = −min/scale, a float zero point (guarded so |zero|
//  stays
//    near ZERO_LIMIT steps or below, which keeps it exact enough in f16);
//  - symmetric:  zero = 2^(bits−1), scale = m / −2^(bits−1) with m the element of largest magnitude (may be
//  negative);
//  - 1 bit:      zero = 0.5, scale = 2·mean|w|, q = (w > 0);
//  - optimized:  OPT_STARTS starting grids, each refined OPT_ITERS times by alternating least squares; least
//  error wins.
// Scale and zero are rounded to the stored dtype before q is computed. All float32 arithmetic is written out
// operation by operation (compile with -ffp-contract=off / --fmad=false): SIMD variants must give the same q.
// Sums over a group use the reference order: element i goes to float32 lane i % 8, lanes reduce as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define APL_HD __host__ __device__
#else
#define APL_HD
#endif

namespace apl {

enum DType { kF32 = 0, kF16 = 1, kBF16 = 2 };

constexpr float kZeroLimit = 512.0f;
constexpr int kOptStarts = 2;
constexpr int kOptIters = 2;
APL_HD inline double opt_asym_step(int bits) { return bits == 2 ? 1.0 : bits == 4 ? 1.5 : 8.0; }
APL_HD inline double opt_sym_factor(int k) { return k == 0 ? 1.0 : k == 1 ? 0.92 : k == 2 ? 0.84 : 0.76; }

enum Status { kOk = 0, kNonFinite = 1, kScaleOverflow = 2, kCancelled = 3 };

// ---------------------------------------------------------------------------------------------------------------
// float16 / bfloat16

APL_HD inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
APL_HD inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/** float32 → float16 bits, round to nearest even, overflow → ±Inf. */
APL_HD inline uint16_t f32_to_f16(float v) {
  uint32_t x = f32_bits(v);
  uint32_t sign = (x >> 16) & 0x8000u;
  int exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0u));
  int e = exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((uint32_t)e << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

APL_HD inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1f;
  uint32_t m = h & 0x3ffu;
  if (e == 0) {
    if (m == 0) return bits_f32(sign);
    // subnormal: m · 2^−24, exact in float32
    float f = (float)m * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

APL_HD inline float bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

APL_HD inline float round_stored(float v, bool f16) { return f16 ? f16_to_f32(f32_to_f16(v)) : v; }
APL_HD inline bool is_finite_f32(float v) { return (f32_bits(v) & 0x7f800000u) != 0x7f800000u; }

// ---------------------------------------------------------------------------------------------------------------
// Sizes

inline int64_t packed_row_bytes(int64_t cols, int bits) { return (cols * bits + 7) / 8; }
inline int64_t groups_per_row(int64_t cols, int64_t group) { return (cols + group - 1) / group; }
inline int dtype_size(int dtype) { return dtype == kF32 ? 4 : 2; }

/** Packs one value per byte (qv) into bits-wide fields, first value in the lowest bits. */
inline void pack_row(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
  if (bits == 8) {
    memcpy(out, qv, (size_t)cols);
    return;
  }
  int per = 8 / bits;
  int64_t nb = packed_row_bytes(cols, bits);
  for (int64_t b = 0; b < nb; b++) {
    unsigned v = 0;
    int64_t base = b * per;
    for (int k = 0; k < per && base + k < cols; k++) v |= (unsigned)qv[base + k] << (k * bits);
    out[b] = (uint8_t)v;
  }
}

struct MetricsAcc {
  double sdd = 0, sxx = 0, sww = 0, sxw = 0, max_abs = 0;
  APL_HD void add(float x, float w) {
    double d = (double)x - (double)w;
    sdd += d * d;
    sxx += (double)x * x;
    sww += (double)w * w;
    sxw += (double)x * w;
    double a = d < 0 ? -d : d;
    if (a > max_abs) max_abs = a;
  }
  void merge(const MetricsAcc& o) {
    sdd += o.sdd;
    sxx += o.sxx;
    sww += o.sww;
    sxw += o.sxw;
    if (o.max_abs > max_abs) max_abs = o.max_abs;
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Scalar primitives (the reference). SIMD variants provide the same static functions with the same results.

APL_HD inline float reduce8(const float* l) {
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}
APL_HD inline float clampq(float q, float qmax) { return q < 0.0f ? 0.0f : (q > qmax ? qmax : q); }

struct ScalarOps {
  static constexpr const char* name = "scalar";
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) { pack_row(qv, cols, bits, out); }
  APL_HD static float round_stored(float v, bool f16) { return apl::round_stored(v, f16); }
  static uint16_t f16_bits(float v) { return f32_to_f16(v); }
  /** Accumulates the error of a dequantized group ((q − z)·s, rounded to float32) into m. */
  static void metrics(const float* x, const uint8_t* qv, int n, float s, float z, MetricsAcc* m) {
    for (int i = 0; i < n; i++) {
      float w = ((float)qv[i] - z) * s;
      m->add(x[i], w);
    }
  }

  APL_HD static void minmax(const float* x, int n, float* mn, float* mx) {
    float a = x[0], b = x[0];
    for (int i = 1; i < n; i++) {
      float v = x[i];
      if (v < a) a = v;
      if (v > b) b = v;
    }
    *mn = a;
    *mx = b;
  }
  APL_HD static float abs_sum(const float* x, int n) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) l[i & 7] += fabsf(x[i]);
    return reduce8(l);
  }
  APL_HD static void sums_x(const float* x, int n, float* sx, float* sxx) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
      float v = x[i];
      a[i & 7] += v;
      float vv = v * v;
      b[i & 7] += vv;
    }
    *sx = reduce8(a);
    *sxx = reduce8(b);
  }
  /** minmax and sums_x in one call (SIMD variants fuse the two passes). */
  APL_HD static void minmax_sums(const float* x, int n, float* mn, float* mx, float* sx, float* sxx) {
    minmax(x, n, mn, mx);
    sums_x(x, n, sx, sxx);
  }
  APL_HD static void asym_pass(const float* x, int n, float inv, float off, float qmax, float* sq, float* sqq,
                               float* sqx) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0}, c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
      float v = x[i];
      float t = v * inv;
      t = t + off;
      float q = clampq(rintf(t), qmax);
      a[i & 7] += q;
      float qq = q * q;
      b[i & 7] += qq;
      float qv = q * v;
      c[i & 7] += qv;
    }
    *sq = reduce8(a);
    *sqq = reduce8(b);
    *sqx = reduce8(c);
  }
  /** asym_pass for two grids (the reference: one after the other). */
  APL_HD static void asym_pass2(const float* x, int n, const float* inv, const float* off, float qmax,
                                float* sq, float* sqq, float* sqx) {
    for (int k = 0; k < 2; k++) asym_pass(x, n, inv[k], off[k], qmax, sq + k, sqq + k, sqx + k);
  }
  APL_HD static void sym_pass(const float* x, int n, float inv, float half, float qmax, float* scc,
                              float* scx) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
      float v = x[i];
      float t = v * inv;
      t = t + half;
      float q = clampq(rintf(t), qmax);
      float c = q - half;
      float cc = c * c;
      a[i & 7] += cc;
      float cv = c * v;
      b[i & 7] += cv;
    }
    *scc = reduce8(a);
    *scx = reduce8(b);
  }
  APL_HD static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    for (int i = 0; i < n; i++) {
      float t = x[i] * inv;
      t = t + z;
      qv[i] = (uint8_t)clampq(rintf(t), qmax);
    }
  }
  APL_HD static void assign_sign(const float* x, int n, uint8_t* qv) {
    for (int i = 0; i < n; i++) qv[i] = x[i] > 0.0f ? 1 : 0;
  }
};

// ---------------------------------------------------------------------------------------------------------------
// The group kernel (shared by every variant; only the primitives differ)

struct GroupParams {
  int bits;
  bool symmetric;
  bool optimized;
  bool f16;
};

/**
 * The asymmetric search: kOptStarts starting grids, each refined kOptIters times. The starts are independent,
 * so each iteration runs them side by side (asym_pass2: one pass over x for both, the same arithmetic per
 * start as asym_pass); a start that stops keeps its last grid, exactly as when the starts ran one after the
 * other.
 */
template <class Ops>
APL_HD inline bool optimize_asym(const float* x, int n, float qmax, double step, float mn, float mx, float sx,
                                 float sxx, double* outA, double* outB) {
  static_assert(kOptStarts == 2, "asym_pass2 runs two starts side by side");
  double r = (double)mx - (double)mn;
  double dn = (double)n;
  double A[2], B[2], E[2];
  bool live[2];
  for (int k = 0; k < 2; k++) {
    A[k] = r / ((double)qmax + k * step);
    B[k] = (double)mn + (r - A[k] * (double)qmax) / 2;
    E[k] = INFINITY;
    live[k] = true;
  }
  for (int it = 0; it < kOptIters && (live[0] || live[1]); it++) {
    float inv[2] = {0, 0}, off[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
      if (!live[k]) continue;
      float af = (float)A[k];
      inv[k] = 1.0f / af;
      float bi = (float)B[k] * inv[k];
      off[k] = 0.0f - bi;
      if (!is_finite_f32(inv[k]) || !is_finite_f32(off[k])) live[k] = false;
    }
    float sq[2], sqq[2], sqx[2];
    if (live[0] && live[1]) {
      Ops::asym_pass2(x, n, inv, off, qmax, sq, sqq, sqx);
    } else {
      for (int k = 0; k < 2; k++)
        if (live[k]) Ops::asym_pass(x, n, inv[k], off[k], qmax, &sq[k], &sqq[k], &sqx[k]);
    }
    for (int k = 0; k < 2; k++) {
      if (!live[k]) continue;
      double det = dn * (double)sqq[k] - (double)sq[k] * (double)sq[k];
      if (!(det > 0)) {
        live[k] = false;
        continue;
      }
      double na = (dn * (double)sqx[k] - (double)sq[k] * (double)sx) / det;
      if (!(na > 0) || !isfinite(na)) {
        live[k] = false;
        continue;
      }
      double nb = ((double)sqq[k] * (double)sx - (double)sq[k] * (double)sqx[k]) / det;
      A[k] = na;
      B[k] = nb;
      E[k] = (double)sxx - na * (double)sqx[k] - nb * (double)sx;
    }
  }
  double bestE = INFINITY, bestA = 0, bestB = 0;
  for (int k = 0; k < 2; k++) {
    if (E[k] < bestE) {
      bestE = E[k];
      bestA = A[k];
      bestB = B[k];
    }
  }
  if (!(bestE < INFINITY)) return false;
  *outA = bestA;
  *outB = bestB;
  return true;
}

template <class Ops>
APL_HD inline float optimize_sym(const float* x, int n, float half, float qmax, float s0, float sxx) {
  double bestE = INFINITY, bestA = s0;
  for (int k = 0; k < kOptStarts; k++) {
    double a = (double)s0 * opt_sym_factor(k);
    double e = INFINITY;
    for (int it = 0; it < kOptIters; it++) {
      float inv = 1.0f / (float)a;
      if (!is_finite_f32(inv)) break;
      float scc, scx;
      Ops::sym_pass(x, n, inv, half, qmax, &scc, &scx);
      if (!(scc > 0)) break;
      double na = (double)scx / (double)scc;
      if (na == 0 || !isfinite(na)) break;
      a = na;
      e = (double)sxx - na * (double)scx;
    }
    if (e < bestE) {
      bestE = e;
      bestA = a;
    }
  }
  return (float)bestA;
}

/**
 * Quantizes x[0, n) (finite float32) into qv (one value per element). Writes the stored scale and zero
 * (already rounded to f16 when p.f16). Returns kOk or kScaleOverflow.
 */
template <class Ops>
APL_HD inline int quantize_group(const float* x, int n, const GroupParams& p, uint8_t* qv, float* scale_out,
                                 float* zero_out) {
  if (p.bits == 1) {
    float s2 = 2.0f * Ops::abs_sum(x, n);
    float s = (float)((double)s2 / (double)n);
    float ss = Ops::round_stored(s, p.f16);
    if (!is_finite_f32(ss)) return kScaleOverflow;
    Ops::assign_sign(x, n, qv);
    *scale_out = ss;
    *zero_out = 0.5f;
    return kOk;
  }
  float qmax = (float)((1 << p.bits) - 1);
  float mn, mx, sx = 0.0f, sxx = 0.0f;
  if (p.optimized)
    Ops::minmax_sums(x, n, &mn, &mx, &sx, &sxx);
  else
    Ops::minmax(x, n, &mn, &mx);
  if (p.symmetric) {
    float half = (float)(1 << (p.bits - 1));
    float m = -mn > mx ? mn : mx;
    float s = m == 0.0f ? 0.0f : m / -half;
    if (p.optimized && m != 0.0f) s = optimize_sym<Ops>(x, n, half, qmax, s, sxx);
    float ss = Ops::round_stored(s, p.f16);
    if (!is_finite_f32(ss)) return kScaleOverflow;
    float inv = ss == 0.0f ? 0.0f : 1.0f / ss;
    if (!is_finite_f32(inv)) ss = inv = 0.0f;  // a subnormal f32 scale: store 0
    Ops::assign(x, n, inv, half, qmax, qv);
    *scale_out = ss;
    *zero_out = half;
    return kOk;
  }
  float b0 = mn;
  float d = mx - mn;
  float s = d / qmax;
  if (p.optimized && mx != mn) {
    double a, b;
    if (optimize_asym<Ops>(x, n, qmax, opt_asym_step(p.bits), mn, mx, sx, sxx, &a, &b)) {
      s = (float)a;
      b0 = (float)b;
    }
  }
  float far = mn;
  if (-mx > far) far = -mx;
  if (0.0f > far) far = 0.0f;
  float guard = far / kZeroLimit;
  if (guard > s) s = guard;
  float ss = Ops::round_stored(s, p.f16);
  if (!is_finite_f32(ss)) return kScaleOverflow;
  float inv = 0.0f, z = 0.0f;
  if (ss != 0.0f && !is_finite_f32(1.0f / ss)) ss = 0.0f;  // a subnormal f32 scale: store 0
  if (ss != 0.0f) {
    inv = 1.0f / ss;
    float bi = b0 * inv;
    z = Ops::round_stored(0.0f - bi, p.f16);
  }
  Ops::assign(x, n, inv, z, qmax, qv);
  *scale_out = ss;
  *zero_out = z;
  return kOk;
}

}  // namespace apl

// The row loop, input and parameter loading, metrics and dequantize_row.
#include "quant_rows.h"  // IWYU pragma: export
