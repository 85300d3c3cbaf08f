// AVX2 / AVX-512 VNNI inference kernels for kquant weights (included by infer_kquant_avx2.cc and, with
// APL_INFER_VNNI, by infer_kquant_vnni.cc). Bit-exact with the scalar reference (infer/kquant_ref.h):
//  - a row is unpacked once to one byte per value (natural order, zero padded to a multiple of 32) and its
//    per-group s, z decoded once, then reused for every token of the block (prompts: up to 16);
//  - per token, 32 values at a time give eight int32 sums of 4 consecutive products (maddubs + madd with
//  ones,
//    or one vpdpbusd); a group of G (a multiple of 4) adds G/4 of them; integer sums are exact in any order;
//  - eight consecutive groups g0..g0+7 (g0 a multiple of 8) are combined in one vector whose lane j is the
//    reference's lane (g0 + j) % 8, with the reference's float32 operations in its order (no FMA:
//    -ffp-contract=off); the remaining groups and groups of other sizes follow the reference in scalar code.
// 8 bits on AVX2 (maddubs would saturate) take the reference's integer dot products.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../infer/kquant_linear.h"
#include "../infer/kquant_ref.h"

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

void quantize_act(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx, int32_t* xsum) {
  act_quantize_ref(x, cols, group, xq, dx, xsum);
  for (int64_t c = cols; c % 32; c++) xq[c] = 0;
}

/** Row r's values, one byte each, natural order; dst is zeroed up to a multiple of 32. */
void unpack_row(const Linear& w, int64_t r, uint8_t* dst) {
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
  for (; c % 32; c++) dst[c] = 0;
}

/** Row r's s and z per group (the values kq_group_sz gives), d and dmin converted once per super-block. */
void decode_sz(const Linear& w, int64_t r, float* s, float* z) {
  const int64_t gpr = w.gpr(), nsb = kq_supers(w), gps = w.kq_super / w.group;
  const uint8_t* cr = w.codes + r * kq_codes_row_bytes(w);
  const int width = w.kq_sbits + w.kq_mbits;
  const unsigned smask = (1u << w.kq_sbits) - 1, mmask = (1u << w.kq_mbits) - 1;
  for (int64_t b = 0; b < nsb; b++) {
    uint16_t dh, mh;
    std::memcpy(&dh, w.kd + (r * nsb + b) * 2, 2);
    std::memcpy(&mh, w.kdmin + (r * nsb + b) * 2, 2);
    const float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    for (int64_t g = b * gps, ge = std::min(gpr, g + gps); g < ge; g++) {
      const int64_t pos = g * width, byte = pos >> 3;
      const int sh = (int)(pos & 7), nbytes = (sh + width + 7) / 8;  // at most 3
      uint32_t v = 0;
      for (int i = 0; i < nbytes; i++) v |= (uint32_t)cr[byte + i] << (8 * i);
      v >>= sh;
      s[g] = d * (float)(v & smask);
      z[g] = dm * (float)((v >> w.kq_sbits) & mmask);
    }
  }
}

/** Eight int32: lane k = Σ of products 4k..4k+3 of 32 unsigned values and 32 int8 activations. */
inline __m256i dot4(const uint8_t* q, const int8_t* x) {
  __m256i a = _mm256_loadu_si256((const __m256i*)q), b = _mm256_loadu_si256((const __m256i*)x);
#ifdef APL_INFER_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}

/** Per-row scratch of one thread. */
struct Scratch {
  std::vector<uint8_t> qn;
  std::vector<int32_t> part, isum;
  std::vector<float> s, z;
};

void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
  const int64_t G = w.group, gpr = w.gpr(), cols = w.cols, padded = (cols + 31) / 32 * 32;
  // Groups of a multiple of 4 values run on 4-value partial sums (8 bits need VNNI: maddubs saturates).
  const bool simd = G % 4 == 0 && (w.bits != 8 || kVnni);
  thread_local Scratch sc;
  sc.qn.resize((size_t)padded);
  sc.part.resize((size_t)(padded / 4));
  sc.isum.resize((size_t)gpr);
  sc.s.resize((size_t)gpr);
  sc.z.resize((size_t)gpr);
  const int64_t g8 = gpr / 8 * 8, per = G / 4;
  for (int64_t r = r0; r < r1; r++) {
    decode_sz(w, r, sc.s.data(), sc.z.data());
    if (simd) unpack_row(w, r, sc.qn.data());
    const uint8_t* qrow = w.q + r * w.row_bytes();
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* xq = a.xq_of(t);
      const float* dx = a.dx_of(t);
      const int32_t* xs = a.xsum_of(t);
      int32_t* isum = sc.isum.data();
      if (simd) {
        int32_t* part = sc.part.data();
        for (int64_t c = 0; c < padded; c += 32)
          _mm256_storeu_si256((__m256i*)(part + c / 4), dot4(sc.qn.data() + c, xq + c));
        // The last group may be shorter: its partial sums past cols are zero (zero padded values).
        const int64_t np = padded / 4;
        if (per == 4) {
          for (int64_t g = 0; g < gpr; g++) {
            const int32_t* p = part + g * 4;
            isum[g] = (p[0] + p[1]) + (p[2] + p[3]);
          }
        } else {
          for (int64_t g = 0; g < gpr; g++) {
            int64_t lo = g * per, hi = std::min(np, lo + per);
            int32_t v = 0;
            for (int64_t i = lo; i < hi; i++) v += part[i];
            isum[g] = v;
          }
        }
      } else {
        for (int64_t g = 0; g < gpr; g++) {
          int64_t lo = g * G, hi = std::min(cols, lo + G);
          isum[g] = group_isum_ref(qrow, lo, hi, w.bits, xq);
        }
      }
      __m256 acc = _mm256_setzero_ps();
      for (int64_t g = 0; g < g8; g += 8) {
        __m256 av = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(isum + g)));
        __m256 xv = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(xs + g)));
        __m256 u = _mm256_mul_ps(_mm256_loadu_ps(&sc.s[g]), av);
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(&sc.z[g]), xv);
        __m256 term = _mm256_mul_ps(_mm256_loadu_ps(dx + g), _mm256_sub_ps(u, v));
        acc = _mm256_add_ps(acc, term);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc);
      for (int64_t g = g8; g < gpr; g++) kq_combine_group(lanes, g, isum[g], sc.s[g], sc.z[g], dx[g], xs[g]);
      y[t * ystride + r] = reduce8(lanes);
    }
  }
}

}  // namespace
}  // namespace kqx86
}  // namespace infer
}  // namespace apl
