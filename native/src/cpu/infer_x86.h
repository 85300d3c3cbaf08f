// AVX2 inference kernels (included by infer_avx2.cc and, with VNNI = true, by infer_vnni.cc). Packed rows
// whose group size is a multiple of 32 run on integer dot products 32 values at a time; other group sizes use
// the scalar reference. Results are bit-exact with the scalar reference (see infer/infer.h for the order).
//
// Layout trick: a 32-value chunk of a b-bit row is 4b bytes; shifting every byte right by k·b and masking
// gives values k, k+per, k+2·per, … (per = 8/b) of that chunk. Unpacking all planes therefore yields the
// chunk in a fixed permuted order (position k·4b + j holds value per·j + k), and the activations of full
// chunks are stored in that same order once per token, so no shuffle is needed per weight row.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../env.h"  // env_not_0 (infer_wide.h, included below inside the namespaces)
#include "../infer/ref.h"

namespace apl {
namespace infer {
namespace x86 {
// Internal linkage: each kernel file compiles this header with its own -m flags (see ref.h).
namespace {

inline bool fast_layout(int64_t group) { return group % 32 == 0; }
/**
 * 4 bits with groups of 64 or 128: the full groups use 64-value chunks instead, read as one 32-byte load
 * whose low nibbles are the even values and high nibbles the odd ones (positions p < 32 ↔ value 2p, p ≥ 32 ↔
 * 2(p−32)+1).
 */
inline bool pair_layout(int bits, int64_t group) { return bits == 4 && (group == 64 || group == 128); }

/** Position → element of a 32-value chunk for `bits`. */
inline void chunk_order(int bits, uint8_t* idx) {
  int per = 8 / bits, nb = 4 * bits;
  for (int k = 0; k < per; k++)
    for (int j = 0; j < nb; j++) idx[k * nb + j] = (uint8_t)(per * j + k);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

/** Lane k of the result = the sum of the lanes of v[k]. */
inline __m256i reduce8x8(const __m256i* v) {
  __m256i s0 = _mm256_hadd_epi32(v[0], v[1]), s1 = _mm256_hadd_epi32(v[2], v[3]);
  __m256i s2 = _mm256_hadd_epi32(v[4], v[5]), s3 = _mm256_hadd_epi32(v[6], v[7]);
  __m256i t0 = _mm256_hadd_epi32(s0, s1), t1 = _mm256_hadd_epi32(s2, s3);
  return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

/** Puts natural-order activations xq[c0, cols) into the 256-bit layout (c0: a multiple of 64). */
inline void act_layout(int8_t* xq, int64_t cols, int64_t group, int bits, int64_t c0) {
  if (!fast_layout(group) || bits == 8) return;
  int8_t tmp[64];
  if (pair_layout(bits, group)) {  // full groups: 64-value chunks, even values then odd values
    for (const int64_t end = cols / group * group; c0 + 64 <= end; c0 += 64) {
      memcpy(tmp, xq + c0, 64);
      for (int p = 0; p < 32; p++) {
        xq[c0 + p] = tmp[2 * p];
        xq[c0 + 32 + p] = tmp[2 * p + 1];
      }
    }
  }
  uint8_t idx[32];
  chunk_order(bits, idx);
  for (; c0 + 32 <= cols; c0 += 32) {
    memcpy(tmp, xq + c0, 32);
    for (int p = 0; p < 32; p++) xq[c0 + p] = tmp[idx[p]];
  }
}

inline void quantize_act(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                         int32_t* xsum) {
  act_quantize_ref(x, cols, group, xq, dx, xsum);
  act_layout(xq, cols, group, bits, 0);
}

/** 32 values of a packed chunk, in the permuted order. */
template <int BITS>
inline __m256i load_chunk(const uint8_t* p) {
  if (BITS == 8) return _mm256_loadu_si256((const __m256i*)p);
  if (BITS == 4) {
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p));
    v = _mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
  }
  if (BITS == 2) {
    int64_t u;
    memcpy(&u, p, 8);
    __m256i v = _mm256_srlv_epi64(_mm256_set1_epi64x(u), _mm256_set_epi64x(6, 4, 2, 0));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x03));
  }
  int32_t u;
  memcpy(&u, p, 4);
  __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(u), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
  return _mm256_and_si256(v, _mm256_set1_epi8(0x01));
}

#if defined(APL_INFER_WIDE)
/** 64 values: two consecutive 32-value chunks in the permuted order (4 bits: the pair layout). */
template <int BITS>
inline __m512i load_chunk64(const uint8_t* p) {
  if (BITS == 8) return _mm512_loadu_si512((const void*)p);
  if (BITS == 4) {  // the pair layout (see pair_layout): low nibbles, then high nibbles
    const __m256i v = _mm256_loadu_si256((const __m256i*)p), mask = _mm256_set1_epi8(0x0f);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, mask)),
                              _mm256_and_si256(_mm256_srli_epi16(v, 4), mask), 1);
  }
  if (BITS == 2) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i*)p));
    v = _mm512_permutexvar_epi64(_mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0), v);
    v = _mm512_srlv_epi64(v, _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0));
    return _mm512_and_si512(v, _mm512_set1_epi8(0x03));
  }
  __m512i v = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i*)p));
  v = _mm512_permutexvar_epi32(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), v);
  v = _mm512_srlv_epi32(v, _mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0));
  return _mm512_and_si512(v, _mm512_set1_epi8(0x01));
}
#endif

