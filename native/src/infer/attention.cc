// Prompt and decode attention (see attention.h). This file gets no -m flags: the x86 variants use function
// target attributes and run only where the CPU has them (chosen at run time).
#include "attention.h"

#include <string.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "../quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports _mm512_shuffle_f32x4's own undefined operand as maybe uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#define APL_ATTN_X86 1
#define APL_ATTN_AVX2 __attribute__((target("avx2,f16c,fma")))
#define APL_ATTN_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx2,f16c,fma")))
#endif

namespace apl {
namespace infer {

namespace {

constexpr int64_t kRows = 16;  // query rows per block (one 512-bit vector of scores per key)
constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && v[0] == '1';
}

// ---------------------------------------------------------------- scalar kernels (both orders)

/** Σ q[i]·k[i] in the order o (see AttnOrder); kFma16 here with std::fma (tests and the AVX2-less fallback).
 */
float dot_order(AttnOrder o, const float* q, const float* k, int64_t n) {
  if (o == AttnOrder::kLanes8) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
      float p = q[i] * k[i];
      acc[i & 7] += p;
    }
    return reduce8(acc);
  }
  float a[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++) a[l] = std::fma(q[i + l], k[i + l], a[l]);
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) a[l] = std::fma(q[i + l], k[i + l], a[l]);
  float x[8];
  for (int l = 0; l < 8; l++) x[l] = a[l] + a[l + 8];
  float r = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
  for (; i < n; i++) {
    float p = q[i] * k[i];
    r += p;
  }
  return r;
}

void scores_scalar(AttnOrder o, const float* Q, int64_t nq, const float* K, int64_t nk, int64_t D,
                   float scale, float* S) {
  for (int64_t j = 0; j < nk; j++)
    for (int64_t r = 0; r < nq; r++) S[j * kRows + r] = dot_order(o, Q + r * D, K + j * D, D) * scale;
}

/** o = Σ_{j ∈ [j0, j1]} P[j·16]·V[j] in key order, with the reference axpy's multiply-add. */
void pv_scalar(AttnOrder o, const float* P, const float* V, int64_t D, int64_t j0, int64_t j1, float* out) {
  std::fill(out, out + D, 0.0f);
  const int64_t vec = o == AttnOrder::kFma16 ? D / 8 * 8 : 0;  // the x86 axpy fuses the 8-lane blocks only
  for (int64_t j = j0; j <= j1; j++) {
    const float s = P[j * kRows];
    const float* v = V + j * D;
    for (int64_t i = 0; i < vec; i++) out[i] = std::fma(s, v[i], out[i]);
    for (int64_t i = vec; i < D; i++) {
      float p = s * v[i];
      out[i] += p;
    }
  }
}

template <bool StdExp>
void softmax_scalar(float* S, int64_t nk, int64_t lanes) {
  for (int64_t r = 0; r < lanes; r++) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < nk; j++) {
      float s = S[j * kRows + r];
      if (s > mx) mx = s;
    }
    float sum = 0;
    for (int64_t j = 0; j < nk; j++) {
      float e = StdExp ? std::exp(S[j * kRows + r] - mx) : attn_exp(S[j * kRows + r] - mx);
      S[j * kRows + r] = e;
      sum += e;
    }
    for (int64_t j = 0; j < nk; j++) S[j * kRows + r] = S[j * kRows + r] / sum;
  }
}

void convert_scalar(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++)
    for (int64_t i = 0; i < D; i++) dst[j * D + i] = f16_to_f32(src[j * stride + i]);
}

#if APL_ATTN_X86
// ---------------------------------------------------------------- AVX2 + FMA (kFma16 only)

APL_ATTN_AVX2 float dot_fma16_avx2(const float* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  a0 = _mm256_add_ps(a0, a1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; i++) {
    float p = a[i] * b[i];
    r += p;
  }
  return r;
}

/** attn_exp on 8 lanes, bit-exact with the scalar one. */
APL_ATTN_AVX2 inline __m256 exp8(__m256 x) {
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  const __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);  // a NaN stays NaN (min returns its second operand)
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kC1)));
  r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(kC2)));
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP1));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP2));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP3));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP4));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP5));
  __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_blendv_ps(_mm256_andnot_ps(under, y), _mm256_set1_ps(INFINITY), over);
}

