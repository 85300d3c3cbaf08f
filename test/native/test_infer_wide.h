// The decode kernels' integer sums at their largest (test_infer's part for the AVX-512 wide decode, whose
// reduction adds the first lanes in 16 bits: cpu/infer_wide.h Wide::block_dec): every code at its maximum or
// zero, every activation at +127 or every one at −127 (so the lanes' sums reach the bound the 16-bit packs
// rely on, with either sign), and a mixed-sign pattern. Every variant against the scalar reference bit for
// bit, at 1, 2 and 4 bits, groups of 32, 64 and 128, even and odd numbers of 8-group blocks, tails, decode
// and 3 tokens. Included by test_infer.cc after its helpers (CHECK, random_packed, run_linear...) and
// test_infer_act.h (check_variants_bits).
#pragma once

static void test_packed_extremes() {
  int cases = 0;
  for (int bits : {1, 2, 4})
    for (int64_t group : {32, 64, 128})
      for (int64_t cols : {int64_t{4 * 8 * 128 + 96}, int64_t{5 * 8 * 64}, int64_t{3 * 8 * 128}}) {
        Packed p = random_packed(7, cols, bits, group, true, (unsigned)(bits * 1000 + group + cols));
        // rows 0-3: all codes at the maximum; rows 4-6: maximum and zero in alternate bytes
        const int64_t rb = p.w.row_bytes();
        for (int64_t r = 0; r < 7; r++)
          for (int64_t i = 0; i < rb; i++) p.q[(size_t)(r * rb + i)] = r < 4 || i % 2 ? 0xff : 0;
        for (int sign : {1, -1, 0}) {  // 0: mixed signs
          std::vector<float> x((size_t)(3 * cols));
          for (int64_t i = 0; i < 3 * cols; i++)
            x[(size_t)i] = sign ? (float)sign : ((i / 4) % 2 ? -1.0f : 1.0f) * (i % 3 == 0 ? 1.0f : 0.99f);
          for (int64_t n : {1, 3}) {
            check_variants_bits(p.w, x, n,
                                case_name("extremes %d-bit 7x%lld g%lld sign %d n%lld", bits, (long long)cols,
                                          (long long)group, sign, (long long)n));
            cases++;
          }
        }
      }
  CHECK(cases == 162, "%d extreme cases", cases);
  printf("  packed weights at the largest sums: %d cases, %zu variants\n", cases, available_kernels().size());
}
