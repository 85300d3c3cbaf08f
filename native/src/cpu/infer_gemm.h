// The prompt (matrix × matrix) path of the AVX-512 VNNI kernel for packed rows (included by infer_avx512.cc):
// one vector lane per (row, token), so no horizontal reduction.
//
// A block of 16 rows is unpacked once per block of tokens into a row-interleaved buffer: 64 bytes per 4
// values of a group (4 codes of row 0, 4 of row 1, …, 4 of row 15), i.e. the transpose of the 16 unpacked
// rows seen as 32-bit words. One vpdpbusd multiplies those 64 codes by 4 activation bytes of one token
// broadcast to every lane, so a lane accumulates the exact integer sum of its row's group. Activations stay
// in natural order (quantized by gemm_quantize_act, bit-exact with act_quantize_ref). The float combine is
// the reference's (combine_group: term = (s·dx)·((float)isum − z·(float)xsum) added to lane g % 8, then
// reduce8), done for 16 rows at once: groups are visited lane by lane (g = k, k + 8, …), so only one float
// accumulator per token is live, and the 8 lanes are reduced vertically in reduce8's order. Results are
// bit-exact with the scalar reference. Groups must be a multiple of 4 values (a group's words then never
// straddle two groups; the last group of a row may be shorter: its missing codes unpack as zeros).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../infer/ref.h"

namespace apl {
namespace infer {
namespace gemm512 {
namespace {  // internal linkage: see ref.h

constexpr int kRows = 16;      // rows per block (one 512-bit lane each)
constexpr int kTile = 8;       // tokens per micro-kernel call (integer + float accumulators in registers)
constexpr int kMinTokens = 8;  // below this many tokens the dot-product path (qrows) is as fast

inline bool fits(const Linear& w, int64_t n) { return w.kind == 0 && n >= kMinTokens && w.group % 4 == 0; }

/** Natural-order activations, bit-exact with act_quantize_ref (same float operations per value). */
inline void quantize_act(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx, int32_t* xsum) {
  const int64_t gpr = groups_per_row(cols, group);
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  for (int64_t g = 0; g < gpr; g++) {
    const int64_t c0 = g * group, c1 = std::min(cols, c0 + group);
    __m512 m = _mm512_setzero_ps();
    for (int64_t c = c0; c < c1; c += 16) {
      const __mmask16 k = c + 16 <= c1 ? (__mmask16)0xffff : (__mmask16)((1u << (c1 - c)) - 1);
      // max(|x|, m) keeps m where x is NaN, as the reference's `if (a > amax)` does
      m = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + c)), m);
    }
    const float amax = _mm512_reduce_max_ps(m);
    dx[g] = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    const __m512 vinv = _mm512_set1_ps(inv);
    __m512i s = _mm512_setzero_si512();
    for (int64_t c = c0; c < c1; c += 16) {
      const __mmask16 k = c + 16 <= c1 ? (__mmask16)0xffff : (__mmask16)((1u << (c1 - c)) - 1);
      __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), vinv);
      t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      t = _mm512_max_ps(lo, _mm512_min_ps(hi, t));  // NaN stays NaN, as in the reference
      const __m512i v = _mm512_maskz_mov_epi32(k, _mm512_cvttps_epi32(t));
      _mm_mask_storeu_epi8(xq + c, k, _mm512_cvtepi32_epi8(v));
      s = _mm512_add_epi32(s, v);
    }
    xsum[g] = _mm512_reduce_add_epi32(s);
  }
}

