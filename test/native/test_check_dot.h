// The output check's products (cpu/kernels.h check_dot_*): the AVX2 form against the scalar reference, bit
// for bit, called directly (select_check_dot() alone would hide a wrong variant behind its self-check), and
// which one the check uses. Included by test_kernels.cc (its CHECK macro and counters).
#pragma once

#include "../../native/src/cpu/kernels.h"

static void test_check_dot() {
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const char* fs = getenv("APL_FORCE_SCALAR");
  const bool forced = fs && strcmp(fs, "1") == 0;
  CheckDot avx2 = check_dot_avx2();
  (void)forced;  // read on x86-64 only
#if defined(__x86_64__) || defined(_M_X64)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) {
    CHECK(avx2 != nullptr, "check_dot_avx2 is compiled in on x86-64");
    CHECK(select_check_dot() == (forced ? check_dot_scalar : avx2),
          "the output check uses the AVX2 products here (the scalar ones under APL_FORCE_SCALAR=1)");
  } else {
    avx2 = nullptr;  // this CPU cannot run it
  }
#endif
  if (!avx2) {
    CHECK(select_check_dot() == check_dot_scalar, "no AVX2 products: the check uses the scalar ones");
    return;
  }
  for (int64_t cols : {(int64_t)1, (int64_t)3, (int64_t)17, (int64_t)203, (int64_t)2048})
    for (int nr = 1; nr <= kCheckDotRows; nr++) {
      std::vector<float> x((size_t)(cols * 4)), fd((size_t)(2 * nr * cols));
      for (float& v : x) v = nd(g);
      for (size_t i = 0; i < fd.size(); i++) fd[i] = nd(g) * (i % 5 ? 1.0f : 1e4f);  // mixed magnitudes
      const float* f[kCheckDotRows];
      const float* d[kCheckDotRows];
      for (int r = 0; r < nr; r++) {
        f[r] = fd.data() + (2 * r) * cols;
        d[r] = fd.data() + (2 * r + 1) * cols;
      }
      double y0[4 * kCheckDotRows], q0[4 * kCheckDotRows], y1[4 * kCheckDotRows], q1[4 * kCheckDotRows];
      check_dot_scalar(x.data(), cols, nr, f, d, y0, q0);
      avx2(x.data(), cols, nr, f, d, y1, q1);
      CHECK(memcmp(y0, y1, sizeof(double) * 4 * nr) == 0 && memcmp(q0, q1, sizeof(double) * 4 * nr) == 0,
            "AVX2 check products = scalar bit for bit (cols %lld, %d rows): y[0] %.17g vs %.17g",
            (long long)cols, nr, y0[0], y1[0]);
      // The reference really is the float64 chain in column order (row 0, input 0).
      double a = 0;
      for (int64_t c = 0; c < cols; c++) a += (double)x[(size_t)(c * 4)] * (double)f[0][c];
      CHECK(a == y0[0], "check_dot_scalar is the column-order chain");
    }
}