/** The softmax of 16 lanes (rows) over nk keys, on two 8-lane halves. */
APL_ATTN_AVX2 void softmax_avx2(float* S, int64_t nk) {
  for (int h = 0; h < 16; h += 8) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int64_t j = 0; j < nk; j++) mx = _mm256_max_ps(_mm256_loadu_ps(S + j * kRows + h), mx);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < nk; j++) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(S + j * kRows + h), mx));
      _mm256_storeu_ps(S + j * kRows + h, e);
      sum = _mm256_add_ps(sum, e);
    }
    for (int64_t j = 0; j < nk; j++)
      _mm256_storeu_ps(S + j * kRows + h, _mm256_div_ps(_mm256_loadu_ps(S + j * kRows + h), sum));
  }
}

APL_ATTN_AVX2 void silu_mul_avx2(float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(g + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

/** dot_fma16_avx2 on float16 keys (the kv dot's code). */
APL_ATTN_AVX2 float dot_fma16_f16(const float* q, const uint16_t* k, int64_t n) {
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
  for (; i < n; i++) {
    float p = q[i] * f16_to_f32(k[i]);
    r += p;
  }
  return r;
}

/**
 * One query row straight from the cache (no conversion, no block): the blocked form's result for the row bit
 * for bit (same dot, attn_exp, sum and multiply-add order). Decode with one or two rows per KV head (no GQA).
 */
APL_ATTN_AVX2 void row_fma16(const AttnArgs& a, int64_t g, int64_t t, int64_t h, int64_t lo, float scale,
                             float* sc, bool std_exp) {
  const int64_t D = a.head_dim, kvd = a.kv_heads * D, p = a.pos + t;
  const float* qv = a.q + (t * a.heads + h) * D;
  float mx = -INFINITY;
  for (int64_t j = lo; j <= p; j++) {
    const int64_t at = j * kvd + g * D;
    float s = (a.k16 ? dot_fma16_f16(qv, a.k16 + at, D) : dot_fma16_avx2(qv, a.k32 + at, D)) * scale;
    sc[j - lo] = s;
    if (s > mx) mx = s;
  }
  const int64_t nk = p - lo + 1;
  int64_t j = 0;
  if (!std_exp)
    for (const __m256 m = _mm256_set1_ps(mx); j + 8 <= nk; j += 8)
      _mm256_storeu_ps(sc + j, exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), m)));
  for (; j < nk; j++) sc[j] = std_exp ? std::exp(sc[j] - mx) : attn_exp(sc[j] - mx);
  float sum = 0;
  for (j = 0; j < nk; j++) sum += sc[j];
  float* o = a.out + (t * a.heads + h) * D;
  std::fill(o, o + D, 0.0f);
  for (int64_t j = lo; j <= p; j++) {
    const int64_t at = j * kvd + g * D;
    const float w = sc[j - lo] / sum;
    const __m256 vs = _mm256_set1_ps(w);
    int64_t i = 0;
    if (a.v16) {
      const uint16_t* v = a.v16 + at;
      for (; i + 8 <= D; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(vs, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(v + i))),
                                                _mm256_loadu_ps(o + i)));
      for (; i < D; i++) {
        float pr = w * f16_to_f32(v[i]);
        o[i] += pr;
      }
    } else {
      const float* v = a.v32 + at;
      for (; i + 8 <= D; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(v + i), _mm256_loadu_ps(o + i)));
      for (; i < D; i++) {
        float pr = w * v[i];
        o[i] += pr;
      }
    }
  }
}