/** acc + Σ q·x over 32 values (u8 × s8), exact. For 8 bits without VNNI it adds Σ (q − 128)·x instead. */
template <int BITS, bool VNNI>
inline __m256i dot32(__m256i acc, __m256i q, __m256i x) {
#if defined(APL_INFER_VNNI)
  if (VNNI) return _mm256_dpbusd_epi32(acc, q, x);
#endif
  if (BITS == 8) {
    __m256i qs = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(qs, qs), _mm256_sign_epi8(x, qs));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
  __m256i p = _mm256_maddubs_epi16(q, x);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

inline __m256 load_params8(const uint8_t* base, int64_t i, bool f16) {
  if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(base + i * 2)));
  return _mm256_loadu_ps((const float*)(base + i * 4));
}

/** What every row of one weight shares (computed once per call, so no division per row). */
struct RowShape {
  int64_t G, gpr, full, cpg, rb;
};
inline RowShape row_shape(const Linear& w) {
  return RowShape{w.group, w.gpr(), w.cols / w.group, w.group / 32, w.row_bytes()};
}

constexpr int kMaxTokens = 16;

/** Σ q·xq over the full group starting at c (exact; for 8 bits without VNNI, Σ (q − 128)·xq). */
template <int BITS, bool VNNI, bool UNPACKED, int CPG>
inline __m256i group_dot(const uint8_t* qrow, const uint8_t* ubuf, const int8_t* xq, int64_t c, int64_t cpg) {
  constexpr bool kPair = BITS == 4 && (CPG == 2 || CPG == 4);
#if defined(APL_INFER_WIDE)
  if (CPG == 2 || CPG == 4) {  // 64 values per instruction
    __m512i a = _mm512_setzero_si512();
    for (int m = 0; m < CPG / 2; m++, c += 64) {
      __m512i q = UNPACKED ? _mm512_loadu_si512((const void*)(ubuf + c))
                           : load_chunk64<BITS>(qrow + c / 32 * (4 * BITS));
      a = _mm512_dpbusd_epi32(a, q, _mm512_loadu_si512((const void*)(xq + c)));
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
  }
#endif
  __m256i a = _mm256_setzero_si256();
  if (kPair) {
    for (int m = 0; m < CPG / 2; m++, c += 64) {
      __m256i lo, hi;
      if (UNPACKED) {
        lo = _mm256_loadu_si256((const __m256i*)(ubuf + c));
        hi = _mm256_loadu_si256((const __m256i*)(ubuf + c + 32));
      } else {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(qrow + c / 2)), mask = _mm256_set1_epi8(0x0f);
        lo = _mm256_and_si256(v, mask);
        hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
      }
      a = dot32<BITS, VNNI>(a, lo, _mm256_loadu_si256((const __m256i*)(xq + c)));
      a = dot32<BITS, VNNI>(a, hi, _mm256_loadu_si256((const __m256i*)(xq + c + 32)));
    }
    return a;
  }
  for (int64_t m = 0; m < cpg; m++, c += 32) {
    __m256i q = UNPACKED ? _mm256_loadu_si256((const __m256i*)(ubuf + c))
                         : load_chunk<BITS>(qrow + c / 32 * (4 * BITS));
    a = dot32<BITS, VNNI>(a, q, _mm256_loadu_si256((const __m256i*)(xq + c)));
  }
  return a;
}

