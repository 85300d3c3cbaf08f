// The kquant builds that fuse exact products (the AVX2 build with FMA, kquant_avx2_fma.cc, and the AVX-512
// build, kquant_avx512.cc) against the plain AVX2 build (kquant_avx2.cc): q, codes, d, dmin and the metrics'
// float64 sums bit for bit (so the report is the same to the last digit), over the table's formats, shapes
// and dtypes and every heavy-tailed row; which build kq_select_kernel takes under APL_NO_AVX512 / APL_NO_FMA;
// and the AVX-512 build's own widths (group counts around multiples of 16, short last groups) against the
// reference. Included by test_kquant.cc (its run, compare, student_t4, encode, same_metrics, kFormats and
// CHECK).
#pragma once

/** Whether the AVX-512 build runs here (kq_select_kernel's test, less the agreement check). */
static bool kq512_runs() {
#if defined(__x86_64__) || defined(_M_X64)
  return kq_avx512_kernel() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
         __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

/** The SIMD variants this CPU runs (each checked against the reference whatever kq_select_kernel chose). */
static std::vector<const KqKernel*> simd_variants() {
  std::vector<const KqKernel*> v;
#if defined(__x86_64__) || defined(_M_X64)
  const bool avx2 = kq_avx2_kernel() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  const char* nf =
      getenv("APL_NO_FMA");  // the FMA build first: kq_select_kernel takes it unless APL_NO_FMA=1
  const bool fma = avx2 && kq_avx2_fma_kernel() && __builtin_cpu_supports("fma");
  const bool no512 = apl::env_is_1("APL_NO_AVX512") || apl::env_is_1("APL_NO_FMA");
  if (kq512_runs() &&
      !no512) {  // chosen first: the 256-bit metrics' form where the CPU splits 512-bit operations
    v.push_back(cpu_splits_512() ? kq_avx512_ymm_kernel() : kq_avx512_kernel());
    v.push_back(cpu_splits_512() ? kq_avx512_kernel() : kq_avx512_ymm_kernel());
  }
  if (fma && !(nf && strcmp(nf, "1") == 0)) v.push_back(kq_avx2_fma_kernel());
  if (avx2) v.push_back(kq_avx2_kernel());
  if (fma && nf && strcmp(nf, "1") == 0) v.push_back(kq_avx2_fma_kernel());
  if (kq512_runs() && no512) {  // still checked
    v.push_back(kq_avx512_kernel());
    v.push_back(kq_avx512_ymm_kernel());
  }
#endif
  if (kq_neon_kernel()) v.push_back(kq_neon_kernel());  // NEON is baseline on aarch64 (nullptr elsewhere)
  return v;
}

/** `wide` = `plain` bit for bit, metrics included; returns the inputs compared. */
static int same_bits_as_plain(const KqKernel* wide, const KqKernel* plain) {
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
        KOut a = run(data, dtype, rows, cols, p, plain, 2), b = run(data, dtype, rows, cols, p, wide, 2);
        n++;
        CHECK(a.st.status == b.st.status && a.q == b.q && a.c == b.c && a.d == b.d && a.m == b.m,
              "%s build: outputs differ (bits %d G %d, %lldx%lld, dtype %d)", wide->build, p.bits, p.group,
              (long long)rows, (long long)cols, dtype);
        CHECK(same_metrics(a.st.metrics, b.st.metrics),
              "%s build: metrics not bit-exact (bits %d G %d, %lldx%lld, dtype %d): rel %.17g / %.17g",
              wide->build, p.bits, p.group, (long long)rows, (long long)cols, dtype, a.st.metrics.rel_error,
              b.st.metrics.rel_error);
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
    KOut a = run(data, kF32, 2, 32, p2, plain), b = run(data, kF32, 2, 32, p2, wide);
    CHECK(a.q == b.q && a.c == b.c && same_metrics(a.st.metrics, b.st.metrics),
          "%s build: short mixed rows %d: rel %.17g / %.17g", wide->build, t, a.st.metrics.rel_error,
          b.st.metrics.rel_error);
  }
  printf("kquant: the %s build = the plain AVX2 build bit for bit, metrics included, on %d inputs%s\n",
         wide->build, n, failures == before ? "" : " -- NO, see the failures above");
  return n;
}

