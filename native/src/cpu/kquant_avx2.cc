// AVX2 variant of the two-level-scale kernels (kquant.h): kquant_simd.h's passes with eight groups per vector
// (KqV8). -mavx2 -mf16c -mno-fma, -ffp-contract=off (kq_avx2_kernel); again with -mfma as kquant_avx2_fma.cc
// (APL_FMA, kq_avx2_fma_kernel: exact products fused, see madd_exact; the same bits). Also the fast
// dequantizer.
#include "kquant_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "kquant_simd_fit.h"

namespace apl {

namespace {

/** kquant_simd.h's vector ops on eight float32 lanes (masks as all-ones lanes). */
struct KqV8 {
  using Groups = KqQuad;
  using F = __m256;
  using M = __m256;
  static constexpr int W = 8;
  static F load(const float* p) { return _mm256_load_ps(p); }
  static F loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_store_ps(p, v); }
  static void storeu(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F rne(F t) { return avx2::rne(t); }
  static F madd_exact(F a, F b, F c) { return avx2::madd_exact(a, b, c); }
  static M lt(const int32_t* lens, int i) {
    __m256i l = _mm256_load_si256((const __m256i*)lens);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(l, _mm256_set1_epi32(i)));
  }
  static F blend(F a, F b, M m) { return _mm256_blendv_ps(a, b, m); }
  static F keep(F v, M m) { return _mm256_and_ps(v, m); }
  static F u8(const uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)));
  }
  static F finite_or_zero(F v) {
    const __m256i e = _mm256_set1_epi32(0x7f800000);
    __m256i bad = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), e), e);
    return _mm256_andnot_ps(_mm256_castsi256_ps(bad), v);
  }
};

int kq_avx2_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  return kq_quantize_row<KqSimdOps<KqV8>>(j, r, s, m, bad);
}

}  // namespace

// Both builds are named "avx2" (the backend the report names): they write the same bytes and the same report.
#ifdef APL_FMA
const KqKernel* kq_avx2_fma_kernel() {
  static const KqKernel k{"avx2", kq_avx2_row, kq_avx2_dequant_row, "avx2-fma"};
#else
const KqKernel* kq_avx2_kernel() {
  static const KqKernel k{"avx2", kq_avx2_row, kq_avx2_dequant_row, "avx2"};
#endif
  return &k;
}

}  // namespace apl
#else
namespace apl {
#ifdef APL_FMA
const KqKernel* kq_avx2_fma_kernel() { return nullptr; }
#else
const KqKernel* kq_avx2_kernel() { return nullptr; }
#endif
}  // namespace apl
#endif
