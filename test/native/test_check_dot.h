// The output check's products (cpu/kernels.h check_dot_*): the AVX2 form against the scalar reference, bit
// for bit, called directly (select_check_dot() alone would hide a wrong variant behind its self-check), and
// which one the check uses. Included by test_kernels.cc (its CHECK macro and counters).
#pragma once

#include "../../native/src/cpu/kernels.h"

/**
 * One row's float products and Σ‖f‖² steps (check_frow_*: the Σ‖f‖² task of check.cc): the AVX2 form against
 * the scalar reference bit for bit, 0–9 blocks of inputs (the chain alone, within one pass of four, and in
 * several) and odd lengths; the reference against the plain definitions.
 */
static void test_check_frow(std::mt19937& g, bool forced) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  CheckFRow avx2 = check_frow_avx2();
#if defined(__x86_64__) || defined(_M_X64)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) {
    CHECK(avx2 != nullptr, "check_frow_avx2 is compiled in on x86-64");
    CHECK(select_check_frow() == (forced ? check_frow_scalar : avx2),
          "the Σ‖f‖² task uses the AVX2 row products here (the scalar ones under APL_FORCE_SCALAR=1)");
  } else {
    avx2 = nullptr;
  }
#endif
  (void)forced;
  for (int64_t cols : {(int64_t)1, (int64_t)3, (int64_t)17, (int64_t)203, (int64_t)2048})
    for (int64_t nb : {(int64_t)0, (int64_t)1, (int64_t)2, (int64_t)3, (int64_t)4, (int64_t)5, (int64_t)9}) {
      std::vector<float> x((size_t)(std::max<int64_t>(1, nb) * cols * 4)), f((size_t)cols);
      for (float& v : x) v = nd(g);
      for (size_t i = 0; i < f.size(); i++) f[i] = nd(g) * (i % 5 ? 1.0f : 1e4f);
      std::vector<double> y0((size_t)(4 * nb + 1)), y1((size_t)(4 * nb + 1));
      double s0 = 0.1, s1 = 0.1;
      check_frow_scalar(x.data(), nb, cols, f.data(), y0.data(), &s0);
      // The definitions: the chain continued from *s, element by element; each product a column-order chain.
      double s = 0.1;
      for (int64_t c = 0; c < cols; c++) s += (double)f[(size_t)c] * (double)f[(size_t)c];
      bool defs = s == s0;
      for (int64_t b = 0; b < nb; b++)
        for (int t = 0; t < 4; t++) {
          double a = 0;
          for (int64_t c = 0; c < cols; c++)
            a += (double)x[(size_t)((b * cols + c) * 4 + t)] * (double)f[(size_t)c];
          defs = defs && a == y0[(size_t)(b * 4 + t)];
        }
      CHECK(defs, "check_frow_scalar is the Σ‖f‖² chain and the column-order products (cols %lld, nb %lld)",
            (long long)cols, (long long)nb);
      if (!avx2) continue;
      avx2(x.data(), nb, cols, f.data(), y1.data(), &s1);
      CHECK(s0 == s1 && memcmp(y0.data(), y1.data(), sizeof(double) * 4 * nb) == 0,
            "AVX2 row products = scalar bit for bit (cols %lld, %lld blocks): s %.17g vs %.17g",
            (long long)cols, (long long)nb, s0, s1);
    }
}

static void test_check_dot() {
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const char* fs = getenv("APL_FORCE_SCALAR");
  const bool forced = fs && strcmp(fs, "1") == 0;
  test_check_frow(g, forced);
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
      // The d chains alone (f null, as check.cc calls it): the same yq, y left as it was, both forms.
      for (CheckDot dot : {check_dot_scalar, avx2}) {
        double y2[4 * kCheckDotRows], q2[4 * kCheckDotRows];
        for (double& v : y2) v = -7;
        dot(x.data(), cols, nr, nullptr, d, y2, q2);
        bool kept = true;
        for (double v : y2) kept = kept && v == -7;
        CHECK(memcmp(q0, q2, sizeof(double) * 4 * nr) == 0 && kept,
              "d-only products = the full call's yq, y untouched (cols %lld, %d rows, %s)", (long long)cols,
              nr, dot == avx2 ? "avx2" : "scalar");
      }
      // The reference really is the float64 chain in column order (row 0, input 0).
      double a = 0;
      for (int64_t c = 0; c < cols; c++) a += (double)x[(size_t)(c * 4)] * (double)f[0][c];
      CHECK(a == y0[0], "check_dot_scalar is the column-order chain");
    }
}
