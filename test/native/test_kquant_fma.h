// The AVX2 kquant kernel built with FMA (kquant_avx2_fma.cc) against the plain build (kquant_avx2.cc): q,
// codes, d, dmin and the metrics' float64 sums bit for bit (it fuses only exact products, so the report is
// the same to the last digit), over the table's formats, shapes and dtypes and every heavy-tailed row.
// Included by test_kquant.cc (its run, student_t4, encode, same_metrics, kFormats and CHECK).
#pragma once

static void test_fma_same_bits() {
  const KqKernel* fma = kq_avx2_fma_kernel();
  const KqKernel* plain = kq_avx2_kernel();
#if defined(__x86_64__) || defined(_M_X64)
  const bool runs =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
#else
  const bool runs = false;
#endif
  if (!fma || !plain || !runs) {
    CHECK(!fma == !plain, "the FMA build is compiled in exactly where the plain AVX2 one is");
    printf("kquant: no FMA build runs here (not x86-64 with AVX2 and FMA)\n");
    return;
  }
  const char* no_fma = getenv("APL_NO_FMA");
  const char* force = getenv("APL_FORCE_SCALAR");
  const bool want_fma = !(no_fma && strcmp(no_fma, "1") == 0) && !(force && strcmp(force, "1") == 0);
  if (want_fma)
    CHECK(&kq_select_kernel() == fma, "kq_select_kernel takes the FMA build where the CPU has FMA");
  if (no_fma && strcmp(no_fma, "1") == 0)
    CHECK(&kq_select_kernel() == plain, "APL_NO_FMA=1 takes the plain build");
  const int64_t shapes[][2] = {{5, 1536}, {3, 1000}, {4, 37}, {2, 4096}, {7, 3072}};
  auto heavy = student_t4(7 * 4096, 11);
  int before = failures, n = 0;
  for (const KqParams& p : kFormats)
    for (auto& sh : shapes)
      for (int dtype : {kF32, kF16, kBF16}) {
        const int64_t rows = sh[0], cols = sh[1];
        std::vector<float> x(heavy.begin(), heavy.begin() + rows * cols);
        for (int64_t i = 0; i < cols && rows > 2; i++)
          x[(size_t)(2 * cols + i)] = 3.0f + 1e-3f * x[(size_t)i];
        auto data = encode(x, dtype);
        KOut a = run(data, dtype, rows, cols, p, plain, 2), b = run(data, dtype, rows, cols, p, fma, 2);
        n++;
        CHECK(a.st.status == b.st.status && a.q == b.q && a.c == b.c && a.d == b.d && a.m == b.m,
              "FMA build: outputs differ (bits %d G %d, %lldx%lld, dtype %d)", p.bits, p.group,
              (long long)rows, (long long)cols, dtype);
        CHECK(same_metrics(a.st.metrics, b.st.metrics),
              "FMA build: metrics not bit-exact (bits %d G %d, %lldx%lld, dtype %d): rel %.17g / %.17g, cos "
              "%.17g / "
              "%.17g",
              p.bits, p.group, (long long)rows, (long long)cols, dtype, a.st.metrics.rel_error,
              b.st.metrics.rel_error, a.st.metrics.cosine, b.st.metrics.cosine);
      }
  // Short rows of mixed magnitudes (2-bit: tiny x against a coarse w, so x − w has more bits than half a
  // float64 and (x − w)² is inexact): a few terms per chain, where fusing an inexact product would change the
  // sums' last bits (fusing the error chain (x − w)² fails 14 of these 300; the exact products none).
  std::mt19937 g(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const KqParams p2{2, 16, 256, 4, 4};
  for (int t = 0; t < 300; t++, n++) {
    std::vector<float> x(64);
    for (size_t i = 0; i < x.size(); i++) x[i] = nd(g) * (i % 3 ? 1.0f : 1e-3f);
    auto data = encode(x, kF32);
    KOut a = run(data, kF32, 2, 32, p2, plain), b = run(data, kF32, 2, 32, p2, fma);
    CHECK(a.q == b.q && a.c == b.c && same_metrics(a.st.metrics, b.st.metrics),
          "FMA build: short mixed rows %d: rel %.17g / %.17g", t, a.st.metrics.rel_error,
          b.st.metrics.rel_error);
  }
  printf("kquant: the FMA build = the plain AVX2 build bit for bit, metrics included, on %d inputs%s\n", n,
         failures == before ? "" : " -- NO, see the failures above");
}
