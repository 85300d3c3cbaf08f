// AVX-512 variant of the two-level-scale kernels (kquant.h): kquant_simd.h's passes with sixteen groups per
// vector (KqV16), compiled with -mavx512f -mavx512vl -mavx2 -mf16c -mfma and -ffp-contract=off. Like the FMA
// build (kquant_avx2_fma.cc) it fuses only exact products (APL_FMA: madd_exact), so it writes the reference's
// bytes and the AVX2 builds' metrics bit for bit; it is named "avx2" as they are (the report names the
// backend). Chosen where the CPU has AVX-512F/VL and FMA and it reproduces the reference (kq_select_kernel);
// APL_NO_AVX512=1 takes the AVX2 builds.
#define APL_FMA 1
#define APL_KQ512 1
#include "kquant_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "kquant_simd_fit.h"

namespace apl {

namespace {

/**
 * The per-group float64 steps eight groups at a time (one group per lane, the reference's operations, so the
 * same bits as KqQuad's four lanes); ng % 8 is left to KqQuad. The metrics keep KqQuad's four chains (their
 * order is the report's); only their products are computed eight lanes at a time.
 */
struct KqOcto : KqQuad {
  static __m512d load8(const float* v) { return _mm512_cvtps_pd(_mm256_loadu_ps(v)); }
  /** Eight bools (0 or 1) as a lane mask, and back in one 8-byte store. */
  static __mmask8 alive8(const bool* a) {
    __m512i v = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)a));
    return _mm512_test_epi64_mask(v, v);
  }
  static void store_alive8(bool* a, __mmask8 m) {
    _mm_storel_epi64((__m128i*)a, _mm512_cvtepi64_epi8(_mm512_maskz_set1_epi64(m, 1)));
  }

  /** KqQuad's four sum chains; the max of |e| (order-free) in eight lanes, so it needs no split. */
  struct Chains : KqQuad::Chains {
    __m512d mx8;
    void zero() {
      KqQuad::Chains::zero();
      mx8 = _mm512_setzero_pd();
    }
    void finish(MetricsAcc* m) const {
      finish_sums(m);
      alignas(64) double a[8];
      _mm512_store_pd(a, mx8);
      for (int k = 0; k < 8; k++)
        if (a[k] > m->max_abs) m->max_abs = a[k];
    }
  };

  /**
   * KqQuad::metrics_block's chains from 512-bit products: each product is one rounding either way (x·x, w·w,
   * x·w exact in float64, so the FMA build's fused form gives these bits too), and each chain still takes
   * element k, then 4 + k, so only the adds stay 256-bit. Plain adds, not FMAs, keep the chains short.
   */
  static void metrics_block(const float* x8, __m256 w, Chains& c) {
    __m512d xd = _mm512_cvtps_pd(_mm256_loadu_ps(x8)), wd = _mm512_cvtps_pd(w);
    __m512d e = _mm512_sub_pd(xd, wd);
    __m512d ee = _mm512_mul_pd(e, e), xx = _mm512_mul_pd(xd, xd), ww = _mm512_mul_pd(wd, wd),
            xw = _mm512_mul_pd(xd, wd);
    c.dd = _mm256_add_pd(_mm256_add_pd(c.dd, _mm512_castpd512_pd256(ee)), _mm512_extractf64x4_pd(ee, 1));
    c.xx = _mm256_add_pd(_mm256_add_pd(c.xx, _mm512_castpd512_pd256(xx)), _mm512_extractf64x4_pd(xx, 1));
    c.ww = _mm256_add_pd(_mm256_add_pd(c.ww, _mm512_castpd512_pd256(ww)), _mm512_extractf64x4_pd(ww, 1));
    c.xw = _mm256_add_pd(_mm256_add_pd(c.xw, _mm512_castpd512_pd256(xw)), _mm512_extractf64x4_pd(xw, 1));
    c.mx8 = _mm512_max_pd(c.mx8, _mm512_abs_pd(e));
  }
  static void metrics(const float* x, int n, int G, const uint8_t* qv, const uint8_t* sc, const uint8_t* mc,
                      float d, float dm, MetricsAcc* m) {
    metrics_by<KqOcto>(x, n, G, qv, sc, mc, d, dm, m);
  }

  /** kq_fit_inv_off_ref. */
  static void fit_inv_off(int ng, const double* ca, const double* cb, bool* alive, float* inv, float* off) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    const __m256i e = _mm256_set1_epi32(0x7f800000);
    int j = 0;
    for (; j + 8 <= ng; j += 8) {
      __m256 iv = _mm256_div_ps(one, _mm512_cvtpd_ps(_mm512_loadu_pd(ca + j)));
      __m256 o = _mm256_sub_ps(zero, _mm256_mul_ps(_mm512_cvtpd_ps(_mm512_loadu_pd(cb + j)), iv));
      __mmask8 bad = _mm256_cmpeq_epi32_mask(_mm256_and_si256(_mm256_castps_si256(iv), e), e) |
                     _mm256_cmpeq_epi32_mask(_mm256_and_si256(_mm256_castps_si256(o), e), e);
      __mmask8 live = alive8(alive + j) & (__mmask8)~bad;
      _mm256_storeu_ps(inv + j, _mm256_maskz_mov_ps(live, iv));
      _mm256_storeu_ps(off + j, _mm256_maskz_mov_ps(live, o));
      store_alive8(alive + j, live);
    }
    KqQuad::fit_inv_off(ng - j, ca + j, cb + j, alive + j, inv + j, off + j);
  }

  /** kq_als_ref. */
  static void als(int ng, const double* dn, const float* sx, const float* sxx, const float* sq,
                  const float* sqq, const float* sqx, bool* alive, double* ca, double* cb, double* ce) {
    const __m512d zero = _mm512_setzero_pd(), inf = _mm512_set1_pd(INFINITY);
    int j = 0;
    for (; j + 8 <= ng; j += 8) {
      __mmask8 live = alive8(alive + j);
      if (!live) continue;
      __m512d n = _mm512_loadu_pd(dn + j), vx = load8(sx + j), vxx = load8(sxx + j), q = load8(sq + j),
              qq = load8(sqq + j), qx = load8(sqx + j);
      __m512d det = _mm512_sub_pd(_mm512_mul_pd(n, qq), _mm512_mul_pd(q, q));
      __m512d na = _mm512_div_pd(_mm512_sub_pd(_mm512_mul_pd(n, qx), _mm512_mul_pd(q, vx)), det);
      __m512d nb = _mm512_div_pd(_mm512_sub_pd(_mm512_mul_pd(qq, vx), _mm512_mul_pd(q, qx)), det);
      __mmask8 ok = _mm512_mask_cmp_pd_mask(live, det, zero, _CMP_GT_OQ);
      ok = _mm512_mask_cmp_pd_mask(ok, na, zero, _CMP_GT_OQ);
      ok = _mm512_mask_cmp_pd_mask(ok, na, inf, _CMP_LT_OQ);
      __m512d e = _mm512_sub_pd(_mm512_sub_pd(vxx, _mm512_mul_pd(na, qx)), _mm512_mul_pd(nb, vx));
      _mm512_mask_storeu_pd(ca + j, ok, na);
      _mm512_mask_storeu_pd(cb + j, ok, nb);
      _mm512_mask_storeu_pd(ce + j, ok, e);
      store_alive8(alive + j, ok);
    }
    KqQuad::als(ng - j, dn + j, sx + j, sxx + j, sq + j, sqq + j, sqx + j, alive + j, ca + j, cb + j, ce + j);
  }

  /** kq_search_ref: the codes kept as int32 lanes, the candidates' range checks and errors in float64. */
  static bool search(int ng, const double* dn, float d, float dm, int smax, int mmax, const float* sx,
                     const float* sq, const float* sqq, const float* sqx, uint8_t* sc, uint8_t* mc) {
    bool changed = false;
    const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(dm);
    const __m512d two = _mm512_set1_pd(2.0), m2c = _mm512_set1_pd(-2.0);
    const __m256i shi = _mm256_set1_epi32(smax), mhi = _mm256_set1_epi32(mmax), lo = _mm256_setzero_si256();
    int j = 0;
    for (; j + 8 <= ng; j += 8) {
      __m128i s8 = _mm_loadl_epi64((const __m128i*)(sc + j)), m8 = _mm_loadl_epi64((const __m128i*)(mc + j));
      __m256i si = _mm256_cvtepu8_epi32(s8), mi = _mm256_cvtepu8_epi32(m8);
      __m512d n = _mm512_loadu_pd(dn + j), vx = load8(sx + j), q = load8(sq + j), qq = load8(sqq + j),
              qx = load8(sqx + j);
      __m512d es[3], ez[3], vs[3], vz[3];
      __m256i cs[3], cz[3];
      __mmask8 sok[3], zok[3];
      for (int k = 0; k < 3; k++) {
        __m256i dk = _mm256_set1_epi32(k - 1);
        cs[k] = _mm256_add_epi32(si, dk);
        cz[k] = _mm256_add_epi32(mi, dk);
        sok[k] = _mm256_cmpge_epi32_mask(cs[k], lo) & _mm256_cmple_epi32_mask(cs[k], shi);
        zok[k] = _mm256_cmpge_epi32_mask(cz[k], lo) & _mm256_cmple_epi32_mask(cz[k], mhi);
        vs[k] = _mm512_cvtps_pd(_mm256_mul_ps(vd, _mm256_cvtepi32_ps(cs[k])));
        vz[k] = _mm512_cvtps_pd(_mm256_mul_ps(vdm, _mm256_cvtepi32_ps(cz[k])));
        es[k] = _mm512_mul_pd(vs[k], _mm512_sub_pd(_mm512_mul_pd(qq, vs[k]), _mm512_mul_pd(two, qx)));
        ez[k] = _mm512_mul_pd(vz[k], _mm512_add_pd(_mm512_mul_pd(n, vz[k]), _mm512_mul_pd(two, vx)));
      }
      __m512d m2 = _mm512_mul_pd(m2c, q);
      __m512d be = _mm512_set1_pd(INFINITY);
      __m256i bs = si, bz = mi;
      for (int ks = 0; ks < 3; ks++) {
        __m512d t = _mm512_mul_pd(m2, vs[ks]);
        for (int kz = 0; kz < 3; kz++) {
          __m512d e = _mm512_add_pd(_mm512_add_pd(es[ks], ez[kz]), _mm512_mul_pd(t, vz[kz]));
          __mmask8 ok = _mm512_mask_cmp_pd_mask(sok[ks] & zok[kz], e, be, _CMP_LT_OQ);
          be = _mm512_mask_blend_pd(ok, be, e);
          bs = _mm256_mask_blend_epi32(ok, bs, cs[ks]);
          bz = _mm256_mask_blend_epi32(ok, bz, cz[kz]);
        }
      }
      __m128i ns = _mm256_cvtepi32_epi8(bs), nz = _mm256_cvtepi32_epi8(bz);
      if (_mm_cvtsi128_si64(ns) != _mm_cvtsi128_si64(s8) || _mm_cvtsi128_si64(nz) != _mm_cvtsi128_si64(m8))
        changed = true;
      _mm_storel_epi64((__m128i*)(sc + j), ns);
      _mm_storel_epi64((__m128i*)(mc + j), nz);
    }
    if (KqQuad::search(ng - j, dn + j, d, dm, smax, mmax, sx + j, sq + j, sqq + j, sqx + j, sc + j, mc + j))
      changed = true;
    return changed;
  }

  /** kq_keep_best. */
  static void keep_best(int ng, const double* ce, const double* ca, const double* cb, double* bestE,
                        double* a, double* b) {
    int j = 0;
    for (; j + 8 <= ng; j += 8) {
      __m512d e = _mm512_loadu_pd(ce + j);
      __mmask8 lt = _mm512_cmp_pd_mask(e, _mm512_loadu_pd(bestE + j), _CMP_LT_OQ);
      _mm512_mask_storeu_pd(bestE + j, lt, e);
      _mm512_mask_storeu_pd(a + j, lt, _mm512_loadu_pd(ca + j));
      _mm512_mask_storeu_pd(b + j, lt, _mm512_loadu_pd(cb + j));
    }
    KqQuad::keep_best(ng - j, ce + j, ca + j, cb + j, bestE + j, a + j, b + j);
  }
};