/** 64 values [c, c + 64) of a packed row in natural order (zeros past cols). */
template <int BITS>
inline __m512i row64(const uint8_t* qrow, int64_t c, int64_t cols) {
  if (c + 64 <= cols) {
    if (BITS == 8) return _mm512_loadu_si512((const void*)(qrow + c));
    if (BITS == 4) {  // byte b → values 2b (low nibble), 2b + 1 (high nibble)
      const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(qrow + c / 2)));
      return _mm512_and_si512(_mm512_or_si512(w, _mm512_slli_epi16(w, 4)), _mm512_set1_epi16(0x0f0f));
    }
    if (BITS == 2) {  // byte b → values 4b .. 4b + 3
      const __m512i w = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(qrow + c / 4)));
      const __m512i v = _mm512_or_si512(_mm512_or_si512(w, _mm512_slli_epi32(w, 6)),
                                        _mm512_or_si512(_mm512_slli_epi32(w, 12), _mm512_slli_epi32(w, 18)));
      return _mm512_and_si512(v, _mm512_set1_epi32(0x03030303));
    }
    if (BITS == 1) {  // bit c of the little-endian word → value c
      uint64_t u;
      memcpy(&u, qrow + c / 8, 8);
      return _mm512_maskz_set1_epi8((__mmask64)u, 1);
    }
  }
  alignas(64) uint8_t tmp[64] = {0};
  for (int64_t i = 0; i < 64 && c + i < cols; i++) tmp[i] = (uint8_t)packed_at(qrow, c + i, BITS);
  return _mm512_load_si512((const void*)tmp);
}

/** In place: r[i] word j ↔ r[j] word i (a 16 × 16 transpose of 32-bit words). */
inline void transpose16(__m512i* r) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4q + m], lane L: words 4L + m of rows 4q .. 4q + 3
  for (int q = 0; q < 4; q++) {
    u[4 * q] = _mm512_unpacklo_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = _mm512_unpackhi_epi64(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = _mm512_unpacklo_epi64(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = _mm512_unpackhi_epi64(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int m = 0; m < 4; m++) {
    const __m512i a = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88),
                  b = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xdd);
    const __m512i c = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88),
                  d = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xdd);
    r[m] = _mm512_shuffle_i32x4(a, c, 0x88);       // words 0..3 → lane 0
    r[8 + m] = _mm512_shuffle_i32x4(a, c, 0xdd);   // lane 2
    r[4 + m] = _mm512_shuffle_i32x4(b, d, 0x88);   // lane 1
    r[12 + m] = _mm512_shuffle_i32x4(b, d, 0xdd);  // lane 3
  }
}

/** A block of rows [r0, r0 + 16) unpacked: codes (word k of every row side by side), scales, zero points. */
struct Block {
  std::vector<uint8_t> codes;  // (cols/4 rounded up to 16) × 64 bytes
  std::vector<float> s, z;     // gpr × 16
};

template <int BITS>
inline void unpack(const Linear& w, int64_t r0, int64_t r1, Block& b) {
  const int64_t words = (w.cols + 3) / 4, tiles = (words + 15) / 16, gpr = w.gpr(), rb = w.row_bytes();
  if ((int64_t)b.codes.size() < tiles * 1024 + 64) b.codes.resize((size_t)(tiles * 1024 + 64));
  if ((int64_t)b.s.size() < gpr * kRows) {
    b.s.resize((size_t)(gpr * kRows));
    b.z.resize((size_t)(gpr * kRows));
  }
  const int nr = (int)(r1 - r0);
  for (int64_t tl = 0; tl < tiles; tl++) {
    __m512i v[16];
    for (int i = 0; i < 16; i++)
      v[i] = i < nr ? row64<BITS>(w.q + (r0 + i) * rb, tl * 64, w.cols) : _mm512_setzero_si512();
    transpose16(v);
    for (int i = 0; i < 16; i++) _mm512_storeu_si512((void*)(b.codes.data() + (tl * 16 + i) * 64), v[i]);
  }
  // scales and zero points: 16 groups × 16 rows at a time, transposed the same way (float32 words)
  for (int p = 0; p < 2; p++) {
    const uint8_t* src = p ? w.zeros : w.scales;
    float* dst = p ? b.z.data() : b.s.data();
    for (int64_t g0 = 0; g0 < gpr; g0 += 16) {
      const int m = (int)std::min<int64_t>(16, gpr - g0);
      const __mmask16 k = (__mmask16)((1u << m) - 1);
      __m512i v[16];
      for (int i = 0; i < 16; i++) {
        const int64_t at = (r0 + i) * gpr + g0;
        if (i >= nr)
          v[i] = _mm512_setzero_si512();
        else if (w.f16)
          v[i] = _mm512_castps_si512(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, src + at * 2)));
        else
          v[i] = _mm512_maskz_loadu_epi32(k, src + at * 4);
      }
      transpose16(v);
      for (int j = 0; j < m; j++) _mm512_storeu_si512((void*)(dst + (g0 + j) * kRows), v[j]);
    }
  }
}

