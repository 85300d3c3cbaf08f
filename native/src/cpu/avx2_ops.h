// AVX2 + F16C primitives with exactly the results of ScalarOps (quant.h): the same float32 operations in the
// same order, 8 lanes matching the reference's lane sums, no contraction (-ffp-contract=off). Included by
// avx2.cc and avx512.cc (which reuses the lane sums so they stay bit-exact), compiled with -mno-fma, and by
// the -mfma object kquant_avx2_fma.cc (APL_FMA), which fuses only the exact products (madd_exact).
#pragma once

#include <immintrin.h>

#include "../quant.h"

namespace apl {
namespace avx2 {
#if defined(APL_KQ512)
// The AVX-512 kquant object's copies (kquant_avx512.cc, also APL_FMA) get symbols of their own likewise.
inline namespace kq512 {
#elif defined(APL_FMA)
// The -mfma object's copies get symbols of their own (avx2::fma::…): the plain objects' inline functions can
// never be replaced by these at link time, nor these by them.
inline namespace fma {
#endif

/**
 * c + a·b where the product a·b is exact (float64 products of float32 values, q·q for integral q ≤ 255 in
 * float32): one rounding either way, so fusing it (the -mfma object) gives the separate add's bits.
 */
#ifdef APL_FMA
#define APL_MADD_EXACT(t, a, b, c) _mm256_fmadd_##t(a, b, c)
#else
#define APL_MADD_EXACT(t, a, b, c) _mm256_add_##t(c, _mm256_mul_##t(a, b))
#endif
static inline __m256d madd_exact(__m256d a, __m256d b, __m256d c) { return APL_MADD_EXACT(pd, a, b, c); }
static inline __m256 madd_exact(__m256 a, __m256 b, __m256 c) { return APL_MADD_EXACT(ps, a, b, c); }

alignas(32) static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
/** Lanes [0, rem) set, rem in 0..8. */
static inline __m256i tail_mask(int rem) {
  return _mm256_loadu_si256((const __m256i*)(kMaskTable + 8 - rem));
}

/** The reference lane reduction ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  __m128 s3 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s3);
}

static inline __m256 rne(__m256 t) {
  return _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

/** Stores 8 integral floats in [0, 255] as bytes. */
// Eight floats from x + i; past n the lanes read as 0 and *keep is 0 there (all ones elsewhere).
static inline __m256 load8_tail(const float* x, int i, int n, __m256* keep) {
  if (i + 8 <= n) {
    *keep = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    return _mm256_loadu_ps(x + i);
  }
  __m256i m = tail_mask(n - i);
  *keep = _mm256_castsi256_ps(m);
  return _mm256_maskload_ps(x + i, m);
}

// Horizontal minimum and maximum of eight lanes (exact: order does not matter for min/max).
static inline float hmin8(__m256 v) {
  __m128 a = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_min_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_min_ss(a, _mm_shuffle_ps(a, a, 1)));
}
static inline float hmax8(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_max_ss(a, _mm_shuffle_ps(a, a, 1)));
}

static inline void store_u8x8(__m256 q, uint8_t* dst) {
  __m256i i = _mm256_cvtps_epi32(q);
  __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  __m128i b = _mm_packus_epi16(w, w);
  _mm_storel_epi64((__m128i*)dst, b);
}

struct Ops {
  /** round_stored with F16C: the same IEEE round-to-nearest-even conversion as the software reference. */
  static float round_stored(float v, bool f16) {
    if (!f16) return v;
    return _mm_cvtss_f32(
        _mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  }

  static uint16_t f16_bits(float v) {
    return (uint16_t)_mm_extract_epi16(
        _mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 0);
  }

  /** Group error in float64 lanes (metrics need a tolerance, not bit-exactness). */
  static void metrics(const float* x, const uint8_t* qv, int n, float s, float z, MetricsAcc* m) {
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
    __m256d dd = _mm256_setzero_pd(), xx = dd, ww = dd, xw = dd, mx = dd;
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffll));
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qv + i))));
      __m256 w = _mm256_mul_ps(_mm256_sub_ps(q, vz), vs);
      __m256 xv = _mm256_loadu_ps(x + i);
      for (int h = 0; h < 2; h++) {
        __m256d xd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(xv, 1) : _mm256_castps256_ps128(xv));
        __m256d wd = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(w, 1) : _mm256_castps256_ps128(w));
        __m256d d = _mm256_sub_pd(xd, wd);
        dd = _mm256_add_pd(dd, _mm256_mul_pd(d, d));
        xx = _mm256_add_pd(xx, _mm256_mul_pd(xd, xd));
        ww = _mm256_add_pd(ww, _mm256_mul_pd(wd, wd));
        xw = _mm256_add_pd(xw, _mm256_mul_pd(xd, wd));
        mx = _mm256_max_pd(mx, _mm256_and_pd(d, absmask));
      }
    }
    alignas(32) double a[4][4];
    _mm256_store_pd(a[0], dd);
    _mm256_store_pd(a[1], xx);
    _mm256_store_pd(a[2], ww);
    _mm256_store_pd(a[3], xw);
    alignas(32) double b[4];
    _mm256_store_pd(b, mx);
    for (int k = 0; k < 4; k++) {
      m->sdd += a[0][k];
      m->sxx += a[1][k];
      m->sww += a[2][k];
      m->sxw += a[3][k];
      if (b[k] > m->max_abs) m->max_abs = b[k];
    }
    for (; i < n; i++) {
      float w = ((float)qv[i] - z) * s;
      m->add(x[i], w);
    }
  }

  static void minmax(const float* x, int n, float* mn, float* mx) {
    __m256 a = _mm256_set1_ps(x[0]), b = a;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_loadu_ps(x + i);
      a = _mm256_min_ps(a, v);
      b = _mm256_max_ps(b, v);
    }
    if (i < n) {
      __m256i m = tail_mask(n - i);
      __m256 v = _mm256_blendv_ps(_mm256_set1_ps(x[0]), _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
      a = _mm256_min_ps(a, v);
      b = _mm256_max_ps(b, v);
    }
    *mn = hmin8(a);
    *mx = hmax8(b);
  }

  static float abs_sum(const float* x, int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    if (i < n) acc = _mm256_add_ps(acc, _mm256_andnot_ps(sign, _mm256_maskload_ps(x + i, tail_mask(n - i))));
    return hsum8(acc);
  }

  static void sums_x(const float* x, int n, float* sx, float* sxx) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_loadu_ps(x + i);
      a = _mm256_add_ps(a, v);
      b = _mm256_add_ps(b, _mm256_mul_ps(v, v));
    }
    if (i < n) {
      __m256 v = _mm256_maskload_ps(x + i, tail_mask(n - i));
      a = _mm256_add_ps(a, v);
      b = _mm256_add_ps(b, _mm256_mul_ps(v, v));
    }
    *sx = hsum8(a);
    *sxx = hsum8(b);
  }

  /** minmax and the lane sums Σx, Σx² in one pass. */
  static void minmax_sums(const float* x, int n, float* mn, float* mx, float* sx, float* sxx) {
    __m256 lo = _mm256_set1_ps(x[0]), hi = lo, a = _mm256_setzero_ps(), b = a;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_loadu_ps(x + i);
      lo = _mm256_min_ps(lo, v);
      hi = _mm256_max_ps(hi, v);
      a = _mm256_add_ps(a, v);
      b = _mm256_add_ps(b, _mm256_mul_ps(v, v));
    }
    if (i < n) {
      __m256i m = tail_mask(n - i);
      __m256 v = _mm256_maskload_ps(x + i, m);
      __m256 vm = _mm256_blendv_ps(_mm256_set1_ps(x[0]), v, _mm256_castsi256_ps(m));
      lo = _mm256_min_ps(lo, vm);
      hi = _mm256_max_ps(hi, vm);
      a = _mm256_add_ps(a, v);
      b = _mm256_add_ps(b, _mm256_mul_ps(v, v));
    }
    *mn = hmin8(lo);
    *mx = hmax8(hi);
    *sx = hsum8(a);
    *sxx = hsum8(b);
  }

  static void asym_pass(const float* x, int n, float inv, float off, float qmax, float* sq, float* sqq,
                        float* sqx) {
    const __m256 vinv = _mm256_set1_ps(inv), voff = _mm256_set1_ps(off), vmax = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps();
    __m256 a = zero, b = zero, c = zero;
    for (int i = 0; i < n; i += 8) {
      __m256 keep;
      __m256 v = load8_tail(x, i, n, &keep);
      __m256 t = _mm256_add_ps(_mm256_mul_ps(v, vinv), voff);
      __m256 q = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(rne(t), zero), vmax), keep);
      a = _mm256_add_ps(a, q);
      b = _mm256_add_ps(b, _mm256_mul_ps(q, q));
      c = _mm256_add_ps(c, _mm256_mul_ps(q, v));
    }
    *sq = hsum8(a);
    *sqq = hsum8(b);
    *sqx = hsum8(c);
  }

  /** asym_pass for two grids in one pass over x: per grid the same operations, lanes and order. */
  static void asym_pass2(const float* x, int n, const float* inv, const float* off, float qmax, float* sq,
                         float* sqq, float* sqx) {
    const __m256 i0 = _mm256_set1_ps(inv[0]), o0 = _mm256_set1_ps(off[0]);
    const __m256 i1 = _mm256_set1_ps(inv[1]), o1 = _mm256_set1_ps(off[1]);
    const __m256 vmax = _mm256_set1_ps(qmax), zero = _mm256_setzero_ps();
    __m256 a0 = zero, b0 = zero, c0 = zero, a1 = zero, b1 = zero, c1 = zero;
    for (int i = 0; i < n; i += 8) {
      __m256 keep;
      __m256 v = load8_tail(x, i, n, &keep);
      __m256 t0 = _mm256_add_ps(_mm256_mul_ps(v, i0), o0);
      __m256 t1 = _mm256_add_ps(_mm256_mul_ps(v, i1), o1);
      __m256 q0 = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(rne(t0), zero), vmax), keep);
      __m256 q1 = _mm256_and_ps(_mm256_min_ps(_mm256_max_ps(rne(t1), zero), vmax), keep);
      a0 = _mm256_add_ps(a0, q0);
      a1 = _mm256_add_ps(a1, q1);
      b0 = _mm256_add_ps(b0, _mm256_mul_ps(q0, q0));
      b1 = _mm256_add_ps(b1, _mm256_mul_ps(q1, q1));
      c0 = _mm256_add_ps(c0, _mm256_mul_ps(q0, v));
      c1 = _mm256_add_ps(c1, _mm256_mul_ps(q1, v));
    }
    sq[0] = hsum8(a0);
    sqq[0] = hsum8(b0);
    sqx[0] = hsum8(c0);
    sq[1] = hsum8(a1);
    sqq[1] = hsum8(b1);
    sqx[1] = hsum8(c1);
  }

  static void sym_pass(const float* x, int n, float inv, float half, float qmax, float* scc, float* scx) {
    const __m256 vinv = _mm256_set1_ps(inv), vh = _mm256_set1_ps(half), vmax = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps();
    __m256 a = zero, b = zero;
    for (int i = 0; i < n; i += 8) {
      __m256 keep;
      __m256 v = load8_tail(x, i, n, &keep);
      __m256 t = _mm256_add_ps(_mm256_mul_ps(v, vinv), vh);
      __m256 q = _mm256_min_ps(_mm256_max_ps(rne(t), zero), vmax);
      __m256 c = _mm256_and_ps(_mm256_sub_ps(q, vh), keep);
      a = _mm256_add_ps(a, _mm256_mul_ps(c, c));
      b = _mm256_add_ps(b, _mm256_mul_ps(c, v));
    }
    *scc = hsum8(a);
    *scx = hsum8(b);
  }

  static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(z), vmax = _mm256_set1_ps(qmax);
    const __m256 zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), vz);
      store_u8x8(_mm256_min_ps(_mm256_max_ps(rne(t), zero), vmax), qv + i);
    }
    if (i < n) {
      __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, tail_mask(n - i)), vinv), vz);
      alignas(8) uint8_t tmp[8];
      store_u8x8(_mm256_min_ps(_mm256_max_ps(rne(t), zero), vmax), tmp);
      memcpy(qv + i, tmp, (size_t)(n - i));
    }
  }

  static void assign_sign(const float* x, int n, uint8_t* qv) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8)
      store_u8x8(_mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ), one), qv + i);
    for (; i < n; i++) qv[i] = x[i] > 0.0f ? 1 : 0;
  }
};

