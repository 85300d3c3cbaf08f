// The AMX part of test_infer: the prompt GEMM on AMX tiles (avx512-amx, cpu/infer_amx.cc) against the scalar
// reference bit for bit, on token counts that fill one or more 16-token tiles plus tails, across the
// 128-token blocks of the schedule, with 1 and 2 threads. On a CPU (or OS) without AMX-INT8 it says SKIPPED
// and why. Included by test_infer.cc after its helpers (CHECK, random_packed, run_linear...).
#pragma once

static void test_amx() {
  const char* why = amx_unusable();
  const Kernel* k = kernel_by_name("avx512-amx");
  if (why) {
    printf("  AMX (avx512-amx): SKIPPED here: %s\n", why);
    CHECK(k == nullptr, "avx512-amx is listed although AMX is unusable (%s)", why);
    return;
  }
  CHECK(k != nullptr && k->gemm != nullptr, "AMX is usable but avx512-amx is not listed");
  if (!k || !k->gemm) return;
  CHECK(strcmp(kq_kernel_for(*k).name, "avx512-amx") == 0, "avx512-amx pairs with kquant kernel %s",
        kq_kernel_for(*k).name);
  static const int64_t shapes[][2] = {{16, 64}, {33, 1088}, {5, 4673}, {20, 320}};
  unsigned seed = 9000;
  int cases = 0;
  for (int bits : {4, 8, 2, 1})
    for (auto& sh : shapes)
      for (int64_t group : {64, 128, 192}) {
        const int64_t rows = sh[0], cols = sh[1];
        if (group > cols) continue;
        Packed p = random_packed(rows, cols, bits, group, (bits + group / 64) % 2 == 0, ++seed);
        for (int64_t n : {16, 35, 150}) {
          CHECK(k->gemm->fits(p.w, n), "avx512-amx does not take %lld tokens of g%lld", (long long)n,
                (long long)group);
          std::vector<float> x = gaussian((size_t)(n * cols), ++seed);
          std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero token
          x[(size_t)(3 * cols)] = 1e4f;                             // a group whose other values round to 0
          const std::vector<float> ref = run_linear(p.w, x, n, scalar_kernel());
          for (int threads : {1, 2}) {
            const std::vector<float> out = run_linear(p.w, x, n, *k, threads);
            size_t at = 0;
            CHECK(same_bits(out, ref, &at),
                  "avx512-amx %d-bit %lldx%lld g%lld n%lld, %d threads: [%zu] %.9g, "
                  "the reference %.9g",
                  bits, (long long)rows, (long long)cols, (long long)group, (long long)n, threads, at,
                  out[at], ref[at]);
          }
          cases++;
        }
      }
  printf("  AMX (avx512-amx): %d cases bit-exact with the scalar reference (1 and 2 threads)\n", cases);
}
