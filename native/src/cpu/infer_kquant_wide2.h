// 256-bit AVX2 kernels for kquant weights whose groups are whole 4-byte lanes of packed codes (2 and 4 bits,
// G·bits a multiple of 32, at most 4 lanes a group: the presets convert writes, g24 at 4 bits and g16 at 2),
// included by infer_kquant_x86.h without APL_INFER_VNNI: the approach of infer_kquant_wide.h on 256-bit
// vectors without VNNI. Bit-exact with the scalar reference (kquant_ref.h).
//
// Layout: a block is 8 groups (8·G values, 32·L bytes of packed codes, L = G·bits/32 lanes a group). Lane j·L
// + i of the block (4 bytes) is gathered (vpermd + blends over the block's 32-byte loads) into dword j of
// vector A_i (i < L), so dword j of every A_i belongs to group j; plane k of A_i ((A_i >> k·bits) & mask)
// holds, in byte 4j + m, the value of packed byte 4(jL + i) + m at plane k. The activations of each block are
// stored in that order once per token (vector i·per + k, per = 8/bits). vpmaddubsw multiplies a plane by its
// activations into int16 pairs (at most 2·15·127 = 3810 in magnitude at 4 bits, 762 at 2), the block's L·per
// planes are summed in int16 (at most 8 · 3810 = 30480 or 16 · 762: no overflow) and one vpmaddwd with ones
// gives the 8 groups' exact integer sums in the 8 dword lanes, the reference's lane (g0 + j) % 8 = j. Decode
// reads the packed codes directly, two rows side by side; prompts unpack a row's planes once for every token
// of the tile.
//
// s and z of 8 groups (the code bit stream of 8 groups is `width` bytes, width = sbits + mbits): a vpshufb
// puts the 3 bytes of group j's field in dword j and a variable shift aligns it; d and dmin (f16 → f32,
// exact) are those of the block's super-block (the fast decode needs groups-per-super-block % 8 == 0, else
// the row's s and z come from kq_row_sz). The combine runs the reference's float32 operations per group on 8
// lanes; the last block's lanes past the row keep their value (blend). The last block's packed codes and code
// bytes may lie past the row (or the buffer): they are read from a zero-padded copy. The row loops, the s and
// z decode and the combine are infer_kquant_wide_rows.h's, on the traits Wide256 below.
#pragma once

#include "infer_kquant_wide_rows.h"

template <int BITS, int L>
struct KqWide2 {
  static constexpr int PER = 8 / BITS;
  static constexpr int NV = L * PER;  // 32-byte vectors per block

  static constexpr int ix(int i, int j) { return (j * L + i) % 8; }
  /** Lanes j of A_i taken from load s. */
  static constexpr int from(int i, int s) {
    int m = 0;
    for (int j = 0; j < 8; j++)
      if ((j * L + i) / 8 == s) m |= 1 << j;
    return m;
  }
  template <int I, int S>
  static inline __m256i pick(const __m256i* z, __m256i v) {
    if constexpr (S >= L) {
      return v;
    } else {
      const __m256i idx =
          _mm256_setr_epi32(ix(I, 0), ix(I, 1), ix(I, 2), ix(I, 3), ix(I, 4), ix(I, 5), ix(I, 6), ix(I, 7));
      if constexpr (from(I, S) == 0) {
        return pick<I, S + 1>(z, v);
      } else if constexpr (S == 0) {
        return pick<I, S + 1>(z, _mm256_permutevar8x32_epi32(z[0], idx));
      } else {
        return pick<I, S + 1>(z, _mm256_blend_epi32(v, _mm256_permutevar8x32_epi32(z[S], idx), from(I, S)));
      }
    }
  }
  template <int I>
  static inline void gather_from(const __m256i* z, __m256i* a) {
    if constexpr (I < L) {
      a[I] = pick<I, 0>(z, _mm256_setzero_si256());
      gather_from<I + 1>(z, a);
    }
  }

  /** A_i of the block at p (32·L packed bytes). */
  APL_KQW_INLINE static void gather(const uint8_t* p, __m256i* a) {
    __m256i z[L];
    for (int s = 0; s < L; s++) z[s] = _mm256_loadu_si256((const __m256i*)(p + 32 * s));
    if (L == 1) {
      a[0] = z[0];
      return;
    }
    gather_from<0>(z, a);
  }

  static inline __m256i plane(__m256i v, int k) {
    const __m256i mask = _mm256_set1_epi8((char)((1 << BITS) - 1));
    return _mm256_and_si256(k ? _mm256_srli_epi16(v, k * BITS) : v, mask);
  }

  /** The 8 groups' integer sums of the packed block at p with one token's block of activations x. */
  APL_KQW_INLINE static __m256i isum_packed(const uint8_t* p, const int8_t* x) {
    __m256i a[L];
    gather(p, a);
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) {
        const __m256i xv = _mm256_load_si256((const __m256i*)(x + 32 * (i * PER + k)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(plane(a[i], k), xv));
      }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }

  /** The block's planes, NV × 32 bytes (the activations' layout). */
  static inline void unpack(const uint8_t* p, uint8_t* u) {
    __m256i a[L];
    gather(p, a);
    for (int i = 0; i < L; i++)
      for (int k = 0; k < PER; k++) _mm256_store_si256((__m256i*)(u + 32 * (i * PER + k)), plane(a[i], k));
  }

  static inline __m256i isum_unpacked(const uint8_t* u, const int8_t* x) {
    __m256i s = _mm256_setzero_si256();
    for (int v = 0; v < NV; v++) {
      const __m256i q = _mm256_load_si256((const __m256i*)(u + 32 * v));
      const __m256i xv = _mm256_load_si256((const __m256i*)(x + 32 * v));
      s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q, xv));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
  }
};

