// The AVX-512 kernel's activations (included by infer_wide.h inside its namespaces): act_quantize_ref's
// values 16 lanes at a time, and the plane layout of 4-bit rows by packs instead of a byte loop. The same
// float32 operations per value as the reference, so the same bytes:
//  - amax: max_ps(|x|, amax) keeps amax when x is NaN, as the reference's `a > amax` does; max is exact and
//    order-free on the rest. d and inv are the reference's scalar expressions.
//  - x · inv, then roundscale to nearest even (rintf in the default rounding mode), the clamp by the same
//    two comparisons (a NaN passes both, as in the reference), cvttps (the reference's (int) on x86: a NaN
//    gives INT_MIN), the low byte (vpmovdb: the (int8_t) cast) and the int32 sum (wrapping, order-free).
//  - lanes past a group's end are loaded as 0 and their integers zeroed (0 · inv is NaN when inv is inf).
#pragma once

/** act_quantize_group_ref over x[lo, hi). */
inline float act_quantize_group_512(const float* x, int64_t lo, int64_t hi, int8_t* xq, int32_t* sum) {
  __m512 m = _mm512_setzero_ps();
  for (int64_t i = lo; i < hi; i += 16) {
    const __mmask16 k = hi - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hi - i)) - 1);
    m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i)), m);
  }
  const float amax = _mm512_reduce_max_ps(m);
  const float d = amax / 127.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  const __m512 vinv = _mm512_set1_ps(inv), hi127 = _mm512_set1_ps(127.0f), lo127 = _mm512_set1_ps(-127.0f);
  __m512i s = _mm512_setzero_si512();
  for (int64_t i = lo; i < hi; i += 16) {
    const __mmask16 k = hi - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hi - i)) - 1);
    __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vinv);
    t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, hi127, _CMP_GT_OQ), t, hi127);
    t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, lo127, _CMP_LT_OQ), t, lo127);
    const __m512i v = _mm512_maskz_mov_epi32(k, _mm512_cvttps_epi32(t));
    _mm512_mask_cvtepi32_storeu_epi8(xq + i, k, v);
    s = _mm512_add_epi32(s, v);
  }
  *sum = _mm512_reduce_add_epi32(s);
  return d;
}

/** act_quantize_ref. */
inline void act_quantize_512(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx,
                             int32_t* xsum) {
  const int64_t gpr = groups_per_row(cols, group);
  for (int64_t g = 0; g < gpr; g++) {
    const int64_t lo = g * group, hi = lo + group < cols ? lo + group : cols;
    dx[g] = act_quantize_group_512(x, lo, hi, xq, xsum + g);
  }
}

/**
 * wide_permute for 4 bits (two planes): each 128-value chunk's even values, then its odd ones. As 16-bit
 * words, a word's low byte is an even value and its high byte the next odd one; packus of the masked low
 * bytes (then of the high bytes) gives them in order within each 128-bit lane, and one qword permute puts the
 * lanes in order.
 */
inline void wide_permute4(int8_t* xq, int64_t end) {
  const __m512i lo8 = _mm512_set1_epi16(0xff), order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
  for (int64_t c0 = 0; c0 < end; c0 += 128) {
    const __m512i a = _mm512_loadu_si512((const void*)(xq + c0)),
                  b = _mm512_loadu_si512((const void*)(xq + c0 + 64));
    const __m512i ev = _mm512_packus_epi16(_mm512_and_si512(a, lo8), _mm512_and_si512(b, lo8));
    const __m512i od = _mm512_packus_epi16(_mm512_srli_epi16(a, 8), _mm512_srli_epi16(b, 8));
    _mm512_storeu_si512((void*)(xq + c0), _mm512_permutexvar_epi64(order, ev));
    _mm512_storeu_si512((void*)(xq + c0 + 64), _mm512_permutexvar_epi64(order, od));
  }
}
