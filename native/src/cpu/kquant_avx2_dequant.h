// The AVX2 kquant dequantizer (kq_avx2_dequant_row, the output check's row source), included by
// kquant_avx2.cc (both its builds). x86-64 only.
#pragma once

#include <vector>

#include "avx2_ops.h"
#include "kquant_kernels.h"

namespace apl {
namespace {

/** The q values of a packed row (rb bytes at `bits`) as one byte each (rb · 8 / bits of them). */
void unpack_row(const uint8_t* qr, int64_t rb, int bits, uint8_t* out) {
  if (bits == 8) {
    memcpy(out, qr, (size_t)rb);
    return;
  }
  int64_t i = 0;
  if (bits == 4) {
    const __m128i lo4 = _mm_set1_epi8(15);
    for (; i + 16 <= rb; i += 16) {
      __m128i v = _mm_loadu_si128((const __m128i*)(qr + i));
      __m128i lo = _mm_and_si128(v, lo4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), lo4);
      _mm_storeu_si128((__m128i*)(out + 2 * i), _mm_unpacklo_epi8(lo, hi));
      _mm_storeu_si128((__m128i*)(out + 2 * i + 16), _mm_unpackhi_epi8(lo, hi));
    }
    kq_unpack_q(qr + i, 0, (int)(2 * (rb - i)), 4, out + 2 * i);
    return;
  }
  const __m128i lo2 = _mm_set1_epi8(3);
  for (; i + 16 <= rb; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i*)(qr + i));
    __m128i a = _mm_and_si128(v, lo2), b = _mm_and_si128(_mm_srli_epi16(v, 2), lo2);
    __m128i c = _mm_and_si128(_mm_srli_epi16(v, 4), lo2), d = _mm_and_si128(_mm_srli_epi16(v, 6), lo2);
    __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
    __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
    _mm_storeu_si128((__m128i*)(out + 4 * i), _mm_unpacklo_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i*)(out + 4 * i + 16), _mm_unpackhi_epi16(ab0, cd0));
    _mm_storeu_si128((__m128i*)(out + 4 * i + 32), _mm_unpacklo_epi16(ab1, cd1));
    _mm_storeu_si128((__m128i*)(out + 4 * i + 48), _mm_unpackhi_epi16(ab1, cd1));
  }
  kq_unpack_q(qr + i, 0, (int)(4 * (rb - i)), 2, out + 4 * i);
}

/**
 * kq_dequantize_row (the same float32 operations on the same values): the row's q unpacked once, eight
 * values at a time; d and dmin read once per super-block; a group's codes from one 64-bit read where the row
 * has 8 bytes left there.
 */
void kq_avx2_dequant_row(const KqTensor& t, int64_t r, float* dst) {
  const KqParams& p = t.p;
  int64_t rb = packed_row_bytes(t.cols, p.bits), cb = kq_code_row_bytes(t.cols, p);
  int64_t nsb = kq_supers_per_row(t.cols, p.super);
  const uint8_t* qr = t.q + r * rb;
  const uint8_t* cr = t.codes + r * cb;
  const int w = p.sbits + p.mbits;
  const uint64_t smask = (1u << p.sbits) - 1, mmask = (1u << p.mbits) - 1;
  thread_local std::vector<uint8_t> qv;
  if ((int64_t)qv.size() < rb * 8 + 8) qv.resize((size_t)(rb * 8 + 8));
  unpack_row(qr, rb, p.bits, qv.data());
  for (int64_t b = 0; b < nsb; b++) {
    uint16_t dh, mh;
    memcpy(&dh, t.d + (r * nsb + b) * 2, 2);
    memcpy(&mh, t.dmin + (r * nsb + b) * 2, 2);
    const float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    const int64_t end = (b + 1) * p.super < t.cols ? (b + 1) * p.super : t.cols;
    for (int64_t c0 = b * p.super; c0 < end; c0 += p.group) {
      const int64_t g = c0 / p.group, pos = g * w;
      unsigned sc, mc;
      if ((pos >> 3) + 8 <= cb) {
        uint64_t v;
        memcpy(&v, cr + (pos >> 3), 8);
        v >>= pos & 7;
        sc = (unsigned)(v & smask);
        mc = (unsigned)((v >> p.sbits) & mmask);
      } else {
        sc = get_bits(cr, pos, p.sbits);
        mc = get_bits(cr, pos + p.sbits, p.mbits);
      }
      const float s = d * (float)sc;
      const float z = dm * (float)mc;
      const int n = (int)(c0 + p.group < end ? p.group : end - c0);
      const uint8_t* qb = qv.data() + c0;
      const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
      int i = 0;
      for (; i + 8 <= n; i += 8) {
        __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(qb + i))));
        _mm256_storeu_ps(dst + c0 + i, _mm256_sub_ps(_mm256_mul_ps(vs, q), vz));
      }
      for (; i < n; i++) {
        float v = s * (float)qb[i];
        dst[c0 + i] = v - z;
      }
    }
  }
}

}  // namespace
}  // namespace apl