/**
 * The AVX-512 build's widths against the reference: both presets and 8-bit, every group count of a
 * super-block around the multiples of 16 (1–17, 31–33, 47–49, 63, 64) with a full or a short last group,
 * f32/f16/bf16, and a NaN or inf in the last, short group.
 */
static void test_wide_group_counts(const KqKernel& k) {
  const KqParams formats[] = {{4, 24, 1536, 5, 6}, {2, 16, 256, 4, 4}, {8, 32, 256, 6, 6}};
  auto x = student_t4(3 * 1536 * 2, 13);
  int before = failures, n = 0;
  for (const KqParams& p : formats) {
    const int per = p.super / p.group;
    for (int ng : {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64}) {
      if (ng > per) continue;
      for (int64_t last : {(int64_t)p.group, (int64_t)1, (int64_t)p.group - 3}) {
        if (last < 1) continue;
        const int64_t cols =
            p.super + (int64_t)(ng - 1) * p.group + last;  // a whole super-block, then ng groups
        std::vector<float> y(x.begin(), x.begin() + 3 * cols);
        for (int dtype : {kF32, kF16, kBF16}) {
          compare(k, y, dtype, 3, cols, p, "group counts");
          n++;
        }
        std::vector<float> bad = y;
        bad[(size_t)(2 * cols - 1)] = (ng % 2) ? NAN : -INFINITY;
        compare(k, bad, kBF16, 3, cols, p, "non-finite in a short last group");
        n++;
      }
    }
    // test_variant_edges' narrow groups below zero (scale code 0: the reference's inv = off = 0), over whole
    // super-blocks, so that the 16-group vectors of kq_codes_inv_off meet them.
    for (float loud : {20.0f, 50.0f, 400.0f}) {
      const int64_t cols = 2 * p.super + 5 * p.group;
      std::vector<float> nar((size_t)(2 * cols));
      for (int64_t i = 0; i < 2 * cols; i++) {
        const float u = 0.5f + 0.5f * std::sin((float)i * 0.91f);
        nar[(size_t)i] = (i / p.group) % 2 ? loud * u : -0.3f + 0.35f * u;
      }
      compare(k, nar, kF32, 2, cols, p, "narrow groups below zero, scale code 0");
      n++;
    }
  }
  printf("kquant: %s matches the reference on %d group-count inputs%s\n", k.build, n,
         failures == before ? "" : " -- NO, see the failures above");
}

static void test_same_bits_as_plain() {
  const KqKernel* plain = kq_avx2_kernel();
  const KqKernel* wides[] = {kq_avx2_fma_kernel(), kq_avx512_kernel(), kq_avx512_ymm_kernel()};
#if defined(__x86_64__) || defined(_M_X64)
  const bool fma_runs = plain && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                        __builtin_cpu_supports("fma");
#else
  const bool fma_runs = false;
#endif
  CHECK(!wides[0] == !plain && !wides[1] == !plain && !wides[2] == !plain,
        "the FMA and AVX-512 builds are compiled in where AVX2 is");
  if (!fma_runs) {
    printf("kquant: no FMA build runs here (not x86-64 with AVX2 and FMA)\n");
    return;
  }
  const bool scalar = apl::env_is_1("APL_FORCE_SCALAR"), no512 = apl::env_is_1("APL_NO_AVX512"),
             no_fma = apl::env_is_1("APL_NO_FMA");
  const KqKernel* want = scalar                   ? &kq_scalar_kernel()
                         : no_fma                 ? plain
                         : kq512_runs() && !no512 ? wides[cpu_splits_512() ? 2 : 1]
                                                  : wides[0];
  CHECK(&kq_select_kernel() == want, "kq_select_kernel takes %s (APL_NO_AVX512=%d APL_NO_FMA=%d), not %s",
        want->build ? want->build : want->name, no512, no_fma,
        kq_select_kernel().build ? kq_select_kernel().build : kq_select_kernel().name);
  same_bits_as_plain(wides[0], plain);
  if (kq512_runs()) {
    same_bits_as_plain(wides[1], plain);
    same_bits_as_plain(wides[2], plain);
    test_wide_group_counts(*wides[1]);
    test_wide_group_counts(*wides[2]);
  } else {
    printf("kquant: the AVX-512 build does not run here (no AVX-512F/VL)\n");
  }
}