/** Groups [g, gpr) of row r for token t, added to the lanes acc (the reference's order). */
template <int BITS, bool VNNI, bool UNPACKED, int CPG>
inline void tail_groups(const Linear& w, const RowShape& sh, int64_t r, const uint8_t* ubuf, const ActQ& act,
                        int64_t t, int64_t g, float* acc) {
  constexpr bool kOffset = BITS == 8 && !VNNI;  // dot32 added Σ (q − 128)·x
  const int64_t G = CPG ? 32 * CPG : sh.G, cpg = CPG ? CPG : sh.cpg, gpr = sh.gpr, full = sh.full;
  const uint8_t* qrow = w.q + r * sh.rb;
  const int64_t pbase = r * gpr;
  const int8_t* xq = act.xq_of(t);
  const float* dx = act.dx_of(t);
  const int32_t* xsum = act.xsum_of(t);
  for (int64_t gg = g; gg < gpr; gg++) {
    int64_t lo = gg * G, hi = lo + G < w.cols ? lo + G : w.cols;
    __m256i a = _mm256_setzero_si256();
    int64_t c = lo;
    if (gg < full) {
      a = group_dot<BITS, VNNI, UNPACKED, CPG>(qrow, ubuf, xq, lo, cpg);
      c = hi;
    }
    for (; c + 32 <= hi; c += 32) {
      __m256i q = UNPACKED ? _mm256_loadu_si256((const __m256i*)(ubuf + c))
                           : load_chunk<BITS>(qrow + c / 32 * (4 * BITS));
      a = dot32<BITS, VNNI>(a, q, _mm256_loadu_si256((const __m256i*)(xq + c)));
    }
    int32_t isum = hsum_i32(a), tl = 0;
    for (; c < hi; c++) {
      isum += (int32_t)packed_at(qrow, c, BITS) * (int32_t)xq[c];
      tl += xq[c];
    }
    if (kOffset) isum += 128 * (xsum[gg] - tl);
    combine_group(acc, gg, isum, load_param(w.scales, pbase + gg, w.f16),
                  load_param(w.zeros, pbase + gg, w.f16), dx[gg], xsum[gg]);
  }
}

/**
 * Row r · the activations of tokens [t0, t1) (at most kMaxTokens), into y. UNPACKED: full chunks come from
 * ubuf (the row unpacked in the permuted order) instead of the packed bytes. Scales and zero points are
 * loaded once per row for all the tokens.
 */
