// The AVX-512 wide decode (one token) on groupwise rows, one row at a time (included by infer_wide.h): each
// thread's rows are one sequential stream of codes, and the per-group float work of two blocks of the same
// row runs on 16 lanes. Wide<BITS, G>::block gives a block's 8 group sums two lanes each; pairsum of blocks b
// and b + 1 gives groups 8b … 8b + 15 one lane each, in order, so the row's scales, zero points, dx and xsum
// are plain contiguous loads (no per-row-pair interleave, no dup of the token's dx and xsum). The reference's
// float order is kept: lane j of the 8-lane accumulator takes group g with g % 8 = j, groups in ascending
// order (block b's 8 terms, then block b + 1's), so the results are bit-identical to the scalar reference.
#pragma once

/** 16 (8 with HALF) float32 parameters of one row from index i: f16 or f32. */
template <bool HALF>
APL_WIDE_INLINE __m512 params_row(const uint8_t* base, int64_t i, bool f16) {
  if (HALF)
    return _mm512_castps256_ps512(f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(base + i * 2)))
                                      : _mm256_loadu_ps((const float*)base + i));
  return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(base + i * 2)))
             : _mm512_loadu_ps((const float*)base + i);
}

/**
 * The float combine of 16 groups [g, g + 16) of one row (8 with HALF: the row's last, odd block), s their
 * exact integer sums one lane each: d = s·dx, t = isum − z·xsum, acc[j] += d·t for the groups with g % 8 = j,
 * in ascending order (combine_group on 16 lanes).
 */
template <bool HALF>
APL_WIDE_INLINE __m256 wide_dec_combine(__m256 acc, __m512i s, const Linear& w, int64_t pi, const float* dx,
                                        const int32_t* xs, int64_t g) {
  const __m512 sv = params_row<HALF>(w.scales, pi + g, w.f16), zv = params_row<HALF>(w.zeros, pi + g, w.f16);
  const __m512 dxv = HALF ? _mm512_castps256_ps512(_mm256_loadu_ps(dx + g)) : _mm512_loadu_ps(dx + g);
  const __m512i xsv = HALF ? _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(xs + g)))
                           : _mm512_loadu_si512(xs + g);
  const __m512 d = _mm512_mul_ps(sv, dxv);
  const __m512 bz = _mm512_mul_ps(zv, _mm512_cvtepi32_ps(xsv));
  const __m512 p = _mm512_mul_ps(d, _mm512_sub_ps(_mm512_cvtepi32_ps(s), bz));
  acc = _mm256_add_ps(acc, _mm512_castps512_ps256(p));
  if (!HALF) acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1)));
  return acc;
}

/**
 * APL_WIDE_DEC=0 (read once; benches flip it per call) keeps the decode before, a row pair in memory order
 * (wide_rows_seq), for A/B runs; the default reads one row at a time (wide_rows_dec).
 */
inline bool& wide_dec() {
  static bool on = env_not_0("APL_WIDE_DEC");
  return on;
}

/**
 * Decode (one token t) on rows [r0, r1), one row at a time, its blocks in order, two blocks per combine. The
 * codes a prefetch distance ahead in the stream (wide_prefetch_distance of the row's bytes, ≈ 6 KB) are
 * prefetched in wide_pf_mode.
 */
template <int BITS, int G, bool GF>
inline void wide_rows_dec(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t, float* y,
                          int64_t ystride) {
  using W = Wide<BITS, G>;
  constexpr int CPG = G / 32;
  const WideDec<BITS, G> c(w, act, t);
  const int64_t nblk = c.nblk, ublk = c.ublk;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* q = w.q + r * c.sh.rb;
    const int64_t pi = r * c.gpr;
    __m256 acc = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nblk; b += 2) {
      wide_prefetch_block<2 * W::BLOCK_BYTES>(q + c.pfd + b * W::BLOCK_BYTES, c.pfm);
      const __m512i s0 = W::template block_dec<GF>(q + b * W::BLOCK_BYTES, c.x0 + b * ublk);
      const __m512i s1 = W::template block_dec<GF>(q + (b + 1) * W::BLOCK_BYTES, c.x0 + (b + 1) * ublk);
      acc = wide_dec_combine<false>(acc, W::natural2(s0, s1), w, pi, c.dx, c.xs, b * 8);
    }
    if (b < nblk) {
      wide_prefetch_block<W::BLOCK_BYTES>(q + c.pfd + b * W::BLOCK_BYTES, c.pfm);
      const __m512i s0 = W::template block_dec<GF>(q + b * W::BLOCK_BYTES, c.x0 + b * ublk);
      acc = wide_dec_combine<true>(acc, W::natural2(s0, s0), w, pi, c.dx, c.xs, b * 8);
    }
    alignas(32) float l[8];
    _mm256_store_ps(l, acc);
    if (nblk * 8 < c.gpr) tail_groups<BITS, true, false, CPG>(w, c.sh, r, nullptr, act, t, nblk * 8, l);
    y[t * ystride + r] = reduce8(l);
  }
}