APL_ATTN_AVX2 inline float hsum8(__m256 a0) {  // dot_fma16_avx2's reduction
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/** S[j·16 + r] for 2 rows × 2 keys at a time (each Q and K load used twice), then the odd row / key alone. */
APL_ATTN_AVX2 void scores_avx2(const float* Q, int64_t nq, const float* K, int64_t nk, int64_t D, float scale,
                               float* S) {
  const int64_t d16 = D / 16 * 16, d8 = D / 8 * 8;
  int64_t r = 0;
  for (; r + 2 <= nq; r += 2) {
    const float *q0 = Q + r * D, *q1 = q0 + D;
    int64_t j = 0;
    for (; j + 2 <= nk; j += 2) {
      const float *k0 = K + j * D, *k1 = k0 + D;
      __m256 a00 = _mm256_setzero_ps(), b00 = a00, a01 = a00, b01 = a00, a10 = a00, b10 = a00, a11 = a00,
             b11 = a00;
      int64_t i = 0;
      for (; i < d16; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(q0 + i), y0 = _mm256_loadu_ps(q0 + i + 8);
        const __m256 x1 = _mm256_loadu_ps(q1 + i), y1 = _mm256_loadu_ps(q1 + i + 8);
        const __m256 u0 = _mm256_loadu_ps(k0 + i), v0 = _mm256_loadu_ps(k0 + i + 8);
        const __m256 u1 = _mm256_loadu_ps(k1 + i), v1 = _mm256_loadu_ps(k1 + i + 8);
        a00 = _mm256_fmadd_ps(x0, u0, a00), b00 = _mm256_fmadd_ps(y0, v0, b00);
        a01 = _mm256_fmadd_ps(x0, u1, a01), b01 = _mm256_fmadd_ps(y0, v1, b01);
        a10 = _mm256_fmadd_ps(x1, u0, a10), b10 = _mm256_fmadd_ps(y1, v0, b10);
        a11 = _mm256_fmadd_ps(x1, u1, a11), b11 = _mm256_fmadd_ps(y1, v1, b11);
      }
      if (i < d8) {
        const __m256 x0 = _mm256_loadu_ps(q0 + i), x1 = _mm256_loadu_ps(q1 + i);
        const __m256 u0 = _mm256_loadu_ps(k0 + i), u1 = _mm256_loadu_ps(k1 + i);
        a00 = _mm256_fmadd_ps(x0, u0, a00), a01 = _mm256_fmadd_ps(x0, u1, a01);
        a10 = _mm256_fmadd_ps(x1, u0, a10), a11 = _mm256_fmadd_ps(x1, u1, a11);
      }
      float s00 = hsum8(_mm256_add_ps(a00, b00)), s01 = hsum8(_mm256_add_ps(a01, b01));
      float s10 = hsum8(_mm256_add_ps(a10, b10)), s11 = hsum8(_mm256_add_ps(a11, b11));
      for (i = d8; i < D; i++) {
        float p00 = q0[i] * k0[i], p01 = q0[i] * k1[i], p10 = q1[i] * k0[i], p11 = q1[i] * k1[i];
        s00 += p00, s01 += p01, s10 += p10, s11 += p11;
      }
      S[j * kRows + r] = s00 * scale, S[(j + 1) * kRows + r] = s01 * scale;
      S[j * kRows + r + 1] = s10 * scale, S[(j + 1) * kRows + r + 1] = s11 * scale;
    }
    for (; j < nk; j++) {
      S[j * kRows + r] = dot_fma16_avx2(q0, K + j * D, D) * scale;
      S[j * kRows + r + 1] = dot_fma16_avx2(q1, K + j * D, D) * scale;
    }
  }
  for (; r < nq; r++)
    for (int64_t j = 0; j < nk; j++) S[j * kRows + r] = dot_fma16_avx2(Q + r * D, K + j * D, D) * scale;
}

/** NR rows × NC blocks of 8 columns in registers over keys j0..j1 (the reference axpy's fused blocks). */
template <int NR, int NC>
APL_ATTN_AVX2 inline void pv_cols8(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                                   float* const* out, int64_t col) {
  __m256 o[NR][NC];
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++) o[r][c] = _mm256_setzero_ps();
  for (int64_t j = j0; j <= j1; j++) {
    const float* v = V + j * D + col;
    if (NR == 1) {
      const __m256 s = _mm256_set1_ps(P[j * kRows]);
      for (int c = 0; c < NC; c++) o[0][c] = _mm256_fmadd_ps(s, _mm256_loadu_ps(v + c * 8), o[0][c]);
    } else {
      __m256 vv[NC];
      for (int c = 0; c < NC; c++) vv[c] = _mm256_loadu_ps(v + c * 8);
      for (int r = 0; r < NR; r++) {
        const __m256 s = _mm256_set1_ps(P[j * kRows + r]);
        for (int c = 0; c < NC; c++) o[r][c] = _mm256_fmadd_ps(s, vv[c], o[r][c]);
      }
    }
  }
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++) _mm256_storeu_ps(out[r] + col + c * 8, o[r][c]);
}