template <int BITS, bool VNNI, bool UNPACKED, int CPG>
inline void row_dot(const Linear& w, const RowShape& sh, int64_t r, const uint8_t* ubuf, const ActQ& act,
                    int64_t t0, int64_t t1, float* y, int64_t ystride) {
  constexpr bool kOffset = BITS == 8 && !VNNI;  // dot32 added Σ (q − 128)·x
  // CPG: chunks per group known at compile time (1, 2, 4), or 0 for any multiple of 32
  const int64_t G = CPG ? 32 * CPG : sh.G, cpg = CPG ? CPG : sh.cpg, gpr = sh.gpr, full = sh.full;
  const int nt = (int)(t1 - t0);
  const uint8_t* qrow = w.q + r * sh.rb;
  const int64_t pbase = r * gpr;
  __m256 accv[kMaxTokens];
  for (int t = 0; t < nt; t++) accv[t] = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= full; g += 8) {
    const __m256 sv = load_params8(w.scales, pbase + g, w.f16), zv = load_params8(w.zeros, pbase + g, w.f16);
    for (int t = 0; t < nt; t++) {
      const int8_t* xq = act.xq_of(t0 + t);
      __m256i v[8];
      for (int k = 0; k < 8; k++)
        v[k] = group_dot<BITS, VNNI, UNPACKED, CPG>(qrow, ubuf, xq, (g + k) * G, cpg);
      __m256i s = reduce8x8(v);
      __m256i xs = _mm256_loadu_si256((const __m256i*)(act.xsum_of(t0 + t) + g));
      if (kOffset) s = _mm256_add_epi32(s, _mm256_slli_epi32(xs, 7));
      __m256 d = _mm256_mul_ps(sv, _mm256_loadu_ps(act.dx_of(t0 + t) + g));
      __m256 b = _mm256_mul_ps(zv, _mm256_cvtepi32_ps(xs));
      __m256 tt = _mm256_sub_ps(_mm256_cvtepi32_ps(s), b);
      accv[t] = _mm256_add_ps(accv[t], _mm256_mul_ps(d, tt));
    }
  }
  for (int t = 0; t < nt; t++) {
    float acc[8];
    _mm256_storeu_ps(acc, accv[t]);
    tail_groups<BITS, VNNI, UNPACKED, CPG>(w, sh, r, ubuf, act, t0 + t, g, acc);
    y[(t0 + t) * ystride + r] = reduce8(acc);
  }
}

#if defined(APL_INFER_WIDE)
#include "infer_wide.h"
#endif

template <int BITS, bool VNNI, int CPG>
inline void qrows_cpg(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                      float* y, int64_t ystride) {
  const RowShape sh = row_shape(w);
  if (t1 - t0 == 1 || BITS == 8) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t tb = t0; tb < t1; tb += kMaxTokens)
        row_dot<BITS, VNNI, false, CPG>(w, sh, r, nullptr, a, tb, std::min(t1, tb + kMaxTokens), y, ystride);
    return;
  }
  thread_local std::vector<uint8_t> buf;  // one row unpacked, reused across the tokens
  if ((int64_t)buf.size() < w.cols + 32) buf.resize((size_t)w.cols + 32);
  uint8_t* ub = buf.data();
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* qrow = w.q + r * sh.rb;
    int64_t c = 0;
    if (BITS == 4 && (CPG == 2 || CPG == 4)) {
      const __m256i mask = _mm256_set1_epi8(0x0f);
      for (const int64_t end = sh.full * sh.G; c + 64 <= end; c += 64) {
        const __m256i v = _mm256_loadu_si256((const __m256i*)(qrow + c / 2));
        _mm256_storeu_si256((__m256i*)(ub + c), _mm256_and_si256(v, mask));
        _mm256_storeu_si256((__m256i*)(ub + c + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), mask));
      }
    }
    for (; c + 32 <= w.cols; c += 32)
      _mm256_storeu_si256((__m256i*)(ub + c), load_chunk<BITS>(qrow + c / 32 * (4 * BITS)));
    for (int64_t tb = t0; tb < t1; tb += kMaxTokens)
      row_dot<BITS, VNNI, true, CPG>(w, sh, r, ub, a, tb, std::min(t1, tb + kMaxTokens), y, ystride);
  }
}

template <int BITS, bool VNNI>
inline void qrows_bits(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1,
                       float* y, int64_t ystride) {
  switch (w.group) {
    case 32:
      return qrows_cpg<BITS, VNNI, 1>(w, r0, r1, a, t0, t1, y, ystride);
    case 64:
      return qrows_cpg<BITS, VNNI, 2>(w, r0, r1, a, t0, t1, y, ystride);
    case 128:
      return qrows_cpg<BITS, VNNI, 4>(w, r0, r1, a, t0, t1, y, ystride);
    default:
      return qrows_cpg<BITS, VNNI, 0>(w, r0, r1, a, t0, t1, y, ystride);
  }
}

