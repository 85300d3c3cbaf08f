// Element decoding and statistics: the scalar reference (ported from native/reference-stats.ts, which is its
// spec and fallback; the tests compare the two bit for bit). Every numpy dtype the readers name, in either
// byte order, decoded to double; streaming statistics fed one chunk at a time (Chan et al.'s parallel update:
// each chunk's mean and squared deviations in double, two passes over the chunk); a histogram of equal bins
// over [min, max]. The double operations are the TypeScript's, in its order (compiled with
// -ffp-contract=off), so both give the same bits. Memory-bound and used on pages and samples: no SIMD
// variant.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

namespace apl {

/** Element types, in the order of reference-stats.ts ELEMENT_SIZES (the addon's dtype code). */
enum ElemType {
  kEBool = 0,
  kEU8,
  kEI8,
  kEU16,
  kEI16,
  kEU32,
  kEI32,
  kEU64,
  kEI64,
  kEF16,
  kEBF16,
  kEF32,
  kEF64,
  kEF8E4M3,
  kEF8E5M2,
  kElemTypes
};

inline int elem_size(int t) {
  static const int sizes[kElemTypes] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8, 1, 1};
  return t >= 0 && t < kElemTypes ? sizes[t] : 0;
}

/** float8 byte → value: e4m3fn (bias 7, no infinities, S.1111.111 is NaN) or e5m2 (bias 15, IEEE-like). */
inline double f8_to_double(uint8_t b, bool e4m3) {
  int eb = e4m3 ? 4 : 5, mb = 7 - eb, bias = e4m3 ? 7 : 15;
  int emax = (1 << eb) - 1;
  double s = (b & 0x80) ? -1.0 : 1.0;
  int e = (b >> mb) & emax;
  int m = b & ((1 << mb) - 1);
  if (e4m3) {
    if (e == emax && m == (1 << mb) - 1) return NAN;
  } else if (e == emax) {
    return m ? NAN : s * INFINITY;
  }
  if (e == 0) return s * ldexp((double)m, 1 - bias - mb);
  return s * ldexp((double)((1 << mb) + m), e - bias - mb);
}

/** Reads `size` bytes at p as an unsigned little- or big-endian integer. */
inline uint64_t load_uint(const uint8_t* p, int size, bool le) {
  uint64_t v = 0;
  for (int k = 0; k < size; k++) v |= (uint64_t)p[le ? k : size - 1 - k] << (8 * k);
  return v;
}

/** Element i of p (dtype t, byte order le) as a double. */
inline double elem_get(const uint8_t* p, int64_t i, int t, bool le) {
  int size = elem_size(t);
  uint64_t u = load_uint(p + i * size, size, le);
  switch (t) {
    case kEBool:
      return u ? 1.0 : 0.0;
    case kEU8:
    case kEU16:
    case kEU32:
      return (double)u;
    case kEI8:
      return (double)(int8_t)u;
    case kEI16:
      return (double)(int16_t)u;
    case kEI32:
      return (double)(int32_t)u;
    case kEU64:
      return (double)u;
    case kEI64:
      return (double)(int64_t)u;
    case kEF16: {
      double f = f16_to_f32((uint16_t)u);
      return f == f ? f : NAN;  // one NaN, as the reference's table has
    }
    case kEBF16:
      return bf16_to_f32((uint16_t)u);
    case kEF32:
      return bits_f32((uint32_t)u);
    case kEF64: {
      double d;
      memcpy(&d, &u, 8);
      return d;
    }
    case kEF8E4M3:
      return f8_to_double((uint8_t)u, true);
    default:
      return f8_to_double((uint8_t)u, false);
  }
}

inline void decode_elems(const uint8_t* p, int64_t n, int t, bool le, double* out) {
  for (int64_t i = 0; i < n; i++) out[i] = elem_get(p, i, t, le);
}

/** Running statistics: [count, mean, m2, min, max, nan, inf] (reference-stats.ts StatsState). */
enum { kStCount = 0, kStMean, kStM2, kStMin, kStMax, kStNan, kStInf, kStatsLen };

/** Adds n elements of p as one chunk to s. */
inline void stats_add(double* s, const uint8_t* p, int64_t n, int t, bool le) {
  double cnt = 0, sum = 0, mn = s[kStMin], mx = s[kStMax], nan = 0, inf = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = elem_get(p, i, t, le);
    if (x - x == 0) {
      cnt++;
      sum += x;
      if (x < mn) mn = x;
      if (x > mx) mx = x;
    } else if (isnan(x)) {
      nan++;
    } else {
      inf++;
    }
  }
  s[kStNan] += nan;
  s[kStInf] += inf;
  s[kStMin] = mn;
  s[kStMax] = mx;
  if (cnt == 0) return;
  double mean = sum / cnt;
  double m2 = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = elem_get(p, i, t, le) - mean;
    if (d - d == 0) m2 += d * d;
  }
  double count = s[kStCount];
  double total = count + cnt;
  double delta = mean - s[kStMean];
  s[kStMean] += (delta * cnt) / total;
  s[kStM2] += m2 + (delta * delta * count * cnt) / total;
  s[kStCount] = total;
}

/**
 * Counts of the finite elements in `bins` equal bins over [mn, mx]: bin ⌊(v − mn) · (bins / (mx − mn))⌋, the
 * last bin including mx, values outside clamped to the end bins; all in bin 0 when mx = mn. counts is zeroed
 * first.
 */
inline void histogram(const uint8_t* p, int64_t n, int t, bool le, double mn, double mx, int bins,
                      double* counts) {
  for (int b = 0; b < bins; b++) counts[b] = 0;
  double scale = mx > mn ? bins / (mx - mn) : 0;
  for (int64_t i = 0; i < n; i++) {
    double x = elem_get(p, i, t, le);
    if (x - x != 0) continue;
    double f = trunc((x - mn) * scale);
    int64_t b = f >= 0 ? (f < (double)bins ? (int64_t)f : bins - 1) : 0;
    counts[b] += 1;
  }
}

}  // namespace apl
