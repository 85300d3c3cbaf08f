// AVX-512 kernel (x86-64 with AVX-512F/BW): 16-wide min/max, rounding, non-finite checks and the optimized
// search's grid passes. The float sums whose order matters keep the reference's 8 lanes (so q stays
// bit-exact); the integer sums Σq, Σq² are exact in any order and run 16 wide. Compiled with -mavx512f
// -mavx512bw -mavx2 -mf16c (no -mfma) and -ffp-contract=off.
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "avx2_ops.h"
#include "batched_rows.h"

namespace apl {

namespace {
struct Ops512 : avx2::Ops {
  static void minmax(const float* x, int n, float* mn, float* mx) {
    if (n < 16) return avx2::Ops::minmax(x, n, mn, mx);
    __m512 a = _mm512_loadu_ps(x), b = a;
    int i = 16;
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      a = _mm512_min_ps(a, v);
      b = _mm512_max_ps(b, v);
    }
    if (i < n) {
      __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(m, x + i);
      a = _mm512_mask_min_ps(a, m, a, v);
      b = _mm512_mask_max_ps(b, m, b, v);
    }
    *mn = _mm512_reduce_min_ps(a);
    *mx = _mm512_reduce_max_ps(b);
  }
  static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    const __m512 vinv = _mm512_set1_ps(inv), vz = _mm512_set1_ps(z), vmax = _mm512_set1_ps(qmax);
    const __m512 zero = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
      __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv), vz);
      t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m512 q = _mm512_min_ps(_mm512_max_ps(t, zero), vmax);
      _mm512_mask_cvtepi32_storeu_epi8(qv + i, m, _mm512_cvtps_epi32(q));
    }
  }
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    avx2::pack(qv, cols, bits, out);
  }

  /**
   * metrics (avx2_ops.h) with the float64 products 8 at a time: each of the four float64 lanes still adds the
   * same products in the same order (the low four of each eight, then the high four), so the sums are the
   * same.
   */
  static void metrics(const float* x, const uint8_t* qv, int n, float s, float z, MetricsAcc* m) {
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
    __m256d dd = _mm256_setzero_pd(), xx = dd, ww = dd, xw = dd;
    __m512d mx = _mm512_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qv + i))));
      __m256 w = _mm256_mul_ps(_mm256_sub_ps(q, vz), vs);
      const __m512d xd = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), wd = _mm512_cvtps_pd(w);
      const __m512d d = _mm512_sub_pd(xd, wd);
      const __m512d pdd = _mm512_mul_pd(d, d), pxx = _mm512_mul_pd(xd, xd);
      const __m512d pww = _mm512_mul_pd(wd, wd), pxw = _mm512_mul_pd(xd, wd);
      dd = _mm256_add_pd(_mm256_add_pd(dd, _mm512_castpd512_pd256(pdd)), _mm512_extractf64x4_pd(pdd, 1));
      xx = _mm256_add_pd(_mm256_add_pd(xx, _mm512_castpd512_pd256(pxx)), _mm512_extractf64x4_pd(pxx, 1));
      ww = _mm256_add_pd(_mm256_add_pd(ww, _mm512_castpd512_pd256(pww)), _mm512_extractf64x4_pd(pww, 1));
      xw = _mm256_add_pd(_mm256_add_pd(xw, _mm512_castpd512_pd256(pxw)), _mm512_extractf64x4_pd(pxw, 1));
      mx = _mm512_max_pd(mx, _mm512_abs_pd(d));
    }
    alignas(32) double a[4][4];
    _mm256_store_pd(a[0], dd);
    _mm256_store_pd(a[1], xx);
    _mm256_store_pd(a[2], ww);
    _mm256_store_pd(a[3], xw);
    const double mxa = _mm512_reduce_max_pd(mx);
    for (int k = 0; k < 4; k++) {
      m->sdd += a[0][k];
      m->sxx += a[1][k];
      m->sww += a[2][k];
      m->sxw += a[3][k];
    }
    if (mxa > m->max_abs) m->max_abs = mxa;
    for (; i < n; i++) {
      float w = ((float)qv[i] - z) * s;
      m->add(x[i], w);
    }
  }

  /**
   * True when Σq and Σq² of a group are exact in float32 whatever the order: q are integers in [0, qmax], so
   * every partial sum is an integer ≤ n·qmax² and float32 holds those exactly up to 2^24. Then only Σq·x
   * keeps the reference's 8 lanes and order; the rest may run 16 wide.
   */
  static bool int_sums_exact(int n, float qmax) {
    return (double)n * (double)qmax * (double)qmax <= 16777216.0;
  }

  /**
   * asym_pass2 16 wide: the grid values and products are the reference's float32 operations element by
   * element; Σq·x adds the low then the high 8 products of each 16 to the reference's 8 lanes (the same
   * lanes, in the same order); Σq and Σq² are exact (int_sums_exact), so their order does not matter.
   */
  static void asym_pass2(const float* x, int n, const float* inv, const float* off, float qmax, float* sq,
                         float* sqq, float* sqx) {
    if (!int_sums_exact(n, qmax)) return avx2::Ops::asym_pass2(x, n, inv, off, qmax, sq, sqq, sqx);
    const __m512 i0 = _mm512_set1_ps(inv[0]), o0 = _mm512_set1_ps(off[0]);
    const __m512 i1 = _mm512_set1_ps(inv[1]), o1 = _mm512_set1_ps(off[1]);
    const __m512 vmax = _mm512_set1_ps(qmax), zero = _mm512_setzero_ps();
    __m512 a0 = zero, b0 = zero, a1 = zero, b1 = zero;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
      __m512 t0 = _mm512_add_ps(_mm512_mul_ps(v, i0), o0);
      __m512 t1 = _mm512_add_ps(_mm512_mul_ps(v, i1), o1);
      t0 = _mm512_roundscale_ps(t0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t1 = _mm512_roundscale_ps(t1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512 q0 = _mm512_maskz_min_ps(m, _mm512_max_ps(t0, zero), vmax);
      const __m512 q1 = _mm512_maskz_min_ps(m, _mm512_max_ps(t1, zero), vmax);
      a0 = _mm512_add_ps(a0, q0);
      a1 = _mm512_add_ps(a1, q1);
      b0 = _mm512_add_ps(b0, _mm512_mul_ps(q0, q0));
      b1 = _mm512_add_ps(b1, _mm512_mul_ps(q1, q1));
      const __m512 p0 = _mm512_mul_ps(q0, v), p1 = _mm512_mul_ps(q1, v);
      c0 = _mm256_add_ps(c0, _mm512_castps512_ps256(p0));
      c1 = _mm256_add_ps(c1, _mm512_castps512_ps256(p1));
      if (i + 8 < n) {
        c0 = _mm256_add_ps(c0, hi256(p0));
        c1 = _mm256_add_ps(c1, hi256(p1));
      }
    }
    sq[0] = _mm512_reduce_add_ps(a0);
    sqq[0] = _mm512_reduce_add_ps(b0);
    sqx[0] = avx2::hsum8(c0);
    sq[1] = _mm512_reduce_add_ps(a1);
    sqq[1] = _mm512_reduce_add_ps(b1);
    sqx[1] = avx2::hsum8(c1);
  }

  /** asym_pass (one grid: a start whose partner stopped) the same way as asym_pass2. */
  static void asym_pass(const float* x, int n, float inv, float off, float qmax, float* sq, float* sqq,
                        float* sqx) {
    if (!int_sums_exact(n, qmax)) return avx2::Ops::asym_pass(x, n, inv, off, qmax, sq, sqq, sqx);
    const __m512 i0 = _mm512_set1_ps(inv), o0 = _mm512_set1_ps(off);
    const __m512 vmax = _mm512_set1_ps(qmax), zero = _mm512_setzero_ps();
    __m512 a0 = zero, b0 = zero;
    __m256 c0 = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
      const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
      __m512 t0 = _mm512_add_ps(_mm512_mul_ps(v, i0), o0);
      t0 = _mm512_roundscale_ps(t0, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512 q0 = _mm512_maskz_min_ps(m, _mm512_max_ps(t0, zero), vmax);
      a0 = _mm512_add_ps(a0, q0);
      b0 = _mm512_add_ps(b0, _mm512_mul_ps(q0, q0));
      const __m512 p0 = _mm512_mul_ps(q0, v);
      c0 = _mm256_add_ps(c0, _mm512_castps512_ps256(p0));
      if (i + 8 < n) c0 = _mm256_add_ps(c0, hi256(p0));
    }
    *sq = _mm512_reduce_add_ps(a0);
    *sqq = _mm512_reduce_add_ps(b0);
    *sqx = avx2::hsum8(c0);
  }

 private:
  /** The high 8 floats of a 16 (AVX-512F only: no DQ needed). */
  static __m256 hi256(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
};

int64_t find_nonfinite512(const float* x, int64_t n) {
  const __m512i e = _mm512_set1_epi32(0x7f800000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i a = _mm512_and_si512(_mm512_loadu_si512((const void*)(x + i)), e);
    if (_mm512_cmpeq_epi32_mask(a, e)) break;
  }
  int64_t k = find_nonfinite_scalar(x + i, n - i);
  return k >= 0 ? i + k : -1;
}

int avx512_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row_batched<Ops512>(j, r, s, m, bad, avx2::load_row, find_nonfinite512);
}
}  // namespace

const CpuKernel* avx512_kernel() {
  static const CpuKernel k{"avx512", avx512_row};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const CpuKernel* avx512_kernel() { return nullptr; }
}  // namespace apl
#endif
