// 512-bit VNNI kernels for kquant weights whose groups are whole 4-byte lanes of packed codes (2 and 4 bits,
// G·bits a multiple of 32, at most 4 lanes a group: the layouts convert writes, g24 at 4 bits and g16 at 2),
// included by infer_kquant_x86.h with APL_INFER_VNNI. Bit-exact with the scalar reference (kquant_ref.h).
//
// Layout: a block is 16 groups (16·G values, 64·L bytes of packed codes, L = G·bits/32 lanes a group). Lane
// j·L + i of the block (4 bytes) is gathered into dword j of vector A_i (i < L: vpermt2d over the block's
// 64-byte loads), so dword j of every A_i belongs to group j; plane k of A_i ((A_i >> k·bits) & mask) then
// holds, in byte 4j + m, the value of packed byte 4(jL + i) + m at plane k. The activations of each block are
// stored in that order once per token (vector i·per + k, per = 8/bits), so the L·per vpdpbusd of a block give
// the 16 groups' exact integer sums in the 16 dword lanes with no reduction. Decode reads the packed codes
// directly; prompts unpack a row's planes once for every token of the tile.
//
// s and z of a row are decoded once per row 16 groups at a time: the code bit stream of 8 groups is `width`
// bytes (width = sbits + mbits), so each half block starts on a byte; a vpshufb puts the 3 bytes of group j's
// field in dword j and a variable shift aligns it; d and dmin (f16 → f32 exactly) are per half block (the
// fast decode needs groups-per-super-block % 8 == 0, else the row's s and z come from kq_row_sz). The combine
// runs the reference's float32 operations per group on 16 lanes; group g0 + j (j < 8) and then g0 + 8 + j are
// added to lane j (the reference's lane g % 8, in its order); the last block's lanes past the row are masked.
// The last block's packed codes and code bytes may lie past the row (or the buffer): they are read from a
// zero-padded copy. The row loops, the s and z decode and the combine are infer_kquant_wide_rows.h's, on the
// traits Wide512 below.
#pragma once

#include "infer_kquant_wide_rows.h"

template <int BITS, int L>
struct KqWide {
  static constexpr int PER = 8 / BITS;
  static constexpr int NV = L * PER;  // 64-byte vectors per block

  /** Lanes j with j·L + i ≥ 32 (taken from the third and fourth loads). */
  static constexpr __mmask16 high(int i) {
    __mmask16 k = 0;
    for (int j = 0; j < 16; j++)
      if (j * L + i >= 32) k = (__mmask16)(k | (1u << j));
    return k;
  }
  static inline __m512i index(int i) {
    return _mm512_set_epi32(15 * L + i, 14 * L + i, 13 * L + i, 12 * L + i, 11 * L + i, 10 * L + i, 9 * L + i,
                            8 * L + i, 7 * L + i, 6 * L + i, 5 * L + i, 4 * L + i, 3 * L + i, 2 * L + i,
                            L + i, i);
  }

  /** A_i of the block at p (64·L packed bytes). */
  APL_KQW_INLINE static void gather(const uint8_t* p, __m512i* a) {
    __m512i z[L];
    for (int s = 0; s < L; s++) z[s] = _mm512_loadu_si512((const void*)(p + 64 * s));
    if (L == 1) {
      a[0] = z[0];
      return;
    }
    for (int i = 0; i < L; i++) {
      const __m512i ix = index(i);
      const __m512i lo = _mm512_permutex2var_epi32(z[0], ix, z[L > 1 ? 1 : 0]);
      if (L == 2)
        a[i] = lo;
      else if (L == 3)
        a[i] = _mm512_mask_permutexvar_epi32(lo, high(i), ix, z[L > 2 ? 2 : 0]);
      else
        a[i] =
            _mm512_mask_blend_epi32(high(i), lo, _mm512_permutex2var_epi32(z[L > 2 ? 2 : 0], ix, z[L - 1]));
    }
  }

  static inline __m512i plane(__m512i v, int k) {
    const __m512i mask = _mm512_set1_epi8((char)((1 << BITS) - 1));
    return _mm512_and_si512(k ? _mm512_srli_epi16(v, (unsigned)(k * BITS)) : v, mask);
  }