/** is[t] += the integer dots of nw words of codes (wq) with token t's activations from x[t] + c. */
template <int NT, int NW>
inline void group_dots(const uint8_t* wq, const int8_t* const* x, int64_t c, int64_t nw, __m512i* is) {
  const int64_t n = NW ? NW : nw;
#pragma GCC unroll 32
  for (int64_t j = 0; j < n; j++) {
    const __m512i q = _mm512_loadu_si512((const void*)(wq + j * 64));
    for (int t = 0; t < NT; t++) {
      int32_t xv;
      memcpy(&xv, x[t] + c + 4 * j, 4);
      is[t] = _mm512_dpbusd_epi32(is[t], q, _mm512_set1_epi32(xv));
    }
  }
}

/** y[(t0 + t)·ystride + r0 + i] = reduce8 of lane[0..7][t] (vertically, in reduce8's order) for the 16 rows
 * (rows past r1 not written). */
template <int NT>
inline void store_lanes(const __m512 (*lane)[NT], int64_t r0, int64_t r1, int64_t t0, float* y,
                        int64_t ystride) {
  const __mmask16 keep = r1 - r0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (r1 - r0)) - 1);
  for (int t = 0; t < NT; t++) {
    // reduce8: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
    const __m512 e =
        _mm512_add_ps(_mm512_add_ps(lane[0][t], lane[4][t]), _mm512_add_ps(lane[2][t], lane[6][t]));
    const __m512 o =
        _mm512_add_ps(_mm512_add_ps(lane[1][t], lane[5][t]), _mm512_add_ps(lane[3][t], lane[7][t]));
    _mm512_mask_storeu_ps(y + (t0 + t) * ystride + r0, keep, _mm512_add_ps(e, o));
  }
}

/**
 * The scheduling tail of a tile, shared with the kquant GEMM (infer_kquant_gemm.h): the 16 rows of a block
 * (codes in the row-interleaved layout) × NT tokens (activations x[t]). Groups are visited lane class by lane
 * class (g = k, k + 8, …: the reference's lane g % 8); for each, the NT tokens' exact integer sums `is` of
 * the 16 rows go to combine(g, is, acc), which adds the group's float terms to acc (one accumulator per
 * token). The 8 lanes are then reduced vertically in reduce8's order and stored to y (rows past r1 not
 * written). WPG: G / 4, or 0.
 */
template <int NT, int WPG, class Combine>
inline void tile_lanes(const Linear& w, const uint8_t* codes, const int8_t* const* x, int64_t r0, int64_t r1,
                       int64_t t0, float* y, int64_t ystride, Combine combine) {
  const int64_t G = w.group, gpr = w.gpr(), wpg = G / 4;  // words per group
  const int64_t full = w.cols / G;                        // groups of G values
  __m512 lane[8][NT];
  for (int k = 0; k < 8; k++) {
    __m512 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t g = k; g < gpr; g += 8) {
      const uint8_t* wq = codes + g * wpg * 64;
      __m512i is[NT];
      for (int t = 0; t < NT; t++) is[t] = _mm512_setzero_si512();
      if (WPG && g < full)
        group_dots<NT, WPG>(wq, x, g * G, WPG, is);
      else
        group_dots<NT, 0>(wq, x, g * G, std::min(wpg, (w.cols - g * G + 3) / 4), is);
      combine(g, is, acc);
    }
    for (int t = 0; t < NT; t++) lane[k][t] = acc[t];
  }
  store_lanes<NT>(lane, r0, r1, t0, y, ystride);
}

/** Tokens [t0, t1) kTile at a time, the rest in one call: tile(std::integral_constant<int, NT>, t) (NT ≤
 * kTile). */