/** pack_row (quant.h) with SSE shuffles: first value in the lowest bits. */
static inline void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
  int64_t i = 0;
  if (bits == 4) {
    const __m128i mul = _mm_set1_epi16(0x1001);  // bytes 1, 16
    for (; i + 16 <= cols; i += 16) {
      __m128i w = _mm_maddubs_epi16(_mm_loadu_si128((const __m128i*)(qv + i)), mul);
      _mm_storel_epi64((__m128i*)(out + i / 2), _mm_packus_epi16(w, w));
    }
  } else if (bits == 2) {
    const __m128i mul = _mm_set1_epi16(0x0401);       // bytes 1, 4
    const __m128i mul2 = _mm_set1_epi32(0x00100001);  // words 1, 16
    for (; i + 16 <= cols; i += 16) {
      __m128i w = _mm_maddubs_epi16(_mm_loadu_si128((const __m128i*)(qv + i)), mul);
      __m128i d = _mm_madd_epi16(w, mul2);
      __m128i h = _mm_packus_epi32(d, d);
      int32_t v = _mm_cvtsi128_si32(_mm_packus_epi16(h, h));
      memcpy(out + i / 4, &v, 4);
    }
  } else if (bits == 1) {
    for (; i + 16 <= cols; i += 16) {
      __m128i b = _mm_cmpgt_epi8(_mm_loadu_si128((const __m128i*)(qv + i)), _mm_setzero_si128());
      uint16_t m = (uint16_t)_mm_movemask_epi8(b);
      memcpy(out + i / 8, &m, 2);
    }
  }
  // The rest (and 8 bits) as in the reference; i is a multiple of 16 values, so whole bytes.
  pack_row(qv + i, cols - i, bits, out + i * bits / 8);
}

