// The kquant part of test_infer (two-level scales, infer/kquant_ref.h): every kquant variant the CPU's
// kernels pair with against the scalar reference bit for bit. Included by test_infer.cc after its helpers
// (CHECK, Kernel, kShapes...), as test_check_dot.h is by test_kernels.cc; kept apart so that neither file
// passes 500 lines.
#pragma once

struct KqLayout {
  int bits, group, super, sbits, mbits;
};
/** A kquant weight with its storage: random q and codes (every code, random padding bits), random positive
 * d and dmin (as infer-kquant.test.ts's randomKquant). */
struct KqPacked {
  std::vector<uint8_t> q, codes, d, dmin;
  Linear w;
};
static KqPacked random_kquant(int64_t rows, int64_t cols, const KqLayout& f, unsigned seed) {
  KqPacked p;
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(0.2f, 1.2f);
  p.w.kind = 2;
  p.w.rows = rows;
  p.w.cols = cols;
  p.w.bits = f.bits;
  p.w.group = f.group;
  p.w.kq_group = f.group;
  p.w.kq_super = f.super;
  p.w.kq_sbits = f.sbits;
  p.w.kq_mbits = f.mbits;
  p.q.resize((size_t)(rows * p.w.row_bytes()));
  p.codes.resize((size_t)(rows * kq_codes_row_bytes(p.w)));
  for (auto& b : p.q) b = (uint8_t)(g() & 255);
  for (auto& b : p.codes) b = (uint8_t)(g() & 255);
  const size_t ns = (size_t)(rows * kq_supers(p.w));
  p.d.resize(ns * 2);
  p.dmin.resize(ns * 2);
  for (size_t i = 0; i < ns; i++) {
    const uint16_t h = f32_to_f16(0.05f / (float)(1 << f.sbits) * u(g));
    const uint16_t m = f32_to_f16(0.05f * (float)(1 << f.bits) / (float)(1 << f.mbits) * u(g));
    memcpy(&p.d[i * 2], &h, 2);
    memcpy(&p.dmin[i * 2], &m, 2);
  }
  p.w.q = p.q.data();
  p.w.codes = p.codes.data();
  p.w.kd = p.d.data();
  p.w.kdmin = p.dmin.data();
  return p;
}

static std::vector<float> run_kquant(const Linear& w, const std::vector<float>& x, int64_t n,
                                     const KqKernel& k, int threads = 1) {
  std::vector<float> y((size_t)(n * w.rows), -12345.0f);
  ActQ act;
  kq_linear(w, x.data(), n, y.data(), shared_pool(threads), k, act);
  return y;
}

/** The kquant variants paired with this CPU's kernels (kq_kernel_for), the scalar reference first. */
static std::vector<const KqKernel*> kq_variants() {
  std::vector<const KqKernel*> v{&kq_scalar_kernel()};
  for (const Kernel* k : available_kernels()) {
    const KqKernel* q = &kq_kernel_for(*k);
    if (std::find(v.begin(), v.end(), q) == v.end()) v.push_back(q);
  }
  return v;
}

