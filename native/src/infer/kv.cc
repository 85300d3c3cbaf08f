// float16 KV cache operations (see kv.h). The x86 variant is compiled with a target attribute (this file gets
// no -m flags) and used only when the CPU has AVX2, F16C and FMA; the NEON variant keeps the scalar order
// (bit-exact).
#include "kv.h"

#include <string.h>

#include "../quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace apl {
namespace infer {

namespace {

float dot_scalar(const float* q, const uint16_t* k, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    float p = q[i] * f16_to_f32(k[i]);
    acc[i & 7] += p;
  }
  return reduce8(acc);
}

void axpy_scalar(float s, const uint16_t* v, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float p = s * f16_to_f32(v[i]);
    y[i] += p;
  }
}

void store_scalar(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = f32_to_f16(src[i]);
}

#if defined(__x86_64__) || defined(_M_X64)
#define APL_KV_TARGET __attribute__((target("avx2,f16c,fma")))

APL_KV_TARGET float dot_avx2(const float* q, const uint16_t* k, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i))),
                         a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i + 8))), a1);
  }
  for (; i + 8 <= n; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i))),
                         a0);
  a0 = _mm256_add_ps(a0, a1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; i++) r += q[i] * f16_to_f32(k[i]);
  return r;
}

APL_KV_TARGET void axpy_avx2(float s, const uint16_t* v, float* y, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(v + i))),
                                            _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += s * f16_to_f32(v[i]);
}

APL_KV_TARGET void store_avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i*)(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) dst[i] = f32_to_f16(src[i]);
}

bool cpu_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}
#endif

#if defined(__aarch64__)
// Eight lanes in two vectors, lane i % 8: the scalar order, so the results are bit-exact.
float dot_neon(const float* q, const uint16_t* k, int64_t n) {
  float32x4_t a = vdupq_n_f32(0.0f), b = a;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(k + i));
    a = vaddq_f32(a, vmulq_f32(vld1q_f32(q + i), vcvt_f32_f16(vget_low_f16(h))));
    b = vaddq_f32(b, vmulq_f32(vld1q_f32(q + i + 4), vcvt_high_f32_f16(h)));
  }
  float acc[8];
  vst1q_f32(acc, a);
  vst1q_f32(acc + 4, b);
  for (; i < n; i++) {
    float p = q[i] * f16_to_f32(k[i]);
    acc[i & 7] += p;
  }
  return reduce8(acc);
}

void axpy_neon(float s, const uint16_t* v, float* y, int64_t n) {
  const float32x4_t vs = vdupq_n_f32(s);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + i)));
    vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(vs, x)));
  }
  for (; i < n; i++) {
    float p = s * f16_to_f32(v[i]);
    y[i] += p;
  }
}

void store_neon(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
  for (; i < n; i++) dst[i] = f32_to_f16(src[i]);
}
#endif

}  // namespace

const KvOps& kv_ops(bool simd) {
  static const KvOps scalar{"scalar", dot_scalar, axpy_scalar, store_scalar};
  if (!simd) return scalar;
#if defined(__x86_64__) || defined(_M_X64)
  static const KvOps avx2{"avx2", dot_avx2, axpy_avx2, store_avx2};
  if (cpu_avx2()) return avx2;
#elif defined(__aarch64__)
  static const KvOps neon{"neon", dot_neon, axpy_neon, store_neon};
  return neon;
#endif
  return scalar;
}

}  // namespace infer
}  // namespace apl