  /**
   * The 16 groups' integer sums of the packed block at p with one token's block of activations x. 4 bits: the
   * high nibbles are multiplied in place (16·q, at most 240) into their own sum, divided by 16 at the end
   * (exact).
   */
  APL_KQW_INLINE static __m512i isum_packed(const uint8_t* p, const int8_t* x) {
    __m512i a[L];
    gather(p, a);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    if (BITS == 4) {
      const __m512i lo = _mm512_set1_epi8(0x0f), hi = _mm512_set1_epi8((char)0xf0);
      for (int i = 0; i < L; i++) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(a[i], lo),
                                 _mm512_load_si512((const void*)(x + 128 * i)));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(a[i], hi),
                                 _mm512_load_si512((const void*)(x + 128 * i + 64)));
      }
      return _mm512_add_epi32(s0, _mm512_srai_epi32(s1, 4));
    }
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) {
        const int v = i * PER + k;
        const __m512i xv = _mm512_load_si512((const void*)(x + 64 * v));
        if (v & 1)
          s1 = _mm512_dpbusd_epi32(s1, plane(a[i], k), xv);
        else
          s0 = _mm512_dpbusd_epi32(s0, plane(a[i], k), xv);
      }
    return NV > 1 ? _mm512_add_epi32(s0, s1) : s0;
  }

  /** The block's planes, NV × 64 bytes (the activations' layout). */
  static inline void unpack(const uint8_t* p, uint8_t* u) {
    __m512i a[L];
    gather(p, a);
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) _mm512_store_si512((void*)(u + 64 * (i * PER + k)), plane(a[i], k));
  }

  static inline __m512i isum_unpacked(const uint8_t* u, const int8_t* x) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    for (int v = 0; v < NV; v++) {
      const __m512i q = _mm512_load_si512((const void*)(u + 64 * v));
      const __m512i xv = _mm512_load_si512((const void*)(x + 64 * v));
      if (v & 1)
        s1 = _mm512_dpbusd_epi32(s1, q, xv);
      else
        s0 = _mm512_dpbusd_epi32(s0, q, xv);
    }
    return NV > 1 ? _mm512_add_epi32(s0, s1) : s0;
  }
};

/** Two floats in the two halves of a vector. */
inline __m512 halves(float lo, float hi) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(lo)), _mm256_castps_pd(_mm256_set1_ps(hi)), 1));
}

/** The 512-bit lane width of infer_kquant_wide_rows.h: blocks of 16 groups. */
struct Wide512 {
  static constexpr int B = 16, VB = 64;
  static constexpr bool kPrefetch = true;
  using I = __m512i;
  using F = __m512;
  template <int BITS, int L>
  using Kern = KqWide<BITS, L>;

  static inline I load_i(const void* p) { return _mm512_load_si512(p); }
  static inline I set1_i(int v) { return _mm512_set1_epi32(v); }
  static inline I and_i(I a, I b) { return _mm512_and_si512(a, b); }
  static inline I srl(I a, __m128i n) { return _mm512_srl_epi32(a, n); }
  static inline F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static inline F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static inline F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static inline F loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(float* p, F v) { _mm512_storeu_ps(p, v); }

