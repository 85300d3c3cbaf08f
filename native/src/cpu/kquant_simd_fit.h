// kquant.h's kq_fit_range and kq_fit_codes for the x86 SIMD builds (KqSimdOps, kquant_simd.h), four groups at
// a time in float64 → float32 lanes, with the reference's operations per group. Included by kquant_avx2.cc
// (plain and -mfma) and kquant_avx512.cc; found by argument-dependent lookup as kq_codes_inv_off is.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include "kquant_simd.h"

namespace apl {

namespace {

/** kq_fit_range, four groups at a time: max/min with the running value second keep it on ties and NaN. */
template <class V>
void kq_fit_range(const KqSimdOps<V>&, int ng, const double* a, const double* b, float* amax, float* zmax,
                  float* zmin) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  __m128 va = _mm_setzero_ps(), vzx = va, vzn = va;
  int j = 0;
  for (; j + 4 <= ng; j += 4) {
    __m128 af = _mm256_cvtpd_ps(_mm256_loadu_pd(a + j));
    __m128 zf = _mm256_cvtpd_ps(_mm256_xor_pd(_mm256_loadu_pd(b + j), sign));
    va = _mm_max_ps(af, va);
    vzx = _mm_max_ps(zf, vzx);
    vzn = _mm_min_ps(zf, vzn);
  }
  alignas(16) float l[3][4];
  _mm_store_ps(l[0], va);
  _mm_store_ps(l[1], vzx);
  _mm_store_ps(l[2], vzn);
  for (int k = 0; k < 4; k++) {  // each lane is +0 or a value that won over it: the order does not matter
    if (l[0][k] > *amax) *amax = l[0][k];
    if (l[1][k] > *zmax) *zmax = l[1][k];
    if (l[2][k] < *zmin) *zmin = l[2][k];
  }
  kq_fit_range(KqScalarOps(), ng - j, a + j, b + j, amax, zmax, zmin);
}

/** kq_fit_codes, four groups at a time (a NaN t gives code 0, as the scalar conversion on x86). */
template <class V>
void kq_fit_codes(const KqSimdOps<V>&, int ng, const double* a, const double* b, float id, float im,
                  float smax, float mmax, uint8_t* sc, uint8_t* mc) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  const __m128 vid = _mm_set1_ps(id), vim = _mm_set1_ps(im), zero = _mm_setzero_ps();
  const __m128 vs = _mm_set1_ps(smax), vm = _mm_set1_ps(mmax);
  int j = 0;
  for (; j + 4 <= ng; j += 4) {
    __m128 ta = _mm_mul_ps(_mm256_cvtpd_ps(_mm256_loadu_pd(a + j)), vid);
    __m128 tz = _mm_mul_ps(_mm256_cvtpd_ps(_mm256_xor_pd(_mm256_loadu_pd(b + j), sign)), vim);
    ta = _mm_round_ps(ta, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    tz = _mm_round_ps(tz, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m128i cs = _mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(ta, zero), vs));
    __m128i cz = _mm_cvttps_epi32(_mm_min_ps(_mm_max_ps(tz, zero), vm));
    __m128i bytes = _mm_packus_epi16(_mm_packus_epi32(cs, cz), _mm_setzero_si128());
    uint64_t v = (uint64_t)_mm_cvtsi128_si64(bytes);
    uint32_t s4 = (uint32_t)v, m4 = (uint32_t)(v >> 32);
    memcpy(sc + j, &s4, 4);
    memcpy(mc + j, &m4, 4);
  }
  kq_fit_codes(KqScalarOps(), ng - j, a + j, b + j, id, im, smax, mmax, sc + j, mc + j);
}

}  // namespace

}  // namespace apl
#endif