/** Rows P + 0..nr−1 with the key range j0..j1: two rows × 4 blocks of 8 columns, or one row × 8. */
APL_ATTN_AVX2 void pv_avx2(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                           float* const* out, int64_t nr) {
  const int64_t blocks = D / 8;
  int64_t r = 0;
  for (; r + 2 <= nr; r += 2) {
    int64_t c = 0;
    for (; c + 4 <= blocks; c += 4) pv_cols8<2, 4>(P + r, V, D, j0, j1, out + r, c * 8);
    for (; c < blocks; c++) pv_cols8<2, 1>(P + r, V, D, j0, j1, out + r, c * 8);
  }
  for (; r < nr; r++) {
    int64_t c = 0;
    for (; c + 8 <= blocks; c += 8) pv_cols8<1, 8>(P + r, V, D, j0, j1, out + r, c * 8);
    for (; c < blocks; c++) pv_cols8<1, 1>(P + r, V, D, j0, j1, out + r, c * 8);
  }
  if (blocks * 8 == D) return;
  for (r = 0; r < nr; r++) {  // the unfused rest (as the reference's axpy)
    float rest[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = j0; j <= j1; j++)
      for (int64_t i = blocks * 8; i < D; i++) {
        float p = P[j * kRows + r] * V[j * D + i];
        rest[i - blocks * 8] += p;
      }
    for (int64_t i = blocks * 8; i < D; i++) out[r][i] = rest[i - blocks * 8];
  }
}

APL_ATTN_AVX2 void convert_avx2(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++) {
    const uint16_t* s = src + j * stride;
    float* d = dst + j * D;
    int64_t i = 0;
    for (; i + 8 <= D; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(s + i))));
    for (; i < D; i++) d[i] = f16_to_f32(s[i]);
  }
}

// ---------------------------------------------------------------- AVX-512 (kFma16)

APL_ATTN_AVX512 void convert_avx512(const uint16_t* src, int64_t stride, int64_t nk, int64_t D, float* dst) {
  for (int64_t j = 0; j < nk; j++) {
    const uint16_t* s = src + j * stride;
    float* d = dst + j * D;
    int64_t i = 0;
    for (; i + 16 <= D; i += 16)
      _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(s + i))));
    for (; i + 8 <= D; i += 8)
      _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(s + i))));
    for (; i < D; i++) d[i] = f16_to_f32(s[i]);
  }
}

/** attn_exp on 16 lanes, bit-exact with the scalar one. */
APL_ATTN_AVX512 inline __m512 exp16(__m512 x) {
  const __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  const __mmask16 over = _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.0f), _CMP_GT_OQ);
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);  // a NaN stays NaN (min returns its second operand)
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(kC1)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(kC2)));
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kP1));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kP2));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kP3));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kP4));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(kP5));
  __m512 y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
  return _mm512_mask_mov_ps(_mm512_maskz_mov_ps((__mmask16)~under, y), over, _mm512_set1_ps(INFINITY));
}

APL_ATTN_AVX512 void softmax_avx512(float* S, int64_t nk) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < nk; j++) mx = _mm512_max_ps(_mm512_loadu_ps(S + j * kRows), mx);  // NaN: skipped
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < nk; j++) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(S + j * kRows), mx));
    _mm512_storeu_ps(S + j * kRows, e);
    sum = _mm512_add_ps(sum, e);
  }
  for (int64_t j = 0; j < nk; j++)
    _mm512_storeu_ps(S + j * kRows, _mm512_div_ps(_mm512_loadu_ps(S + j * kRows), sum));
}