  static inline void f16_to_f32(const uint8_t* d, const uint8_t* m, int64_t n, float* dv, float* mv) {
    for (int64_t b = 0; b < n; b += 16) {
      const __mmask16 k = (__mmask16)(n - b >= 16 ? 0xffff : (1u << (n - b)) - 1);
      _mm512_storeu_ps(dv + b, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, d + b * 2)));
      _mm512_storeu_ps(mv + b, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, m + b * 2)));
    }
  }

  /** Block b's code fields: two runs of 8 groups (`width` bytes each), 128-bit lanes 0-1 and 2-3. */
  APL_KQW_INLINE static I fields(const WideCodes<Wide512>& c, const RowCodes& rc, int64_t b) {
    const int64_t off = b * 2 * rc.width;
    if (rc.width == 8 && off + 16 <= rc.avail)  // one byte per group (the 2-bit preset's 4 + 4)
      return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(rc.cr + off)));
    if (off + rc.width + 16 <= rc.avail) return fields_at(c.shuf, c.shift, rc.cr + off, rc.width);
    alignas(16) uint8_t tmp[48] = {};
    if (rc.cb > off) std::memcpy(tmp, rc.cr + off, (size_t)std::min<int64_t>(rc.cb - off, 48));
    return fields_at(c.shuf, c.shift, tmp, rc.width);
  }
  /** The fields of the 16 groups whose code bytes start at p (width + 16 bytes readable from p). */
  APL_KQW_INLINE static I fields_at(I shuf, I shift, const uint8_t* p, int width) {
    const __m128i lo = _mm_loadu_si128((const __m128i*)p), hi = _mm_loadu_si128((const __m128i*)(p + width));
    const __m512i bytes = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(lo), 0xff00, hi);
    return _mm512_srlv_epi32(_mm512_shuffle_epi8(bytes, shuf), shift);
  }
  /**
   * s and z for 5-bit scale codes (the 4-bit preset's 5 + 6) from one super-block's tables: s by vpermt2ps
   * (it reads the low 5 bits of each field, the scale code) in the 32 entries f32(d·k), k < 32, i.e. the
   * reference's d·(float)sc exactly; z = dmin·(float)mc as wide_block_sz.
   */
  /** One super-block's tables (48 floats at t): f32(d·k) for k < 32, then dmin 16 times. */
  static inline void lut5_store(float d, float m, float* t) {
    const F dv = _mm512_set1_ps(d);
    _mm512_storeu_ps(t,
                     _mm512_mul_ps(dv, _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)));
    _mm512_storeu_ps(t + 16, _mm512_mul_ps(dv, _mm512_setr_ps(16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                                                              28, 29, 30, 31)));
    _mm512_storeu_ps(t + 32, _mm512_set1_ps(m));
  }
  APL_KQW_INLINE static void sz_lut5(const float* t, I v, I mmask, F& s, F& z) {
    s = _mm512_permutex2var_ps(_mm512_loadu_ps(t), v, _mm512_loadu_ps(t + 16));
    z = _mm512_mul_ps(_mm512_loadu_ps(t + 32),
                      _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(v, 5), mmask)));
  }
  /**
   * s and z of block b for 4-bit scale and min codes with one super-block per block (c.uniform; sbits = mbits
   * = 4): table lookups (vpermps: the low 4 bits of each field) in tables of f32(d·k) and f32(dmin·k), k <
   * 16: the reference's d·(float)sc and dmin·(float)mc exactly.
   */
  static constexpr bool kLut = true;
  APL_KQW_INLINE static void block_sz_lut(const WideCodes<Wide512>& c, const RowCodes& rc, int64_t b, F& s,
                                          F& z) {
    const I v = fields(c, rc, b);
    const int32_t a = c.super[(size_t)(2 * b)];
    const F k = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    s = _mm512_permutexvar_ps(v, _mm512_mul_ps(_mm512_set1_ps(rc.dv[a]), k));
    z = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), _mm512_mul_ps(_mm512_set1_ps(rc.mv[a]), k));
  }
  /** d and dmin per half block (one super-block per block when c.uniform). */
  static inline void supers(const WideCodes<Wide512>& c, const RowCodes& rc, int64_t b, F& d, F& m) {
    const int32_t a = c.super[(size_t)(2 * b)];
    if (c.uniform) {
      d = _mm512_set1_ps(rc.dv[a]);
      m = _mm512_set1_ps(rc.mv[a]);
    } else {
      const int32_t e = c.super[(size_t)(2 * b + 1)];
      d = halves(rc.dv[a], rc.dv[e]);
      m = halves(rc.mv[a], rc.mv[e]);
    }
  }

  /** The last block's lanes past the row: masked loads and adds. */
  struct Edge {
    __mmask16 klast;
  };
  static inline Edge edge(int64_t gpr) {
    return Edge{(__mmask16)(gpr % 16 ? (1u << (gpr % 16)) - 1 : 0xffff)};
  }
  static inline void edge_token(Edge&, const float*, const int32_t*, int64_t, int64_t) {}
  struct At {
    const float* dx;
    const int32_t* xs;
    __mmask16 k;
  };
  static inline At at(const Edge& e, const float* dx, const int32_t* xs, int64_t b, int64_t nblk) {
    return At{dx + 16 * b, xs + 16 * b, b + 1 < nblk ? (__mmask16)0xffff : e.klast};
  }
  static inline F load_dx(const At& a) { return _mm512_maskz_loadu_ps(a.k, a.dx); }
  static inline I load_xs(const At& a) { return _mm512_maskz_loadu_epi32(a.k, a.xs); }
  /** fold for a block with all 16 groups inside the row. */
  static inline __m256 fold_full(__m256 acc, F term) {
    acc = _mm256_add_ps(acc, _mm512_castps512_ps256(term));
    return _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(term), 1)));
  }
  /** Group g0 + j (j < 8) and then g0 + 8 + j added to lane j (the reference's lane g % 8, in its order). */
  static inline __m256 fold(__m256 acc, F term, const At& a, const Edge&) {
    acc = _mm256_mask_add_ps(acc, (__mmask8)a.k, acc, _mm512_castps512_ps256(term));
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(term), 1));
    return _mm256_mask_add_ps(acc, (__mmask8)(a.k >> 8), acc, hi);
  }
};