static void test_kquant() {
  static const KqLayout layouts[] = {
      {4, 24, 1536, 5, 6},  // what convert writes at 4 bits
      {2, 16, 256, 4, 4},   // what convert writes at 2 bits
      {4, 32, 256, 6, 6},
      {2, 24, 96, 4, 5},
      {4, 7, 63, 5, 3},  // groups not a multiple of 4
      // whole lanes of codes: 2 lanes a group, a super-block change inside a block, 16-bit code fields (the
      // scalar decode on NEON), 3 and 4 lanes at 2 bits, groups per super-block not a multiple of 4 or 8
      {4, 16, 512, 6, 4},
      {4, 24, 192, 8, 8},
      {2, 48, 384, 3, 7},
      {2, 64, 1024, 5, 5},
      {4, 8, 40, 4, 4},
      {8, 16, 128, 6, 6},
      {8, 64, 256, 8, 8},
      // NEON's blocks of 4 groups: 6 groups a super-block (scalar s and z), 12 (a change inside an 8-group
      // block), 14- and 15-bit fields (a block's fields start at bit 4 of a byte), 1 lane at 4 bits with 4
      // groups a super-block
      {4, 16, 96, 7, 7},
      {2, 16, 192, 6, 6},
      {4, 8, 32, 8, 6},
      {2, 32, 128, 8, 7},
      // NEON's natural-order path: 8 bits with groups not a multiple of 16 (and the largest group), groups of
      // 5 lanes, 5 values at 2 bits
      {8, 24, 96, 5, 6},
      {8, 256, 4096, 6, 6},
      {4, 40, 160, 6, 5},
      {2, 5, 20, 3, 3},
  };
  // {37, 2050}: the wide decode (infer_kquant_wide_dec.h) on many rows, split into chunks of 4 (1 thread) and
  // across 2 threads: the last blocks of a row read in place past its end, the weight's last row from a copy
  static const int64_t shapes[][2] = {{1, 1},    {3, 31},   {17, 64}, {5, 100},  {13, 203}, {9, 320},
                                      {4, 1088}, {3, 1600}, {7, 384}, {2, 4096}, {37, 2050}};
  auto variants = kq_variants();
  printf("  kquant variants:");
  for (auto* v : variants) printf(" %s", v->name);
  printf("\n");
  unsigned seed = 7000;
  int cases = 0;
  for (const KqLayout& f : layouts) {
    Linear probe;
    probe.kind = 2;
    probe.bits = f.bits;
    probe.group = f.group;
    probe.kq_super = f.super;
    probe.kq_sbits = f.sbits;
    probe.kq_mbits = f.mbits;
    CHECK(*kq_check_linear(probe) == 0, "layout %d-bit g%d/%d rejected: %s", f.bits, f.group, f.super,
          kq_check_linear(probe));
    for (auto& sh : shapes) {
      const int64_t rows = sh[0], cols = sh[1];
      KqPacked p = random_kquant(rows, cols, f, ++seed);
      for (int64_t n : {1, 3, 17, 19}) {
        std::vector<float> x = gaussian((size_t)(n * cols), ++seed);
        if (n == 3) std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero token
        if (n == 19) {
          for (int64_t c = 0; c < cols; c++) x[(size_t)(5 * cols + c)] *= 1e-30f;  // tiny values
          x[(size_t)(7 * cols + cols / 2)] = 1e6f;                                 // one huge value
        }
        char what[128];
        snprintf(what, sizeof what, "kquant %d-bit g%d/%d codes %d+%d %lldx%lld n%lld", f.bits, f.group,
                 f.super, f.sbits, f.mbits, (long long)rows, (long long)cols, (long long)n);
        std::vector<float> ref = run_kquant(p.w, x, n, kq_scalar_kernel());
        // the kernel's own reference: kq_qdot_ref on act_quantize_ref's activations
        {
          std::vector<int8_t> xq((size_t)cols + 32);
          std::vector<float> dx((size_t)groups_per_row(cols, f.group));
          std::vector<int32_t> xs(dx.size());
          size_t bad = 0;
          for (int64_t t = 0; t < n; t++) {
            act_quantize_ref(x.data() + t * cols, cols, f.group, xq.data(), dx.data(), xs.data());
            for (int64_t r = 0; r < rows; r++)
              if (f32_bits(kq_qdot_ref(p.w, r, xq.data(), dx.data(), xs.data())) !=
                  f32_bits(ref[(size_t)(t * rows + r)]))
                bad++;
          }
          CHECK(bad == 0, "scalar %s: %zu outputs differ from kq_qdot_ref", what, bad);
        }
        for (size_t i = 1; i < variants.size(); i++) {
          size_t at = 0;
          std::vector<float> out = run_kquant(p.w, x, n, *variants[i]);
          CHECK(same_bits(out, ref, &at), "%s %s: [%zu] %.9g, the reference %.9g", variants[i]->name, what,
                at, out[at], ref[at]);
          if ((n == 19 || n == 1) && rows >= 9) {  // threads: rows and token tiles split across 2 workers
            out = run_kquant(p.w, x, n, *variants[i], 2);
            CHECK(same_bits(out, ref, &at), "%s %s, 2 threads: [%zu] %.9g, the reference %.9g",
                  variants[i]->name, what, at, out[at], ref[at]);
          }
        }
        cases++;
      }
    }
  }
  CHECK(cases >= 500, "only %d kquant cases", cases);
  printf("  kquant weights: %d cases (layout x shape x tokens), %zu variants\n", cases, variants.size());
}