/** Row r as float32: the input itself for f32 (unaligned loads are fine here), else decoded with F16C /
 * shifts. */
static inline const float* load_row(const QuantJob& j, int64_t r, float* dst) {
  if (j.dtype == kF32) return reinterpret_cast<const float*>(j.data + (size_t)(r * j.cols) * 4);
  const uint16_t* p = (const uint16_t*)(j.data + (size_t)(r * j.cols) * 2);
  int64_t i = 0, n = j.cols;
  if (j.dtype == kF16) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + i))));
    for (; i < n; i++) dst[i] = f16_to_f32(p[i]);
  } else {
    for (; i + 8 <= n; i += 8) {
      __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(p + i)));
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++) dst[i] = bf16_to_f32(p[i]);
  }
  return dst;
}

static inline int64_t find_nonfinite(const float* x, int64_t n) {
  const __m256i e = _mm256_set1_epi32(0x7f800000);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i)), e);
    __m256i b = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 8)), e);
    __m256i c = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 16)), e);
    __m256i d = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(x + i + 24)), e);
    __m256i any = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi32(a, e), _mm256_cmpeq_epi32(b, e)),
                                  _mm256_or_si256(_mm256_cmpeq_epi32(c, e), _mm256_cmpeq_epi32(d, e)));
    if (!_mm256_testz_si256(any, any)) break;
  }
  int64_t k = find_nonfinite_scalar(x + i, n - i);
  return k >= 0 ? i + k : -1;
}

#if defined(APL_KQ512) || defined(APL_FMA)
}  // inline namespace fma / kq512
#endif
}  // namespace avx2
}  // namespace apl
