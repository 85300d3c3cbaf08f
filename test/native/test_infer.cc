// Plain C++ tests of the inference kernels (no Node), so that arm64 builds can run them under qemu
// (test/native/run-arm64.sh): every variant this CPU runs against the scalar reference over the table of
// test/unit/native/infer-kernels.test.ts (bits × group sizes × odd shapes × f16/f32 scales × 1/3/19 tokens):
// packed weights bit for bit, the reference within the int8-rounding bound of float64 maths; float weights
// (f32/f16/bf16), dotf and axpyf (bit for bit for the NEON kernel, which keeps the reference's order; within
// a float32 bound for the x86 ones); threads; the forward pass with a float16 KV cache against float32; and
// kquant weights (two-level scales, infer/kquant_ref.h): every kquant variant the CPU's kernels pair with
// (kq_kernel_for: the NEON ones on arm64) against the scalar reference bit for bit, over the layouts of
// test/unit/native/infer-kquant.test.ts × odd shapes × 1/3/17/19 tokens.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../../native/src/infer/kquant_linear.h"
#include "../../native/src/infer/kquant_ref.h"
#include "../../native/src/infer/linear.h"
#include "../../native/src/infer/model.h"
#include "../../native/src/infer/ref.h"
#include "check.h"

using namespace apl;
using namespace apl::infer;

/** A packed weight with its storage: random codes (and padding bits), scales ~ N(0, 0.05²), zeros in range.
 */
struct Packed {
  std::vector<uint8_t> q, s, z;
  Linear w;
};
static Packed random_packed(int64_t rows, int64_t cols, int bits, int64_t group, bool f16, unsigned seed) {
  Packed p;
  std::mt19937 g(seed);
  p.q.resize((size_t)(rows * packed_row_bytes(cols, bits)));
  for (auto& b : p.q) b = (uint8_t)(g() & 255);
  const int64_t n = rows * groups_per_row(cols, group);
  std::vector<float> s = gaussian((size_t)n, seed + 1, 0.05f), z((size_t)n);
  const int qmax = (1 << bits) - 1;
  for (auto& v : z) v = bits == 1 ? 0.5f : (float)(g() % (unsigned)(qmax * 4 + 1)) / 4.0f;
  p.s = encode(s, f16 ? kF16 : kF32);
  p.z = encode(z, f16 ? kF16 : kF32);
  p.w.kind = 0;
  p.w.rows = rows;
  p.w.cols = cols;
  p.w.bits = bits;
  p.w.group = group;
  p.w.f16 = f16;
  p.w.q = p.q.data();
  p.w.scales = p.s.data();
  p.w.zeros = p.z.data();
  return p;
}

struct Floats {
  std::vector<uint8_t> data;
  Linear w;
};
static Floats random_float(int64_t rows, int64_t cols, int dtype, unsigned seed) {
  Floats f;
  f.data = encode(gaussian((size_t)(rows * cols), seed, 0.05f), dtype);
  f.w.kind = 1;
  f.w.rows = rows;
  f.w.cols = cols;
  f.w.dtype = dtype;
  f.w.data = f.data.data();
  return f;
}

static std::vector<float> run_linear(const Linear& w, const std::vector<float>& x, int64_t n, const Kernel& k,
                                     int threads = 1) {
  std::vector<float> y((size_t)(n * w.rows), -12345.0f);
  ActQ act;
  linear(w, x.data(), n, y.data(), shared_pool(threads), k, act);
  return y;
}

/**
 * |y − float64 y| bound (as infer-kernels.test.ts): packed weights, the int8 rounding of the activations
 * (Σ|Ŵ|·dx/2) plus float32 arithmetic on (q + |z|)·|s|·(|x| + dx); float weights, float32 arithmetic.
 */
