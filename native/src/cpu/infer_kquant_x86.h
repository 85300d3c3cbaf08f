// AVX2 / AVX-512 VNNI inference kernels for kquant weights (included by infer_kquant_avx2.cc and, with
// APL_INFER_VNNI, by infer_kquant_vnni.cc). Bit-exact with the scalar reference (infer/kquant_ref.h).
//
// Layout: with groups of G = 4·per values, a block of 8 consecutive groups (8G values; the last block zero
// padded) is stored transposed in 4-value units: chunk k (32 bytes) holds values 4k..4k+3 of each of the
// block's 8 groups (lane j = group j). A row is unpacked to that layout once (its s, z per group decoded
// once) and reused for every token of the block (prompts: up to 16); the activations are stored the same way
// once per token. Per block, the per chunks accumulated into one vector (maddubs + madd with ones, or one
// vpdpbusd) give the 8 groups' integer sums in the 8 lanes directly (integer sums are exact in any order),
// and lane j is the reference's lane (g0 + j) % 8: the combine runs in that vector with the reference's
// float32 operations in its order (no FMA: -ffp-contract=off). The last, partial block is combined in scalar
// code. Other group sizes keep natural order and the reference's code; 8 bits on AVX2 (maddubs would
// saturate) sum the transposed units in scalar code. With APL_INFER_VNNI, 2- and 4-bit rows whose groups are
// whole 4-byte lanes of codes (the presets convert writes) take the 512-bit path of infer_kquant_wide.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../env.h"
#include "../infer/kquant_linear.h"
#include "../infer/kquant_ref.h"
#ifdef APL_INFER_VNNI
#include "infer_gemm.h"
#endif