APL_ATTN_AVX512 void silu_mul_avx512(float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(g + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
    _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(v, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  for (; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

/**
 * The 16 accumulators of 4 rows × 4 keys (v[4·row + key], lane i % 16) reduced as dot_fma16_avx2 reduces one:
 * lanes l and l + 8, then l and l + 4, l and l + 2, l and l + 1 (pairs summed in the same tree). Lane
 * 4·key + row of the result is the pair (key, row).
 */
APL_ATTN_AVX512 inline __m512 reduce16(const __m512* v) {
  __m512 w[8], u[4], y[2];
  for (int c = 0; c < 8; c++)
    w[c] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * c], v[2 * c + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(v[2 * c], v[2 * c + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int d = 0; d < 4; d++)
    u[d] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * d], w[2 * d + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[2 * d], w[2 * d + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int e = 0; e < 2; e++)
    y[e] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * e], u[2 * e + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(u[2 * e], u[2 * e + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/** Keys per tile: 16 KB of float32 keys or values (a multiple of 4). */
inline int64_t key_tile(int64_t D) { return std::max<int64_t>(4, 4096 / D / 4 * 4); }

/** S[j·16 + r] for rows r < nq (a multiple of 4, Q padded) and keys j < nk (a multiple of 4, K padded). */
APL_ATTN_AVX512 void scores_avx512(const float* Q, int64_t nq, const float* K, int64_t nk, int64_t D,
                                   float scale, float* S) {
  const int64_t full = D / 16, half = D % 16 >= 8, tail = full * 16 + half * 8;
  const __m512 vscale = _mm512_set1_ps(scale);
  const int64_t tile = key_tile(D);  // keys per pass over the row quads (stay in L1)
  for (int64_t jt = 0; jt < nk; jt += tile)
    for (int64_t r0 = 0; r0 < nq; r0 += 4) {
      const float* q = Q + r0 * D;
      for (int64_t j0 = jt; j0 < std::min(nk, jt + tile); j0 += 4) {
        const float* k = K + j0 * D;
        __m512 acc[16];
        for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
        for (int64_t c = 0; c < full; c++) {
          const __m512 k0 = _mm512_loadu_ps(k + c * 16), k1 = _mm512_loadu_ps(k + D + c * 16),
                       k2 = _mm512_loadu_ps(k + 2 * D + c * 16), k3 = _mm512_loadu_ps(k + 3 * D + c * 16);
          for (int b = 0; b < 4; b++) {
            const __m512 qv = _mm512_loadu_ps(q + b * D + c * 16);
            acc[4 * b] = _mm512_fmadd_ps(qv, k0, acc[4 * b]);
            acc[4 * b + 1] = _mm512_fmadd_ps(qv, k1, acc[4 * b + 1]);
            acc[4 * b + 2] = _mm512_fmadd_ps(qv, k2, acc[4 * b + 2]);
            acc[4 * b + 3] = _mm512_fmadd_ps(qv, k3, acc[4 * b + 3]);
          }
        }
        if (half) {  // lanes 0..7 only (the 8-wide step of the reference); lanes 8..15 add +0
          const int64_t c = full * 16;
          const __m512 k0 = _mm512_maskz_loadu_ps(0xff, k + c), k1 = _mm512_maskz_loadu_ps(0xff, k + D + c),
                       k2 = _mm512_maskz_loadu_ps(0xff, k + 2 * D + c),
                       k3 = _mm512_maskz_loadu_ps(0xff, k + 3 * D + c);
          for (int b = 0; b < 4; b++) {
            const __m512 qv = _mm512_maskz_loadu_ps(0xff, q + b * D + c);
            acc[4 * b] = _mm512_mask3_fmadd_ps(qv, k0, acc[4 * b], 0xff);
            acc[4 * b + 1] = _mm512_mask3_fmadd_ps(qv, k1, acc[4 * b + 1], 0xff);
            acc[4 * b + 2] = _mm512_mask3_fmadd_ps(qv, k2, acc[4 * b + 2], 0xff);
            acc[4 * b + 3] = _mm512_mask3_fmadd_ps(qv, k3, acc[4 * b + 3], 0xff);
          }
        }
        __m512 z = reduce16(acc);
        if (tail < D) {  // the reference's one-by-one rest, after the reduction
          alignas(64) float t[16];
          _mm512_store_ps(t, z);
          for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
              for (int64_t i = tail; i < D; i++) {
                float p = q[b * D + i] * k[a * D + i];
                t[4 * a + b] += p;
              }
          z = _mm512_load_ps(t);
        }
        z = _mm512_mul_ps(z, vscale);
        _mm_storeu_ps(S + j0 * kRows + r0, _mm512_castps512_ps128(z));
        _mm_storeu_ps(S + (j0 + 1) * kRows + r0, _mm512_extractf32x4_ps(z, 1));
        _mm_storeu_ps(S + (j0 + 2) * kRows + r0, _mm512_extractf32x4_ps(z, 2));
        _mm_storeu_ps(S + (j0 + 3) * kRows + r0, _mm512_extractf32x4_ps(z, 3));
      }
    }
}

/**
 * NR rows (P columns P + r, outputs out[r]) × NC blocks of 16 output columns in registers, keys j0..j1 in
 * order (the rows share their key range); each row's sum is the reference axpy's, fused multiply-add per key.
 */
template <int NR, int NC>
APL_ATTN_AVX512 inline void pv_cols(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                                    float* const* out, int64_t col, bool first) {
  __m512 o[NR][NC];
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++)
      o[r][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(out[r] + col + c * 16);
  for (int64_t j = j0; j <= j1; j++) {
    const float* v = V + j * D + col;
    __m512 vv[NC];
    for (int c = 0; c < NC; c++) vv[c] = _mm512_loadu_ps(v + c * 16);
    for (int r = 0; r < NR; r++) {
      const __m512 s = _mm512_set1_ps(P[j * kRows + r]);
      for (int c = 0; c < NC; c++) o[r][c] = _mm512_fmadd_ps(s, vv[c], o[r][c]);
    }
  }
  for (int r = 0; r < NR; r++)
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(out[r] + col + c * 16, o[r][c]);
}

/** Keys j0..j1 of NR rows on the columns in blocks of 16 (first: the first keys of the rows). */
template <int NR>
APL_ATTN_AVX512 void pv_blocks(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                               float* const* out, bool first) {
  // NR × NC ≤ 16 accumulators and NC values: 4 × 4, 2 × 8, 1 × 8
  constexpr int kMax = NR == 4 ? 4 : 8;
  const int64_t full = D / 16;
  int64_t c = 0;
  for (; c + kMax <= full; c += kMax) pv_cols<NR, kMax>(P, V, D, j0, j1, out, c * 16, first);
  switch (full - c) {
    case 7:
      pv_cols<NR, 7 < kMax ? 7 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 6:
      pv_cols<NR, 6 < kMax ? 6 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 5:
      pv_cols<NR, 5 < kMax ? 5 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 4:
      pv_cols<NR, 4 < kMax ? 4 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 3:
      pv_cols<NR, 3 < kMax ? 3 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 2:
      pv_cols<NR, 2 < kMax ? 2 : 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    case 1:
      pv_cols<NR, 1>(P, V, D, j0, j1, out, c * 16, first);
      break;
    default:
      break;
  }
}

/**
 * Rows P + 0..nr−1 with the same key range j0..j1: key tiles (kept in L1) outside, four, two or one row at a
 * time inside (the fewer columns, the more rows); each row's sum stays in key order.
 */
APL_ATTN_AVX512 void pv_avx512(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                               float* const* out, int64_t nr) {
  const int64_t full = D / 16, tile = key_tile(D);
  for (int64_t jt = j0; jt <= j1; jt += tile) {
    const int64_t je = std::min(j1, jt + tile - 1);
    int64_t r = 0;
    if (full <= 4)
      for (; r + 4 <= nr; r += 4) pv_blocks<4>(P + r, V, D, jt, je, out + r, jt == j0);
    for (; r + 2 <= nr; r += 2) pv_blocks<2>(P + r, V, D, jt, je, out + r, jt == j0);
    for (; r < nr; r++) pv_blocks<1>(P + r, V, D, jt, je, out + r, jt == j0);
  }
  const int64_t i0 = full * 16;
  if (i0 == D) return;
  // the last < 16 columns: an 8-wide fused block, then the unfused rest (as the reference's axpy)
  const int64_t vec = (D - i0) / 8 * 8;
  for (int64_t r = 0; r < nr; r++) {
    __m256 o8 = _mm256_setzero_ps();
    float rest[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = j0; j <= j1; j++) {
      const float s = P[j * kRows + r];
      const float* v = V + j * D + i0;
      if (vec) o8 = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_loadu_ps(v), o8);
      for (int64_t i = vec; i < D - i0; i++) {
        float p = s * v[i];
        rest[i - vec] += p;
      }
    }
    if (vec) _mm256_storeu_ps(out[r] + i0, o8);
    for (int64_t i = vec; i < D - i0; i++) out[r][i0 + i] = rest[i - vec];
  }
}

bool cpu_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}
bool cpu_avx512() {
  return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw");
}
#endif

}  // namespace

float attn_exp(float x) {
  if (x < -87.0f) return 0.0f;
  if (x != x) return x;
  if (x > 88.0f) return INFINITY;
  const float n = std::nearbyint(x * kLog2e);
  float r = x - n * kC1;
  r = r - n * kC2;
  const float z = r * r;
  float p = kP0;
  p = p * r + kP1;
  p = p * r + kP2;
  p = p * r + kP3;
  p = p * r + kP4;
  p = p * r + kP5;
  float y = p * z;
  y = y + r;
  y = y + 1.0f;
  const uint32_t e = (uint32_t)((int32_t)n + 127) << 23;
  return y * bits_f32(e);
}

void silu_mul(float* g, const float* u, int64_t n, int isa) {
#if APL_ATTN_X86
  static const int best = cpu_avx512() ? 2 : cpu_avx2() ? 1 : 0;
  if (isa < 0) isa = best;
  if (isa == 2) return silu_mul_avx512(g, u, n);
  if (isa == 1) return silu_mul_avx2(g, u, n);
#else
  (void)isa;
#endif
  for (int64_t i = 0; i < n; i++) {
    const float v = g[i], a = v / (1.0f + attn_exp(-v));
    g[i] = a * u[i];
  }
}

AttnOrder attn_order(const KvOps& kv) {
  return strcmp(kv.name, "avx2") == 0 ? AttnOrder::kFma16 : AttnOrder::kLanes8;
}

int attn_available(AttnOrder order, AttnImpl* out) {
  int n = 0;
  out[n++] = {"scalar", order, 0};  // kFma16: std::fma, the fallback without FMA hardware (and a test)
#if APL_ATTN_X86
  if (order == AttnOrder::kFma16) {
    if (cpu_avx2()) out[n++] = {"avx2", order, 1};
    if (cpu_avx512()) out[n++] = {"avx512", order, 2};
  }
#endif
  return n;
}

AttnImpl attn_select(AttnOrder order) {
  AttnImpl v[3];
  int n = attn_available(order, v);
  if (env_on("APL_NO_AVX512") && n > 1 && v[n - 1].isa == 2) n--;
  return v[n - 1];
}

void attention_reference(const AttnArgs& a, const KvOps& kv, const Kernel& k, Pool& pool) {
  const int64_t D = a.head_dim, H = a.heads, kvd = a.kv_heads * D, rep = a.heads / a.kv_heads;
  const bool f16 = a.k16 != nullptr;
  const float scale = (float)(1.0 / std::sqrt((double)D));
  pool.run(a.n * H, [&](int64_t i) {
    int64_t t = i / H, h = i % H, p = a.pos + t, kvh = h / rep;
    int64_t lo = a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
    thread_local std::vector<float> sc;
    if ((int64_t)sc.size() < p + 1) sc.resize((size_t)(p + 1));
    const float* qv = a.q + (t * H + h) * D;
    float mx = -INFINITY;
    for (int64_t j = lo; j <= p; j++) {
      const int64_t at = j * kvd + kvh * D;
      float s = (f16 ? kv.dot(qv, a.k16 + at, D) : k.dotf(qv, a.k32 + at, D)) * scale;
      sc[(size_t)j] = s;
      if (s > mx) mx = s;
    }
    float sum = 0;
    for (int64_t j = lo; j <= p; j++) {
      float e = std::exp(sc[(size_t)j] - mx);
      sc[(size_t)j] = e;
      sum += e;
    }
    float* o = a.out + (t * H + h) * D;
    std::fill(o, o + D, 0.0f);
    for (int64_t j = lo; j <= p; j++) {
      const int64_t at = j * kvd + kvh * D;
      if (f16)
        kv.axpy(sc[(size_t)j] / sum, a.v16 + at, o, D);
      else
        k.axpyf(sc[(size_t)j] / sum, a.v32 + at, o, D);
    }
  });
}

void attention_blocked(const AttnArgs& a, const AttnImpl& impl, Pool& pool, bool std_exp) {
  const int64_t D = a.head_dim, H = a.heads, G = a.kv_heads, kvd = G * D, rep = H / G;
  const int64_t rows = a.n * rep, nb = (rows + kRows - 1) / kRows;
  const float scale = (float)(1.0 / std::sqrt((double)D));
  auto lo_of = [&](int64_t p) { return a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : (int64_t)0; };
  // the last blocks (the most keys) first
  pool.run(G * nb, [&](int64_t task) {
    const int64_t b = nb - 1 - task / G, g = task % G;
    const int64_t r0 = b * kRows, nr = std::min(kRows, rows - r0), nq = (nr + 3) / 4 * 4;
    const int64_t klo = lo_of(a.pos + r0 / rep), khi = a.pos + (r0 + nr - 1) / rep;
    const int64_t nk = khi - klo + 1, nk4 = (nk + 3) / 4 * 4;
    thread_local std::vector<float> Qb, Kf, Vf, S;
#if APL_ATTN_X86
    if (nr <= 2 && impl.isa >= 1) {  // one or two rows: straight from the cache, as the block would
      if (S.size() < (size_t)nk) S.resize((size_t)nk);
      for (int64_t r = 0; r < nr; r++) {
        const int64_t t = (r0 + r) / rep;
        row_fma16(a, g, t, g * rep + (r0 + r) % rep, lo_of(a.pos + t), scale, S.data(), std_exp);
      }
      return;
    }
#endif
    if (Qb.size() < (size_t)(kRows * D)) Qb.resize((size_t)(kRows * D));
    if (Kf.size() < (size_t)(nk4 * D)) Kf.resize((size_t)(nk4 * D));
    if (Vf.size() < (size_t)(nk4 * D)) Vf.resize((size_t)(nk4 * D));
    if (S.size() < (size_t)(nk4 * kRows)) S.resize((size_t)(nk4 * kRows));
    for (int64_t r = 0; r < nr; r++) {
      const int64_t t = (r0 + r) / rep, h = g * rep + (r0 + r) % rep;
      std::copy(a.q + (t * H + h) * D, a.q + (t * H + h + 1) * D, Qb.data() + r * D);
    }
    std::fill(Qb.data() + nr * D, Qb.data() + nq * D, 0.0f);
    std::fill(Kf.data() + nk * D, Kf.data() + nk4 * D, 0.0f);
    // this KV head's keys and values once for the block's rows (float32)
    if (a.k16) {
      const uint16_t* ks = a.k16 + klo * kvd + g * D;
      const uint16_t* vs = a.v16 + klo * kvd + g * D;
#if APL_ATTN_X86
      if (impl.isa == 2) {
        convert_avx512(ks, kvd, nk, D, Kf.data());
        convert_avx512(vs, kvd, nk, D, Vf.data());
      } else if (impl.isa == 1) {
        convert_avx2(ks, kvd, nk, D, Kf.data());
        convert_avx2(vs, kvd, nk, D, Vf.data());
      } else
#endif
      {
        convert_scalar(ks, kvd, nk, D, Kf.data());
        convert_scalar(vs, kvd, nk, D, Vf.data());
      }
    } else {
      for (int64_t j = 0; j < nk; j++) {
        const float* ks = a.k32 + (klo + j) * kvd + g * D;
        const float* vs = a.v32 + (klo + j) * kvd + g * D;
        std::copy(ks, ks + D, Kf.data() + j * D);
        std::copy(vs, vs + D, Vf.data() + j * D);
      }
    }
    float* s = S.data();
#if APL_ATTN_X86
    if (impl.isa == 2)
      scores_avx512(Qb.data(), nq, Kf.data(), nk4, D, scale, s);
    else if (impl.isa == 1)
      scores_avx2(Qb.data(), nr, Kf.data(), nk, D, scale, s);
    else
#endif
      scores_scalar(impl.order, Qb.data(), nr, Kf.data(), nk, D, scale, s);
    // each row's own keys: the rest −inf (exp gives 0: adds +0 to the sum); unused lanes 0
    int64_t jlo[kRows], jhi[kRows];
    for (int64_t r = 0; r < kRows; r++) {
      if (r >= nr) {
        for (int64_t j = 0; j < nk; j++) s[j * kRows + r] = 0.0f;
        continue;
      }
      const int64_t p = a.pos + (r0 + r) / rep;
      jlo[r] = lo_of(p) - klo;
      jhi[r] = p - klo;
      for (int64_t j = 0; j < jlo[r]; j++) s[j * kRows + r] = -INFINITY;
      for (int64_t j = jhi[r] + 1; j < nk; j++) s[j * kRows + r] = -INFINITY;
    }
    if (std_exp) {
      softmax_scalar<true>(s, nk, nr);
    } else {
#if APL_ATTN_X86
      if (impl.isa == 2)
        softmax_avx512(s, nk);
      else if (impl.isa == 1)
        softmax_avx2(s, nk);
      else
#endif
        softmax_scalar<false>(s, nk, nr);
    }
    float* outs[kRows];
    for (int64_t r = 0; r < nr; r++) {
      const int64_t t = (r0 + r) / rep, h = g * rep + (r0 + r) % rep;
      outs[r] = a.out + (t * H + h) * D;
    }
    for (int64_t r = 0, r1; r < nr; r = r1) {
      for (r1 = r + 1; r1 < nr && jlo[r1] == jlo[r] && jhi[r1] == jhi[r];) r1++;  // rows of one token
#if APL_ATTN_X86
      if (impl.isa == 2) {
        pv_avx512(s + r, Vf.data(), D, jlo[r], jhi[r], outs + r, r1 - r);
        continue;
      }
#endif
#if APL_ATTN_X86
      if (impl.isa == 1) {
        pv_avx2(s + r, Vf.data(), D, jlo[r], jhi[r], outs + r, r1 - r);
        continue;
      }
#endif
      for (int64_t i = r; i < r1; i++) pv_scalar(impl.order, s + i, Vf.data(), D, jlo[i], jhi[i], outs[i]);
    }
  });
}

}  // namespace infer
}  // namespace apl
