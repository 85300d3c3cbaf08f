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
#include "kquant_simd.h"

namespace apl {

namespace {

/** kquant_simd.h's vector ops on sixteen float32 lanes (masks in mask registers). */
struct KqV16 {
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

}  // namespace

const KqKernel* kq_avx512_kernel() {
  static const KqKernel k{"avx2", kq_avx512_row, kq_avx2_dequant_row, "avx512"};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const KqKernel* kq_avx512_kernel() { return nullptr; }
}  // namespace apl
#endif