static void check_exact(const Linear& w, const std::vector<float>& x, int64_t n, const std::vector<float>& y,
                        const std::string& what) {
  const int64_t G = w.kind == 0 ? w.group : w.cols, gpr = groups_per_row(w.cols, G);
  std::vector<float> row((size_t)w.cols);
  int bad = 0;
  for (int64_t t = 0; t < n; t++) {
    std::vector<double> dx((size_t)gpr);
    for (int64_t g = 0; g < gpr; g++) {
      double m = 0;
      for (int64_t c = g * G; c < std::min(w.cols, (g + 1) * G); c++)
        m = std::max(m, (double)std::fabs(x[t * w.cols + c]));
      dx[(size_t)g] = m / 127;
    }
    for (int64_t r = 0; r < w.rows; r++) {
      dequantize_row_any(w, r, row.data());
      double s = 0, act = 0, mag = 0;
      for (int64_t c = 0; c < w.cols; c++) {
        double wc = row[(size_t)c], xc = x[t * w.cols + c], d = dx[(size_t)(c / G)], m = std::fabs(wc);
        if (w.kind == 0) {
          const int64_t gi = r * gpr + c / G;
          m = ((double)packed_at(w.q + r * w.row_bytes(), c, w.bits) +
               std::fabs(load_param(w.zeros, gi, w.f16))) *
              std::fabs(load_param(w.scales, gi, w.f16));
        }
        s += wc * xc;
        act += std::fabs(wc) * (d / 2);
        mag += m * (std::fabs(xc) + d);
      }
      double tol = w.kind == 0 ? act * 1.001 + (double)(gpr + 16) * std::ldexp(1.0, -22) * mag
                               : (double)(w.cols + 8) * std::ldexp(1.0, -23) * mag + 1e-30;
      double v = y[(size_t)(t * w.rows + r)];
      if (!(std::fabs(v - s) <= tol) && bad++ < 3)
        CHECK(false, "%s: y[%lld, %lld] = %.9g, float64 %.9g (bound %.3g)", what.c_str(), (long long)t,
              (long long)r, v, s, tol);
    }
  }
  CHECK(bad == 0, "%s: %d outputs outside the bound", what.c_str(), bad);
}

// {6, 2112}: several blocks of 8 groups of the AVX-512 wide path at every group size, then tail groups; {3,
// 4673}: its decode in memory order (wide_rows_seq), 18 blocks of groups of 32 (runs of 16 + 2), odd rows,
// tails
static const int64_t kShapes[][2] = {{1, 1},    {3, 31},  {17, 64},  {5, 100},  {13, 203},
                                     {37, 256}, {9, 320}, {4, 1088}, {6, 2112}, {3, 4673}};
static const int64_t kGroups[] = {7, 32, 64, 96, 128, 0};  // 0: per row

static void test_packed() {
  auto variants = available_kernels();
  printf("inference variants (best last):");
  for (auto* v : variants) printf(" %s", v->name);
  printf("; selected %s\n", select_kernel().name);
  unsigned seed = 1;
  int cases = 0;
  for (int bits : {1, 2, 4, 8})
    for (auto& sh : kShapes)
      for (int64_t g0 : kGroups) {
        const int64_t rows = sh[0], cols = sh[1], group = g0 ? g0 : cols;
        if (group > cols && g0 != 96) continue;
        for (bool f16 : {true, false}) {
          Packed p = random_packed(rows, cols, bits, group, f16, ++seed);
          for (int64_t n : {1, 3, 19}) {
            std::vector<float> x = gaussian((size_t)(n * cols), ++seed);
            if (n == 3) std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero token
            char what[128];
            snprintf(what, sizeof what, "%d-bit %lldx%lld g%lld %s n%lld", bits, (long long)rows,
                     (long long)cols, (long long)group, f16 ? "f16" : "f32", (long long)n);
            std::vector<float> ref = run_linear(p.w, x, n, scalar_kernel());
            check_exact(p.w, x, n, ref, std::string("scalar ") + what);
            for (size_t i = 1; i < variants.size(); i++) {
              size_t at = 0;
              std::vector<float> out = run_linear(p.w, x, n, *variants[i]);
              CHECK(same_bits(out, ref, &at), "%s %s: [%zu] %.9g, the reference %.9g", variants[i]->name,
                    what, at, out[at], ref[at]);
            }
            cases++;
          }
        }
      }
  CHECK(cases > 300, "only %d cases", cases);
  printf("  packed weights: %d cases (bits x shape x group x scale dtype x tokens), %zu variants\n", cases,
         variants.size());
}

