// The row-level work of the x86 kquant builds around kq_quantize_super (kquant_simd.h's KqSimdOps): the
// codes' bit stream packed eight groups at a time, and the next row's input prefetched while this one is
// quantized. Integer work only: the same bytes as kquant.h's kq_pack_codes.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cstring>

#include "../kquant.h"

namespace apl {

namespace {

/**
 * Eight groups' codes (sc | mc << sbits, W = sbits + mbits bits each, W ≤ 16) as the W bytes of
 * kq_pack_codes' little-endian bit stream that they fill exactly: two 64-bit words with constant shifts, no
 * loop-carried state.
 */
template <int W>
inline void kq_pack8_codes(const uint8_t* sc, const uint8_t* mc, int sbits, uint8_t* out) {
  uint64_t lo = 0, hi = 0;
  for (int k = 0; k < 8; k++) {
    uint64_t v = (uint64_t)(sc[k] | ((unsigned)mc[k] << sbits));
    const int pos = k * W;
    if (pos < 64) {
      lo |= v << pos;
      if (pos + W > 64) hi |= v >> (64 - pos);
    } else {
      hi |= v << (pos - 64);
    }
  }
  if constexpr (W <= 8) {
    memcpy(out, &lo, W);
  } else {
    memcpy(out, &lo, 8);
    memcpy(out + 8, &hi, W - 8);
  }
}

/** kq_pack_codes with the whole eight-group blocks by kq_pack8_codes<W>, the rest by the reference. */
template <int W>
inline void kq_pack_codes_w(const uint8_t* sc, const uint8_t* mc, int64_t groups, const KqParams& p,
                            uint8_t* out) {
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) kq_pack8_codes<W>(sc + g, mc + g, p.sbits, out + g / 8 * W);
  if (g < groups) kq_pack_codes(sc + g, mc + g, groups - g, p, out + g / 8 * W);
}

/** kq_pack_codes for any code width (sbits + mbits, 2 to 16 bits): the same bytes. */
inline void kq_pack_codes_fast(const uint8_t* sc, const uint8_t* mc, int64_t groups, const KqParams& p,
                               uint8_t* out) {
  using Fn = void (*)(const uint8_t*, const uint8_t*, int64_t, const KqParams&, uint8_t*);
  static constexpr Fn by_width[17] = {nullptr,
                                      nullptr,
                                      kq_pack_codes_w<2>,
                                      kq_pack_codes_w<3>,
                                      kq_pack_codes_w<4>,
                                      kq_pack_codes_w<5>,
                                      kq_pack_codes_w<6>,
                                      kq_pack_codes_w<7>,
                                      kq_pack_codes_w<8>,
                                      kq_pack_codes_w<9>,
                                      kq_pack_codes_w<10>,
                                      kq_pack_codes_w<11>,
                                      kq_pack_codes_w<12>,
                                      kq_pack_codes_w<13>,
                                      kq_pack_codes_w<14>,
                                      kq_pack_codes_w<15>,
                                      kq_pack_codes_w<16>};
  int w = p.sbits + p.mbits;
  if (w < 2 || w > 16) return kq_pack_codes(sc, mc, groups, p, out);
  by_width[w](sc, mc, groups, p, out);
}

/**
 * Row r + 1's input into the cache while row r is quantized (the rows of a job are contiguous and a thread
 * takes them in order), so that its first read does not wait for memory. Nothing past the last row. Always
 * inlined: GCC finds a function that only prefetches "pure" and drops calls to it.
 */
__attribute__((always_inline)) inline void kq_prefetch_next_row(const QuantJob& j, int64_t r) {
  if (r + 1 >= j.rows) return;
  const int64_t bytes = j.cols * (j.dtype == kF32 ? 4 : 2);
  const char* p = reinterpret_cast<const char*>(j.data) + (size_t)((r + 1) * bytes);
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T1);
  _mm_prefetch(p + bytes - 1, _MM_HINT_T1);  // the last line when p is not 64-byte aligned
}

}  // namespace

}  // namespace apl
#endif