namespace apl {
namespace infer {
namespace kqx86 {
// Internal linkage: each kernel file compiles this header with its own -m flags (see ref.h).
namespace {

#ifdef APL_INFER_VNNI
constexpr bool kVnni = true;
#else
constexpr bool kVnni = false;
#endif

inline bool transposed(int64_t group) { return group % 4 == 0; }

/** Natural order (zero padded to kq_blocked_len) → transposed blocks: unit (group j, k) → (chunk k, lane j).
 */
void transpose_units(const uint8_t* nat, int64_t len, int64_t group, uint8_t* out) {
  const int64_t per = group / 4, blk = 8 * group;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    const uint8_t* src = nat + b0;
    uint32_t* dst = (uint32_t*)(out + b0);
    for (int64_t k = 0; k < per; k++, src += 4, dst += 8) {
      uint32_t u[8];
      for (int j = 0; j < 8; j++) std::memcpy(&u[j], src + j * group, 4);
      std::memcpy(dst, u, 32);
    }
  }
}

#ifdef APL_INFER_VNNI
#include "infer_kquant_wide.h"
// after the wide kernel: the GEMM decodes s and z with it
#include "infer_kquant_gemm.h"
#else
#include "infer_kquant_wide2.h"
/** APL_KQ_AVX2_TRANSPOSED=1 (benchmarks only: the before of bench/kquant-infer.bench.ts): the avx2 variant
 * runs the transposed kernel below for every layout (read once per process). */
inline bool old_kernel() {
  static const bool v = env_is_1("APL_KQ_AVX2_TRANSPOSED");
  return v;
}
#endif

void quantize_act(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                  int32_t* xsum) {
  if (!transposed(group)) {
    act_quantize_ref(x, cols, group, xq, dx, xsum);
    for (int64_t c = cols; c % 32; c++) xq[c] = 0;
    return;
  }
  const int64_t len = kq_blocked_len(cols, group);
  thread_local std::vector<int8_t> nat;
  nat.resize((size_t)len);
  act_quantize_ref(x, cols, group, nat.data(), dx, xsum);
  std::memset(nat.data() + cols, 0, (size_t)(len - cols));
#ifdef APL_INFER_VNNI
  if (wide_lanes(bits, group)) return wide_act_layout<Wide512>(nat.data(), len, group, bits, xq);
#else
  if (!old_kernel() && wide_lanes(bits, group))
    return wide_act_layout<Wide256>(nat.data(), len, group, bits, xq);
#endif
  transpose_units((const uint8_t*)nat.data(), len, group, (uint8_t*)xq);
}

/** Row r's values, one byte each, natural order; dst is zeroed from cols up to len. */
void unpack_row(const Linear& w, int64_t r, uint8_t* dst, int64_t len) {
  const uint8_t* q = w.q + r * w.row_bytes();
  const int64_t cols = w.cols, full = cols / 32 * 32;
  int64_t c = 0;
  if (w.bits == 8) {
    std::memcpy(dst, q, (size_t)cols);
    c = cols;
  } else if (w.bits == 4) {
    const __m128i m = _mm_set1_epi8(0x0f);
    for (; c < full; c += 32) {
      __m128i b = _mm_loadu_si128((const __m128i*)(q + c / 2));
      __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
      _mm_storeu_si128((__m128i*)(dst + c), _mm_unpacklo_epi8(lo, hi));
      _mm_storeu_si128((__m128i*)(dst + c + 16), _mm_unpackhi_epi8(lo, hi));
    }
  } else {  // 2 bits
    const __m128i m = _mm_set1_epi8(0x03);
    for (; c < full; c += 32) {
      __m128i b = _mm_loadl_epi64((const __m128i*)(q + c / 4));
      __m128i b0 = _mm_and_si128(b, m), b1 = _mm_and_si128(_mm_srli_epi16(b, 2), m);
      __m128i b2 = _mm_and_si128(_mm_srli_epi16(b, 4), m), b3 = _mm_and_si128(_mm_srli_epi16(b, 6), m);
      __m128i p01 = _mm_unpacklo_epi8(b0, b1), p23 = _mm_unpacklo_epi8(b2, b3);
      _mm_storeu_si128((__m128i*)(dst + c), _mm_unpacklo_epi16(p01, p23));
      _mm_storeu_si128((__m128i*)(dst + c + 16), _mm_unpackhi_epi16(p01, p23));
    }
  }
  for (; c < cols; c++) dst[c] = (uint8_t)packed_at(q, c, w.bits);
  for (; c < len; c++) dst[c] = 0;
}

/** Adds to acc, per lane k, the products 4k..4k+3 of 32 unsigned values and 32 int8 activations. */
inline __m256i dot4_acc(__m256i acc, const uint8_t* q, const int8_t* x) {
  __m256i a = _mm256_loadu_si256((const __m256i*)q), b = _mm256_loadu_si256((const __m256i*)x);
#ifdef APL_INFER_VNNI
  return _mm256_dpbusd_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}

/** The 8 groups' integer sums of one transposed block (`per` chunks of 32 bytes). */
inline __m256i block_isums(const uint8_t* q, const int8_t* x, int64_t per, bool scalar8) {
  if (scalar8) {  // 8 bits without VNNI
    alignas(32) int32_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < per; k++)
      for (int j = 0; j < 8; j++)
        for (int i = 0; i < 4; i++) v[j] += (int32_t)q[k * 32 + j * 4 + i] * (int32_t)x[k * 32 + j * 4 + i];
    return _mm256_load_si256((const __m256i*)v);
  }
  __m256i acc = _mm256_setzero_si256();
  for (int64_t k = 0; k < per; k++) acc = dot4_acc(acc, q + k * 32, x + k * 32);
  return acc;
}

/** Per-row scratch of one thread. */
struct Scratch {
  std::vector<uint8_t> nat, qt;
  std::vector<float> s, z;
};

void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
#ifdef APL_INFER_VNNI
  if (wide_qrows<Wide512>(w, r0, r1, a, t0, t1, y, ystride)) return;
#else
  if (!old_kernel() && wide_qrows<Wide256>(w, r0, r1, a, t0, t1, y, ystride)) return;
#endif
  if (!transposed(w.group)) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t t = t0; t < t1; t++)
        y[t * ystride + r] = kq_qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
    return;
  }
  const int64_t G = w.group, gpr = w.gpr(), per = G / 4, blk = 8 * G;
  const int64_t len = kq_blocked_len(w.cols, G), full = gpr / 8;
  const bool scalar8 = w.bits == 8 && !kVnni;
  thread_local Scratch sc;
  sc.nat.resize((size_t)len);
  sc.qt.resize((size_t)len);
  sc.s.resize((size_t)gpr);
  sc.z.resize((size_t)gpr);
  for (int64_t r = r0; r < r1; r++) {
    kq_row_sz(w, r, sc.s.data(), sc.z.data());
    unpack_row(w, r, sc.nat.data(), len);
    transpose_units(sc.nat.data(), len, G, sc.qt.data());
    const uint8_t* qt = sc.qt.data();
    const float* s = sc.s.data();
    const float* z = sc.z.data();
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* xq = a.xq_of(t);
      const float* dx = a.dx_of(t);
      const int32_t* xs = a.xsum_of(t);
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b = 0; b < full; b++) {
        const int64_t g = b * 8;
        __m256 av = _mm256_cvtepi32_ps(block_isums(qt + b * blk, xq + b * blk, per, scalar8));
        __m256 xv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(xs + g)));
        __m256 u = _mm256_mul_ps(_mm256_loadu_ps(s + g), av);
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(z + g), xv);
        __m256 term = _mm256_mul_ps(_mm256_loadu_ps(dx + g), _mm256_sub_ps(u, v));
        acc = _mm256_add_ps(acc, term);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc);
      if (full * 8 < gpr) {
        alignas(32) int32_t is[8];
        _mm256_store_si256((__m256i*)is, block_isums(qt + full * blk, xq + full * blk, per, scalar8));
        for (int64_t g = full * 8; g < gpr; g++)
          kq_combine_group(lanes, g, is[g - full * 8], s[g], z[g], dx[g], xs[g]);
      }
      y[t * ystride + r] = reduce8(lanes);
    }
  }
}

}  // namespace
}  // namespace kqx86
}  // namespace infer
}  // namespace apl