template <bool VNNI>
inline void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                  int64_t ystride) {
  if (!fast_layout(w.group)) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t t = t0; t < t1; t++)
        y[t * ystride + r] = qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
    return;
  }
#if defined(APL_INFER_WIDE)
  if (wide_qrows(w, r0, r1, a, t0, t1, y, ystride)) return;
#endif
  switch (w.bits) {
    case 1:
      return qrows_bits<1, VNNI>(w, r0, r1, a, t0, t1, y, ystride);
    case 2:
      return qrows_bits<2, VNNI>(w, r0, r1, a, t0, t1, y, ystride);
    case 4:
      return qrows_bits<4, VNNI>(w, r0, r1, a, t0, t1, y, ystride);
    default:
      return qrows_bits<8, VNNI>(w, r0, r1, a, t0, t1, y, ystride);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Float weights (FMA, four accumulators: not the reference's order)

template <int DT>
inline __m256 load8f(const uint8_t* row, int64_t c) {
  if (DT == kF32) return _mm256_loadu_ps((const float*)row + c);
  __m128i h = _mm_loadu_si128((const __m128i*)(row + 2 * c));
  if (DT == kF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int DT>
inline float fdot(const uint8_t* row, const float* x, int64_t cols) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    a0 = _mm256_fmadd_ps(load8f<DT>(row, c), _mm256_loadu_ps(x + c), a0);
    a1 = _mm256_fmadd_ps(load8f<DT>(row, c + 8), _mm256_loadu_ps(x + c + 8), a1);
    a2 = _mm256_fmadd_ps(load8f<DT>(row, c + 16), _mm256_loadu_ps(x + c + 16), a2);
    a3 = _mm256_fmadd_ps(load8f<DT>(row, c + 24), _mm256_loadu_ps(x + c + 24), a3);
  }
  for (; c + 8 <= cols; c += 8) a0 = _mm256_fmadd_ps(load8f<DT>(row, c), _mm256_loadu_ps(x + c), a0);
  float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; c < cols; c++) s += float_at(row, c, DT) * x[c];
  return s;
}

template <int DT>
inline void frows_dt(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1,
                     float* y, int64_t ystride) {
  const int64_t rb = w.cols * dtype_size(DT);
  if (t1 - t0 == 1 || DT == kF32) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t t = t0; t < t1; t++)
        y[t * ystride + r] = fdot<DT>(w.data + r * rb, x + t * w.cols, w.cols);
    return;
  }
  thread_local std::vector<float> buf;
  if ((int64_t)buf.size() < w.cols) buf.resize((size_t)w.cols);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = w.data + r * rb;
    int64_t c = 0;
    for (; c + 8 <= w.cols; c += 8) _mm256_storeu_ps(buf.data() + c, load8f<DT>(row, c));
    for (; c < w.cols; c++) buf[(size_t)c] = float_at(row, c, DT);
    const uint8_t* fb = reinterpret_cast<const uint8_t*>(buf.data());
    for (int64_t t = t0; t < t1; t++) y[t * ystride + r] = fdot<kF32>(fb, x + t * w.cols, w.cols);
  }
}

inline void frows(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1, float* y,
                  int64_t ystride) {
  if (w.dtype == kF32) return frows_dt<kF32>(w, r0, r1, x, t0, t1, y, ystride);
  if (w.dtype == kF16) return frows_dt<kF16>(w, r0, r1, x, t0, t1, y, ystride);
  return frows_dt<kBF16>(w, r0, r1, x, t0, t1, y, ystride);
}

inline float dotf(const float* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  float s = hsum_ps(_mm256_add_ps(a0, a1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

inline void axpyf(float s, const float* x, float* y, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += s * x[i];
}

}  // namespace
}  // namespace x86
}  // namespace infer
}  // namespace apl