static bool is_neon(const Kernel* k) { return strncmp(k->name, "neon", 4) == 0; }

/** Float paths: bit for bit for the NEON kernel; within (n + 8)·2^-23·Σ|a·b| for the others. */
static void check_float(const Kernel* k, const std::vector<float>& out, const std::vector<float>& ref,
                        const std::vector<double>& mag, const char* what) {
  if (is_neon(k)) {
    size_t at = 0;
    CHECK(same_bits(out, ref, &at), "%s %s: [%zu] %.9g, the reference %.9g", k->name, what, at, out[at],
          ref[at]);
    return;
  }
  for (size_t i = 0; i < out.size(); i++)
    if (!(std::fabs((double)out[i] - ref[i]) <= mag[i])) {
      CHECK(false, "%s %s: [%zu] %.9g, the reference %.9g (bound %.3g)", k->name, what, i, out[i], ref[i],
            mag[i]);
      return;
    }
}

static void test_float() {
  auto variants = available_kernels();
  unsigned seed = 5000;
  int cases = 0;
  for (int dtype : {kF32, kF16, kBF16})
    for (auto& sh : kShapes) {
      const int64_t rows = sh[0], cols = sh[1];
      Floats f = random_float(rows, cols, dtype, ++seed);
      for (int64_t n : {1, 3, 19}) {
        std::vector<float> x = gaussian((size_t)(n * cols), ++seed);
        std::vector<float> ref = run_linear(f.w, x, n, scalar_kernel());
        char what[96];
        snprintf(what, sizeof what, "float dtype %d %lldx%lld n%lld", dtype, (long long)rows, (long long)cols,
                 (long long)n);
        check_exact(f.w, x, n, ref, std::string("scalar ") + what);
        std::vector<double> mag(ref.size());
        std::vector<float> row((size_t)cols);
        for (int64_t t = 0; t < n; t++)
          for (int64_t r = 0; r < rows; r++) {
            dequantize_row_any(f.w, r, row.data());
            double m = 0;
            for (int64_t c = 0; c < cols; c++) m += std::fabs((double)row[(size_t)c] * x[t * cols + c]);
            mag[(size_t)(t * rows + r)] = (double)(cols + 8) * std::ldexp(1.0, -22) * m + 1e-30;
          }
        for (size_t i = 1; i < variants.size(); i++)
          check_float(variants[i], run_linear(f.w, x, n, *variants[i]), ref, mag, what);
        cases++;
      }
    }
  for (int64_t len : {1, 7, 8, 9, 64, 100, 257}) {
    std::vector<float> a = gaussian((size_t)len, 77 + (unsigned)len),
                       b = gaussian((size_t)len, 78 + (unsigned)len);
    std::vector<float> y0 = gaussian((size_t)len, 79 + (unsigned)len);
    float ref = scalar_kernel().dotf(a.data(), b.data(), len);
    std::vector<float> yr = y0;
    scalar_kernel().axpyf(0.37f, a.data(), yr.data(), len);
    double m = 0;
    for (int64_t i = 0; i < len; i++) m += std::fabs((double)a[(size_t)i] * b[(size_t)i]);
    std::vector<double> mag{(double)(len + 8) * std::ldexp(1.0, -22) * m + 1e-30};
    std::vector<double> amag((size_t)len, 0.0);
    for (int64_t i = 0; i < len; i++)
      amag[(size_t)i] = std::ldexp(1.0, -22) * (std::fabs(y0[(size_t)i]) + std::fabs(0.37 * a[(size_t)i]));
    for (size_t i = 1; i < variants.size(); i++) {
      char what[48];
      snprintf(what, sizeof what, "dotf/axpyf n%lld", (long long)len);
      check_float(variants[i], {variants[i]->dotf(a.data(), b.data(), len)}, {ref}, mag, what);
      std::vector<float> yv = y0;
      variants[i]->axpyf(0.37f, a.data(), yv.data(), len);
      check_float(variants[i], yv, yr, amag, what);
    }
  }
  printf("  float weights: %d cases (dtype x shape x tokens); dotf, axpyf\n", cases);
}

