// The activations' quantization at its edges (test_infer's part for the variants' own quantize_act, e.g. the
// AVX-512 kernel's vector form, cpu/infer_act512.h): groups of exact rounding ties (x · inv = k + ½, where
// rintf goes to the even neighbour), all zeros (amax 0), a denormal amax (127 / amax overflows: inv = inf,
// 0 · inf = NaN), values near the float32 maximum, tiny values, constant groups, and NaN or ±inf in one
// group. Every variant against the scalar reference bit for bit, through the linear (a wrong byte, scale or
// sum of the activations changes the integer sums or the combine), at 1, 2, 4 and 8 bits, groups of 7, 32,
// 64, 96 and 128, rows with and without tails, decode and 3 tokens. Included by test_infer.cc after its
// helpers.
#pragma once

#include <cstdarg>
#include <limits>
#include <string>

/**
 * Every variant but the scalar one against the scalar reference on w and x (n tokens), bit for bit (with
 * nan_same, any NaN matches any NaN: the payload is not the quantization's); `what` names the case.
 */
static void check_variants_bits(const Linear& w, const std::vector<float>& x, int64_t n,
                                const std::string& what, bool nan_same = false) {
  auto variants = available_kernels();
  const std::vector<float> ref = run_linear(w, x, n, scalar_kernel());
  for (size_t i = 1; i < variants.size(); i++) {
    const std::vector<float> out = run_linear(w, x, n, *variants[i]);
    size_t bad = out.size();
    for (size_t j = 0; j < out.size() && bad == out.size(); j++)
      if (memcmp(&out[j], &ref[j], 4) != 0 && !(nan_same && std::isnan(out[j]) && std::isnan(ref[j])))
        bad = j;
    CHECK(bad == out.size(), "%s %s: [%zu] %.9g, the reference %.9g", variants[i]->name, what.c_str(), bad,
          bad < out.size() ? out[bad] : 0.0f, bad < ref.size() ? ref[bad] : 0.0f);
  }
}

/** printf into a string (the case names of check_variants_bits). */
static std::string case_name(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static std::string case_name(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

/** One group's values by pattern p (see above), x[lo, hi) of one token. */
static void act_edge_group(float* x, int64_t lo, int64_t hi, int p, std::mt19937& g) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t i = lo; i < hi; i++) {
    const int64_t j = i - lo;
    float v = nd(g);
    switch (p) {
      case 1:  // ties: amax 127 gives inv = 1, so x · inv = x = k + ½
        v = j == 0 ? (g() % 2 ? 127.0f : -127.0f)
                   : (float)((int)(g() % 253) - 126) + (g() % 2 ? 0.5f : -0.5f);
        break;
      case 2:
        v = 0.0f;
        break;
      case 3:  // a denormal amax: inv = inf; the zeros become NaN
        v = j % 3 == 0 ? 0.0f : (j % 3 == 1 ? 1e-40f : -3e-41f);
        break;
      case 4:
        v *= 1e37f;
        break;
      case 5:
        v *= 1e-30f;
        break;
      case 6:
        v = 0.3f;
        break;
      default:
        break;
    }
    x[i] = v;
  }
}

static void test_act_edges() {
  int cases = 0;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int bits : {1, 2, 4, 8})
    for (int64_t group : {7, 32, 64, 96, 128})
      for (int64_t cols : {int64_t{2 * 8 * 128 + 96}, int64_t{4 * 8 * 64}, int64_t{203}}) {
        Packed p = random_packed(5, cols, bits, group, true, (unsigned)(bits * 7000 + group + cols));
        const int64_t gpr = groups_per_row(cols, group);
        std::mt19937 g((unsigned)(cols * 31 + group));
        std::vector<float> x((size_t)(3 * cols));
        for (int64_t t = 0; t < 3; t++)
          for (int64_t gi = 0; gi < gpr; gi++)
            act_edge_group(x.data() + t * cols, gi * group, std::min(cols, gi * group + group),
                           (int)((gi + t) % 7), g);
        // 0: as generated; 1: a NaN in the second group of each token; 2: +inf there; 3: −inf
        for (int special = 0; special < 4; special++) {
          std::vector<float> xs = x;
          if (special)
            for (int64_t t = 0; t < 3; t++)
              xs[(size_t)(t * cols + std::min(cols - 1, group + 1))] =
                  special == 1 ? nan : (special == 2 ? inf : -inf);
          for (int64_t n : {1, 3}) {
            check_variants_bits(p.w, xs, n,
                                case_name("act. edges %d-bit 5x%lld g%lld special %d n%lld", bits,
                                          (long long)cols, (long long)group, special, (long long)n),
                                true);
            cases++;
          }
        }
      }
  CHECK(cases == 480, "%d activation edge cases", cases);
  printf("  activations at the quantization's edges: %d cases, %zu variants\n", cases,
         available_kernels().size());
}
