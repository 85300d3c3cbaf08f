// What the plain C++ test programs (test/native/test_*.cc) share: the CHECK macro and its counters, and the
// input and comparison helpers more than one of them uses. Test code only.
//
// CHECK(cond, printf format, args…) counts a check and, when cond is false, a failure, printed to stderr as
// "FAIL file:line: message". The counters are static: each file that includes this has its own (test_gpu.cc
// adds the failures test_gpu_bench.cc returns); each program's main prints them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../../native/src/quant.h"

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

/** n values of N(0, sigma²) from std::mt19937(seed). */
inline std::vector<float> gaussian(size_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

/** x in dtype's bytes: float32, float16 (round to nearest) or bfloat16 (the high half: truncated). */
inline std::vector<uint8_t> encode(const std::vector<float>& x, int dtype) {
  std::vector<uint8_t> b(x.size() * apl::dtype_size(dtype));
  for (size_t i = 0; i < x.size(); i++) {
    if (dtype == apl::kF32) {
      memcpy(&b[i * 4], &x[i], 4);
    } else {
      uint16_t h = dtype == apl::kF16 ? apl::f32_to_f16(x[i]) : (uint16_t)(apl::f32_bits(x[i]) >> 16);
      memcpy(&b[i * 2], &h, 2);
    }
  }
  return b;
}

/** ‖a − b‖ / ‖a‖. */
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); i++) {
    d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    n += (double)a[i] * a[i];
  }
  return std::sqrt(d / n);
}

/** a and b hold the same float32 bits (and as many); at (optional): the first index that differs. */
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b, size_t* at = nullptr) {
  for (size_t i = 0; i < a.size() && i < b.size(); i++)
    if (memcmp(&a[i], &b[i], 4) != 0) {
      if (at) *at = i;
      return false;
    }
  if (at) *at = std::min(a.size(), b.size());
  return a.size() == b.size();
}
