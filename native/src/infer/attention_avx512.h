// The AVX-512 kernels of attention.cc: the same on 512-bit vectors, one vector of 16 query rows per key (exp,
// softmax, silu·mul and conversions: attention_lanes.h's on the traits Lanes512). A private part of
// attention.cc, included by it alone inside its anonymous namespace (after the scalar kernels and constants
// it uses); not a header for other files.
#pragma once

// ---------------------------------------------------------------- AVX-512 (kFma16)

/** The 512-bit vector traits of attention_lanes.h. */
struct Lanes512 {
  using F = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  APL_ATTN_AVX512 static F set1(float x) { return _mm512_set1_ps(x); }
  APL_ATTN_AVX512 static F zero() { return _mm512_setzero_ps(); }
  APL_ATTN_AVX512 static F loadu(const float* p) { return _mm512_loadu_ps(p); }
  APL_ATTN_AVX512 static void storeu(float* p, F x) { _mm512_storeu_ps(p, x); }
  APL_ATTN_AVX512 static F add(F a, F b) { return _mm512_add_ps(a, b); }
  APL_ATTN_AVX512 static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  APL_ATTN_AVX512 static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  APL_ATTN_AVX512 static F div(F a, F b) { return _mm512_div_ps(a, b); }
  APL_ATTN_AVX512 static F min(F a, F b) { return _mm512_min_ps(a, b); }
  APL_ATTN_AVX512 static F max(F a, F b) { return _mm512_max_ps(a, b); }
  APL_ATTN_AVX512 static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  APL_ATTN_AVX512 static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  APL_ATTN_AVX512 static F round(F x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  APL_ATTN_AVX512 static F pow2(F n) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  APL_ATTN_AVX512 static F exp_fix(F y, M under, M over) {
    return _mm512_mask_mov_ps(_mm512_maskz_mov_ps((__mmask16)~under, y), over, _mm512_set1_ps(INFINITY));
  }
  APL_ATTN_AVX512 static F cvtph(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
  }
};

namespace avx512 {  // vexp, softmax, silu_mul, convert on 16 lanes
using V = Lanes512;
#define APL_ATTN_LANES APL_ATTN_AVX512
#include "attention_lanes.h"
#undef APL_ATTN_LANES
}  // namespace avx512
constexpr auto softmax_avx512 = &avx512::softmax;
constexpr auto silu_mul_avx512 = &avx512::silu_mul;
constexpr auto convert_avx512 = &avx512::convert;

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

/** pv_cols on the last n ≤ NC blocks of 16 columns from col: NC, NC − 1, …, 1 blocks (0: none). */
template <int NR, int NC>
APL_ATTN_AVX512 inline void pv_rest(const float* P, const float* V, int64_t D, int64_t j0, int64_t j1,
                                    float* const* out, int64_t col, bool first, int64_t n) {
  if constexpr (NC > 0) {
    if (n == NC) return pv_cols<NR, NC>(P, V, D, j0, j1, out, col, first);
    pv_rest<NR, NC - 1>(P, V, D, j0, j1, out, col, first, n);
  }
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
  pv_rest<NR, kMax - 1>(P, V, D, j0, j1, out, c * 16, first, full - c);
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