template <class Tile>
inline void for_tiles(int64_t t0, int64_t t1, Tile tile) {
  int64_t t = t0;
  for (; t + kTile <= t1; t += kTile) tile(std::integral_constant<int, kTile>{}, t);
  switch (t1 - t) {
    case 7:
      return tile(std::integral_constant<int, 7>{}, t);
    case 6:
      return tile(std::integral_constant<int, 6>{}, t);
    case 5:
      return tile(std::integral_constant<int, 5>{}, t);
    case 4:
      return tile(std::integral_constant<int, 4>{}, t);
    case 3:
      return tile(std::integral_constant<int, 3>{}, t);
    case 2:
      return tile(std::integral_constant<int, 2>{}, t);
    case 1:
      return tile(std::integral_constant<int, 1>{}, t);
    default:
      return;
  }
}

/**
 * f(std::integral_constant<int, G / 4>) for the group size G of Gs (the sizes unrolled) that `group` is, else
 * f(std::integral_constant<int, 0>) (the loop over any group's words).
 */
template <int... Gs, class F>
inline void with_wpg(int64_t group, F f) {
  if (!((group == Gs && (f(std::integral_constant<int, Gs / 4>{}), true)) || ...))
    f(std::integral_constant<int, 0>{});
}

/** acc[t] += group g's terms of the 16 rows for token t (the reference's combine_group: (s·dx)·((float)isum −
 * z·(float)xsum)), from the exact integer sums is[t]; xs: the activation sums as int32 or already as float.
 */
template <int NT, class XS = int32_t>
inline void combine(const Block& b, int64_t g, const float* const* dx, const XS* const* xs, const __m512i* is,
                    __m512* acc) {
  const __m512 sv = _mm512_loadu_ps(b.s.data() + g * kRows), zv = _mm512_loadu_ps(b.z.data() + g * kRows);
  for (int t = 0; t < NT; t++) {
    const __m512 d = _mm512_mul_ps(sv, _mm512_set1_ps(dx[t][g]));
    const __m512 bz = _mm512_mul_ps(zv, _mm512_set1_ps((float)xs[t][g]));
    const __m512 tt = _mm512_sub_ps(_mm512_cvtepi32_ps(is[t]), bz);
    acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(d, tt));
  }
}

/** The 16 rows of block b × tokens [t0, t0 + NT), into y (rows past r1 not written). WPG: G / 4, or 0. */
template <int NT, int WPG>
inline void tile(const Linear& w, const Block& b, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, float* y,
                 int64_t ystride) {
  const int8_t* x[NT];
  const float* dx[NT];
  const int32_t* xs[NT];
  for (int t = 0; t < NT; t++) {
    x[t] = a.xq_of(t0 + t);
    dx[t] = a.dx_of(t0 + t);
    xs[t] = a.xsum_of(t0 + t);
  }
  tile_lanes<NT, WPG>(w, b.codes.data(), x, r0, r1, t0, y, ystride,
                      [&](int64_t g, const __m512i* is, __m512* acc) { combine<NT>(b, g, dx, xs, is, acc); });
}

/** Tokens [t0, t1) of one block, kTile at a time. */
template <int WPG>
inline void tiles(const Linear& w, const Block& b, int64_t r0, int64_t r1, const ActQ& a, int64_t t0,
                  int64_t t1, float* y, int64_t ystride) {
  for_tiles(t0, t1,
            [&](auto nt, int64_t t) { tile<decltype(nt)::value, WPG>(w, b, r0, r1, a, t, y, ystride); });
}

template <int BITS>
inline void rows_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                      float* y, int64_t ystride) {
  thread_local Block b;
  for (int64_t rb = r0; rb < r1; rb += kRows) {
    const int64_t re = std::min(r1, rb + kRows);
    unpack<BITS>(w, rb, re, b);
    with_wpg<32, 64, 128>(
        w.group, [&](auto wpg) { tiles<decltype(wpg)::value>(w, b, rb, re, a, t0, t1, y, ystride); });
  }
}

/** Rows [r0, r1) × tokens [t0, t1) of a weight that fits(); activations from quantize_act. */
inline void rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                 int64_t ystride) {
  with_bits(w.bits, [&](auto b) { rows_bits<decltype(b)::value>(w, r0, r1, a, t0, t1, y, ystride); });
}

}  // namespace
}  // namespace gemm512
}  // namespace infer
}  // namespace apl