static void test_threads() {
  Packed p = random_packed(301, 512, 4, 64, true, 7);
  std::vector<float> x = gaussian(40 * 512, 8);
  for (const Kernel* k : available_kernels()) {
    std::vector<float> a = run_linear(p.w, x, 40, *k, 1), b = run_linear(p.w, x, 40, *k, 2);
    size_t at = 0;
    CHECK(same_bits(a, b, &at), "%s: 1 and 2 threads differ at %zu", k->name, at);
    for (int64_t t : {0, 17, 39}) {
      std::vector<float> xt(x.begin() + t * 512, x.begin() + (t + 1) * 512);
      std::vector<float> one = run_linear(p.w, xt, 1, *k);
      std::vector<float> part(a.begin() + t * 301, a.begin() + (t + 1) * 301);
      CHECK(same_bits(one, part, &at), "%s: token %lld alone differs at %zu", k->name, (long long)t, at);
    }
  }
}

#include "test_infer_split.h"

/**
 * linears(): q/k/v- and gate/up-like weights in one decode dispatch (rows end to end, tasks across weight
 * boundaries) give each weight's linear() bit for bit, every variant, 1–3 threads; mixed bits fall back.
 */
static void test_linears() {
  test_decode_split();
  const std::vector<float> x = gaussian(512, 31);
  int cases = 0;
  for (int bits : {4, 2, 8, 1}) {
    std::vector<Packed> ps;
    unsigned seed = 40 + (unsigned)bits;
    for (int64_t rows : {301, 33, 46}) ps.push_back(random_packed(rows, 512, bits, 64, true, ++seed));
    if (bits == 8) ps[1] = random_packed(33, 512, 4, 64, true, 99);  // mixed bits: one linear each
    std::vector<Floats> fs;
    for (int64_t rows : {75, 9}) fs.push_back(random_float(rows, 512, kBF16, ++seed));
    for (const Kernel* k : available_kernels())
      for (int threads : {1, 2, 3}) {
        for (bool fl : {false, true}) {
          const size_t count = fl ? fs.size() : ps.size();
          std::vector<std::vector<float>> ys(count);
          std::vector<LinearOut> outs;
          for (size_t i = 0; i < count; i++) {
            const Linear& w = fl ? fs[i].w : ps[i].w;
            ys[i].assign((size_t)w.rows, -12345.0f);
            outs.push_back({&w, ys[i].data()});
          }
          ActQ act;
          decode_guided() = threads == 3;  // the guided split (APL_DEC_GUIDED=1) at 3 threads
          linears(outs.data(), (int)count, x.data(), 1, shared_pool(threads), *k, act);
          decode_guided() = false;
          for (size_t i = 0; i < count; i++) {
            std::vector<float> want = run_linear(*outs[i].w, x, 1, *k, 1);
            size_t at = 0;
            CHECK(same_bits(ys[i], want, &at),
                  "%s linears %s%d-bit, %d threads: weight %zu differs at row %zu", k->name,
                  fl ? "bf16 " : "", fl ? 16 : bits, threads, i, at);
            cases++;
          }
        }
      }
  }
  printf("  linears (one decode dispatch): %d weight cases, decode_split over 40 sizes x threads\n", cases);
}