/** The 256-bit lane width of infer_kquant_wide_rows.h: blocks of 8 groups. */
struct Wide256 {
  static constexpr int B = 8, VB = 32;
  static constexpr bool kPrefetch = false;
  static constexpr bool kLut = false;  // no table lookup (wide_rows_dec)
  using I = __m256i;
  using F = __m256;
  template <int BITS, int L>
  using Kern = KqWide2<BITS, L>;

  static inline I load_i(const void* p) { return _mm256_load_si256((const __m256i*)p); }
  static inline I set1_i(int v) { return _mm256_set1_epi32(v); }
  static inline I and_i(I a, I b) { return _mm256_and_si256(a, b); }
  static inline I srl(I a, __m128i n) { return _mm256_srl_epi32(a, n); }
  static inline F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static inline F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static inline F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static inline F loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void storeu(float* p, F v) { _mm256_storeu_ps(p, v); }

  static inline void f16_to_f32(const uint8_t* d, const uint8_t* m, int64_t n, float* dv, float* mv) {
    int64_t b = 0;
    for (; b + 8 <= n; b += 8) {
      _mm256_storeu_ps(dv + b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(d + b * 2))));
      _mm256_storeu_ps(mv + b, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(m + b * 2))));
    }
    if (b < n) {
      alignas(16) uint16_t td[8] = {}, tm[8] = {};
      std::memcpy(td, d + b * 2, (size_t)(n - b) * 2);
      std::memcpy(tm, m + b * 2, (size_t)(n - b) * 2);
      _mm256_storeu_ps(dv + b, _mm256_cvtph_ps(_mm_load_si128((const __m128i*)td)));
      _mm256_storeu_ps(mv + b, _mm256_cvtph_ps(_mm_load_si128((const __m128i*)tm)));
    }
  }

  /** Block b's code fields: one run of 8 groups (`width` bytes). */
  APL_KQW_INLINE static I fields(const WideCodes<Wide256>& c, const RowCodes& rc, int64_t b) {
    const int64_t off = b * rc.width;
    if (rc.width == 8 && off + 8 <= rc.avail)  // one byte per group (the 2-bit preset's 4 + 4)
      return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(rc.cr + off)));
    __m128i lo;
    if (off + 16 <= rc.avail) {
      lo = _mm_loadu_si128((const __m128i*)(rc.cr + off));
    } else {
      alignas(16) uint8_t tmp[16] = {};
      if (rc.cb > off) std::memcpy(tmp, rc.cr + off, (size_t)std::min<int64_t>(rc.cb - off, 16));
      lo = _mm_load_si128((const __m128i*)tmp);
    }
    const __m256i bytes = _mm256_broadcastsi128_si256(lo);
    // vpshufb is per 128-bit half: the table's bytes index the broadcast copy of the same 16 bytes
    return _mm256_srlv_epi32(_mm256_shuffle_epi8(bytes, c.shuf), c.shift);
  }
  /** d and dmin of the block's super-block. */
  static inline void supers(const WideCodes<Wide256>& c, const RowCodes& rc, int64_t b, F& d, F& m) {
    const int32_t a = c.super[(size_t)b];
    d = _mm256_set1_ps(rc.dv[a]);
    m = _mm256_set1_ps(rc.mv[a]);
  }

  /** The last block's lanes past the row: dx and xsum read from a padded copy, the sum blended. */
  struct Edge {
    __m256 keep;
    int rem;
    alignas(32) float dx[8];
    alignas(32) int32_t xs[8];
  };
  static inline Edge edge(int64_t gpr) {
    Edge e;
    e.rem = (int)(gpr % 8);
    alignas(32) int32_t km[8];
    for (int j = 0; j < 8; j++) km[j] = !e.rem || j < e.rem ? -1 : 0;
    e.keep = _mm256_castsi256_ps(_mm256_load_si256((const __m256i*)km));
    return e;
  }
  /** The last block's dx and xsum past the row (the row's arrays end at gpr). */
  static inline void edge_token(Edge& e, const float* dx, const int32_t* xs, int64_t gpr, int64_t nblk) {
    for (int j = 0; j < 8; j++) {
      const int64_t g = (nblk - 1) * 8 + j;
      e.dx[j] = g < gpr ? dx[g] : 0.0f;
      e.xs[j] = g < gpr ? xs[g] : 0;
    }
  }
  struct At {
    const float* dx;
    const int32_t* xs;
    bool all;
  };
  static inline At at(const Edge& e, const float* dx, const int32_t* xs, int64_t b, int64_t nblk) {
    const bool last = b + 1 == nblk;
    return At{last ? e.dx : dx + 8 * b, last ? e.xs : xs + 8 * b, !last || !e.rem};
  }
  static inline F load_dx(const At& a) { return _mm256_loadu_ps(a.dx); }
  static inline I load_xs(const At& a) { return _mm256_loadu_si256((const __m256i*)a.xs); }
  /** fold for a block with all 8 groups inside the row. */
  static inline __m256 fold_full(__m256 acc, F term) { return _mm256_add_ps(acc, term); }
  /** Group g0 + j added to lane j, the reference's lane (g0 + j) % 8. */
  static inline __m256 fold(__m256 acc, F term, const At& a, const Edge& e) {
    const __m256 sum = _mm256_add_ps(acc, term);
    return a.all ? sum : _mm256_blendv_ps(acc, sum, e.keep);
  }
};
