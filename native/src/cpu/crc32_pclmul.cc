// CRC-32 (zip polynomial, bit-reflected) by carry-less multiplication: four 128-bit lanes folded 64 bytes at
// a time, then into one lane, then a Barrett reduction to 32 bits (Gopal et al., "Fast CRC Computation for
// Generic Polynomials Using PCLMULQDQ Instruction", Intel 2009; the constants of its reflected CRC-32 table,
// as in zlib's and Chromium's SIMD CRC). Compiled with -msse4.1 -mpclmul; crc32.cc checks it against a table
// before use.
#include "../crc32.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace apl {

namespace {

alignas(16) const uint64_t kK1K2[2] = {0x0154442bd4, 0x01c6e41596};  // x^(4·128+32), x^(4·128−32) mod P
alignas(16) const uint64_t kK3K4[2] = {0x01751997d0, 0x00ccaa009e};  // x^(128+32), x^(128−32) mod P
alignas(16) const uint64_t kK5K0[2] = {0x0163cd6124, 0};             // x^64 mod P
alignas(16) const uint64_t kPoly[2] = {0x01db710641, 0x01f7011641};  // P, and μ = x^64 / P

/** x · k (both 64-bit halves folded) plus y. */
inline __m128i fold(__m128i x, __m128i k, __m128i y) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), y);
}

uint32_t fold_pclmul(const uint8_t* p, size_t n, uint32_t s) {
  __m128i x1 = _mm_loadu_si128((const __m128i*)p), x2 = _mm_loadu_si128((const __m128i*)(p + 16));
  __m128i x3 = _mm_loadu_si128((const __m128i*)(p + 32)), x4 = _mm_loadu_si128((const __m128i*)(p + 48));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)s));
  __m128i k = _mm_load_si128((const __m128i*)kK1K2);
  p += 64;
  n -= 64;
  for (; n >= 64; p += 64, n -= 64) {
    x1 = fold(x1, k, _mm_loadu_si128((const __m128i*)p));
    x2 = fold(x2, k, _mm_loadu_si128((const __m128i*)(p + 16)));
    x3 = fold(x3, k, _mm_loadu_si128((const __m128i*)(p + 32)));
    x4 = fold(x4, k, _mm_loadu_si128((const __m128i*)(p + 48)));
  }
  k = _mm_load_si128((const __m128i*)kK3K4);
  x1 = fold(fold(fold(x1, k, x2), k, x3), k, x4);
  for (; n >= 16; p += 16, n -= 16) x1 = fold(x1, k, _mm_loadu_si128((const __m128i*)p));
  // 128 → 64 bits.
  const __m128i lo32 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, k, 0x10));
  __m128i x2b = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(
      _mm_clmulepi64_si128(_mm_and_si128(x1, lo32), _mm_loadl_epi64((const __m128i*)kK5K0), 0x00), x2b);
  // Barrett reduction to 32 bits.
  const __m128i poly = _mm_load_si128((const __m128i*)kPoly);
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x1, lo32), poly, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, lo32), poly, 0x00);
  return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, t), 1);
}

}  // namespace

Crc32Fold crc32_pclmul() { return fold_pclmul; }

}  // namespace apl
#else
namespace apl {
Crc32Fold crc32_pclmul() { return nullptr; }
}  // namespace apl
#endif