/** A tiny random model (4-bit groups of 32, GQA 4:2) over the forward pass. */
struct TinyModel {
  ModelConfig c;
  std::vector<Packed> packed;
  std::vector<float> ones;
  ModelWeights w;
  TinyModel() {
    c.hidden = 64;
    c.inter = 96;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.head_dim = 16;
    c.vocab = 50;
    c.eps = 1e-5f;
    c.context = 24;
    for (int64_t i = 0; i < c.head_dim / 2; i++)
      c.inv_freq.push_back((float)(1.0 / std::pow(10000.0, (double)(2 * i) / (double)c.head_dim)));
    ones.assign((size_t)c.hidden, 1.0f);
    unsigned seed = 900;
    auto add = [&](int64_t rows, int64_t cols) {
      packed.push_back(random_packed(rows, cols, 4, 32, true, ++seed));
      return packed.size() - 1;
    };
    const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
    std::vector<size_t> ids{add(c.vocab, c.hidden), add(c.vocab, c.hidden)};
    for (int64_t l = 0; l < c.layers; l++)
      for (auto rc :
           {std::make_pair(qd, c.hidden), std::make_pair(kvd, c.hidden), std::make_pair(kvd, c.hidden),
            std::make_pair(c.hidden, qd), std::make_pair(c.inter, c.hidden),
            std::make_pair(c.inter, c.hidden), std::make_pair(c.hidden, c.inter)})
        ids.push_back(add(rc.first, rc.second));
    // pointers once every weight is in place (the vector no longer moves)
    size_t i = 0;
    w.embed = packed[ids[i++]].w;
    w.lm_head = packed[ids[i++]].w;
    w.final_norm = ones.data();
    for (int64_t l = 0; l < c.layers; l++) {
      LayerWeights L;
      L.in_norm = L.post_norm = ones.data();
      L.q = packed[ids[i++]].w;
      L.k = packed[ids[i++]].w;
      L.v = packed[ids[i++]].w;
      L.o = packed[ids[i++]].w;
      L.gate = packed[ids[i++]].w;
      L.up = packed[ids[i++]].w;
      L.down = packed[ids[i++]].w;
      w.layers.push_back(L);
    }
  }
  /** All logits of tokens at positions 0..n−1 in one call, or the last one of each call token by token. */
  std::vector<float> run(const Kernel& k, bool f16, bool one_by_one, int64_t* kv_bytes = nullptr) {
    ModelConfig cc = c;
    cc.kv_f16 = f16;
    Model m(cc, w, 2, k);
    if (kv_bytes) *kv_bytes = m.kv_bytes();
    const int32_t toks[] = {1, 7, 49, 3, 3, 12, 0, 31, 8, 22, 40, 5, 17, 2, 9, 30, 11, 44, 6, 25};
    const int64_t n = 20;
    std::vector<float> out((size_t)(n * c.vocab));
    if (!one_by_one) {
      m.forward(toks, n, 0, true, out.data());
    } else {
      for (int64_t t = 0; t < n; t++) m.forward(toks + t, 1, t, false, out.data() + t * c.vocab);
    }
    return out;
  }
};

static void test_kv_cache() {
  TinyModel tm;
  int64_t b16 = 0, b32 = 0;
  std::vector<float> a32 = tm.run(scalar_kernel(), false, false, &b32);
  std::vector<float> a16 = tm.run(scalar_kernel(), true, false, &b16);
  const int64_t expect = 2 * tm.c.layers * tm.c.context * tm.c.kv_heads * tm.c.head_dim;  // K and V values
  CHECK(b32 == expect * 4 && b16 == expect * 2, "KV bytes f32 %lld, f16 %lld, expected %lld and %lld",
        (long long)b32, (long long)b16, (long long)(expect * 4), (long long)(expect * 2));
  double mx = 0, diff = 0;
  for (size_t i = 0; i < a32.size(); i++) {
    mx = std::max(mx, (double)std::fabs(a32[i]));
    diff = std::max(diff, (double)std::fabs(a16[i] - a32[i]));
  }
  // float16 K/V round each value by at most 2^-11 relative, but the next layers' int8 activations then round
  // some values the other way: the logits move by the int8-activation error itself (measured 1.6e-2 of the
  // largest logit here; 5e-2 bounds packed against float forwards in the JavaScript tests too).
  CHECK(diff > 0 && diff <= 5e-2 * mx, "f16 vs f32 KV: max |Δlogit| %.3g, max |logit| %.3g", diff, mx);
  printf(
      "  forward: f16 vs f32 KV cache max |dlogit| %.3g (max |logit| %.3g, bound 5e-2 of it); KV %lld vs "
      "%lld bytes\n",
      diff, mx, (long long)b16, (long long)b32);
  for (bool f16 : {true, false}) {
    std::vector<float> ref = f16 ? a16 : a32;
    size_t at = 0;
    std::vector<float> inc = tm.run(scalar_kernel(), f16, true);
    CHECK(same_bits(inc, ref, &at),
          "kv %s: token by token differs from the prompt at once at %zu (%.9g vs %.9g)", f16 ? "f16" : "f32",
          at, inc[at], ref[at]);
    for (const Kernel* k : available_kernels()) {
      if (k == &scalar_kernel()) continue;
      std::vector<float> o = tm.run(*k, f16, false);
      if (is_neon(k)) {  // every NEON path keeps the reference's order
        CHECK(same_bits(o, ref, &at),
              "%s kv %s forward differs from the scalar reference at %zu (%.9g vs %.9g)", k->name,
              f16 ? "f16" : "f32", at, o[at], ref[at]);
      } else {
        double d = 0;
        for (size_t i = 0; i < o.size(); i++) d = std::max(d, (double)std::fabs(o[i] - ref[i]));
        CHECK(d <= 1e-3 * mx, "%s kv %s forward: max |Δ| %.3g from the scalar reference", k->name,
              f16 ? "f16" : "f32", d);
      }
    }
  }
}