/** kquant_simd.h's vector ops on sixteen float32 lanes (masks in mask registers). */
struct KqV16 {
  using Groups = KqOcto;
  using F = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static F load(const float* p) { return _mm512_load_ps(p); }
  static F loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_store_ps(p, v); }
  static void storeu(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  /** Round to nearest even, as roundps with _MM_FROUND_TO_NEAREST_INT (0 fraction bits kept). */
  static F rne(F t) { return _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F madd_exact(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static M lt(const int32_t* lens, int i) {
    return _mm512_cmpgt_epi32_mask(_mm512_load_si512((const void*)lens), _mm512_set1_epi32(i));
  }
  static F blend(F a, F b, M m) { return _mm512_mask_blend_ps(m, a, b); }
  static F keep(F v, M m) { return _mm512_maskz_mov_ps(m, v); }
  static F u8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p)));
  }
  static F finite_or_zero(F v) {
    const __m512i e = _mm512_set1_epi32(0x7f800000);
    __mmask16 bad = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), e), e);
    return _mm512_maskz_mov_ps((__mmask16)~bad, v);
  }
};

int kq_avx512_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  return kq_quantize_row<KqSimdOps<KqV16>>(j, r, s, m, bad);
}

/**
 * The same search as kq_avx512_row (one instantiation), the metrics by KqQuad (the AVX2 FMA build's 256-bit
 * form: the exact products fused into the same four chains, so the same bits). For CPUs that run a 512-bit
 * operation as two 256-bit halves (Zen 4), where KqOcto::metrics_block's 512-bit products, conversions and
 * extracts cost more issue slots than its shorter add chains save: there this form runs at its chains'
 * latency, 1.46× faster (docs/PERFORMANCE.md).
 */
int kq_avx512_ymm_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  return kq_quantize_row<KqSimdOps<KqV16>, KqQuad>(j, r, s, m, bad);
}

}  // namespace

const KqKernel* kq_avx512_kernel() {
  static const KqKernel k{"avx2", kq_avx512_row, kq_avx2_dequant_row, "avx512"};
  return &k;
}

const KqKernel* kq_avx512_ymm_kernel() {
  static const KqKernel k{"avx2", kq_avx512_ymm_row, kq_avx2_dequant_row, "avx512-ymm"};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const KqKernel* kq_avx512_kernel() { return nullptr; }
const KqKernel* kq_avx512_ymm_kernel() { return nullptr; }
}  // namespace apl
#endif
