// The AVX2 + FMA kernels of attention.cc on 256-bit vectors: scores, value tiles and the one-row decode here;
// exp, softmax, silu·mul and conversions are attention_lanes.h's on the traits Lanes256. A private part of
// attention.cc, included by it alone inside its anonymous namespace (after the scalar kernels and constants
// it uses); not a header for other files.
#pragma once

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

/** The 256-bit vector traits of attention_lanes.h. */
struct Lanes256 {
  using F = __m256;
  using M = __m256;  // a compare's all-ones lanes
  static constexpr int W = 8;
  APL_ATTN_AVX2 static F set1(float x) { return _mm256_set1_ps(x); }
  APL_ATTN_AVX2 static F zero() { return _mm256_setzero_ps(); }
  APL_ATTN_AVX2 static F loadu(const float* p) { return _mm256_loadu_ps(p); }
  APL_ATTN_AVX2 static void storeu(float* p, F x) { _mm256_storeu_ps(p, x); }
  APL_ATTN_AVX2 static F add(F a, F b) { return _mm256_add_ps(a, b); }
  APL_ATTN_AVX2 static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  APL_ATTN_AVX2 static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  APL_ATTN_AVX2 static F div(F a, F b) { return _mm256_div_ps(a, b); }
  APL_ATTN_AVX2 static F min(F a, F b) { return _mm256_min_ps(a, b); }
  APL_ATTN_AVX2 static F max(F a, F b) { return _mm256_max_ps(a, b); }
  APL_ATTN_AVX2 static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  APL_ATTN_AVX2 static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  APL_ATTN_AVX2 static F round(F x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  APL_ATTN_AVX2 static F pow2(F n) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  APL_ATTN_AVX2 static F exp_fix(F y, M under, M over) {
    return _mm256_blendv_ps(_mm256_andnot_ps(under, y), _mm256_set1_ps(INFINITY), over);
  }
  APL_ATTN_AVX2 static F cvtph(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
  }
};

namespace avx2 {  // vexp, softmax, silu_mul, convert on 8 lanes
using V = Lanes256;
#define APL_ATTN_LANES APL_ATTN_AVX2
#include "attention_lanes.h"
#undef APL_ATTN_LANES
}  // namespace avx2
constexpr auto softmax_avx2 = &avx2::softmax;  // (two 8-lane halves of the 16 rows)
constexpr auto silu_mul_avx2 = &avx2::silu_mul;
constexpr auto convert_avx2 = &avx2::convert;

/**
 * One query row straight from the cache (no conversion, no block): the blocked form's result for the row bit
 * for bit (same dot, attn_exp, sum and multiply-add order). Decode with one or two rows per KV head (no GQA).
 */
APL_ATTN_AVX2 void row_fma16(const AttnArgs& a, int64_t g, int64_t t, int64_t h, int64_t lo, float scale,
                             float* sc, bool std_exp) {
  const int64_t D = a.head_dim, kvd = a.kv_heads * D, p = a.pos + t;
  const float* qv = a.q + (t * a.heads + h) * D;
  const auto dot16 = kv_ops(true).dot;  // the kv cache's AVX2 dot (this order runs only where it is chosen)
  float mx = -INFINITY;
  for (int64_t j = lo; j <= p; j++) {
    const int64_t at = j * kvd + g * D;
    float s = (a.k16 ? dot16(qv, a.k16 + at, D) : dot_fma16_avx2(qv, a.k32 + at, D)) * scale;
    sc[j - lo] = s;
    if (s > mx) mx = s;
  }
  const int64_t nk = p - lo + 1;
  int64_t j = 0;
  if (!std_exp)
    for (const __m256 m = _mm256_set1_ps(mx); j + 8 <= nk; j += 8)
      _mm256_storeu_ps(sc + j, avx2::vexp(_mm256_sub_ps(_mm256_loadu_ps(sc + j), m)));
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