#include "test_infer_act.h"
#include "test_infer_amx.h"
#include "test_infer_kquant.h"
#include "test_infer_wide.h"

int main() {
  // a NEON path whose self-check fails aborts instead of falling back to the reference silently
  setenv("APL_REQUIRE_SELF_CHECK", "1", 1);
  const char* fs = getenv("APL_FORCE_SCALAR");
  if (fs && strcmp(fs, "1") == 0)
    CHECK(strcmp(select_kernel().name, "scalar") == 0, "APL_FORCE_SCALAR=1 ignored");
  printf("inference kernel tests (kernel in use: %s)\n", select_kernel().name);
#if defined(__aarch64__)
  CHECK(neon_kernel() != nullptr && (fs && strcmp(fs, "1") == 0 ? true : is_neon(&select_kernel())),
        "arm64 does not use the NEON kernel (%s)", select_kernel().name);
#endif
  // The run-time choice: test/native/run-arm64.sh runs this program on emulated CPUs with and without the
  // dot-product extension and names the kernel each must choose.
  const char* want = getenv("APL_EXPECT_KERNEL");
  // run.sh expects avx512-amx from the CPU's flags; where the OS refuses the tile state the engine must fall
  // back to avx512-gemm, and that is what is checked then.
  if (want && strcmp(want, "avx512-amx") == 0 && amx_unusable()) {
    printf("AMX (avx512-amx): SKIPPED here: %s; expecting avx512-gemm\n", amx_unusable());
    want = "avx512-gemm";
  }
  if (want && *want)
    CHECK(strcmp(select_kernel().name, want) == 0, "the kernel chosen is %s, expected %s on this CPU",
          select_kernel().name, want);
  // kquant (convert's default format): the variant paired with the kernel in use; on arm64 the NEON one
  // (APL_EXPECT_KERNEL names both: the pairs share their names), unless APL_FORCE_SCALAR=1.
  const KqKernel& kq = kq_kernel_for(select_kernel());
  printf("kquant kernel: %s\n", kq.name);
  if (want && *want)
    CHECK(strcmp(kq.name, want) == 0, "the kquant kernel chosen is %s, expected %s on this CPU", kq.name,
          want);
#if defined(__aarch64__)
  if (!(fs && strcmp(fs, "1") == 0))
    CHECK(strncmp(kq.name, "neon", 4) == 0, "arm64 does not use a NEON kquant kernel (%s)", kq.name);
#endif
  test_packed();
  test_packed_extremes();
  test_act_edges();
  test_float();
  test_threads();
  test_linears();
  test_kv_cache();
  test_kquant();
  test_amx();
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
