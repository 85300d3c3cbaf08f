// Plain C++ tests of the two-level-scale kernels (kquant.h): each SIMD variant this CPU runs (AVX2 on x86-64,
// NEON on arm64) against the scalar reference (status, q, codes, d, dmin bit-exact; NEON's metrics too) over
// a table of formats, dtypes and shapes and over edge inputs (tails, zeros, subnormals, huge, NaN/inf); each
// variant's dequantizer against the reference; the kernel kq_select_kernel chooses; error limits; metrics;
// threads; NaN/overflow errors; edge cases; the CUDA path when a GPU is present, and the GPU output check's
// products (kquant_check.h) run on the CPU against the CPU check. Built and run by
// test/native/run.sh (x86-64) and test/native/run-arm64.sh (arm64, under qemu).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/env.h"
#include "../../native/src/kquant_check.h"
#include "../../native/src/kquant_engine.h"
#include "check.h"

using namespace apl;

struct KOut {
  std::vector<uint8_t> q, c, d, m;
  QuantStatus st;
  KqTensor tensor(int64_t rows, int64_t cols, const KqParams& p) const {
    return KqTensor{q.data(), c.data(), d.data(), m.data(), rows, cols, p};
  }
};

static KOut run(const std::vector<uint8_t>& data, int dtype, int64_t rows, int64_t cols, const KqParams& p,
                const KqKernel* k, int threads = 1, bool metrics = true) {
  KOut o;
  o.q.assign((size_t)(rows * packed_row_bytes(cols, p.bits)), 0xAA);
  o.c.assign((size_t)(rows * kq_code_row_bytes(cols, p)), 0xAA);
  o.d.assign((size_t)(rows * kq_supers_per_row(cols, p.super) * 2), 0xAA);
  o.m = o.d;
  KqJob j{data.data(), dtype, rows, cols, p, metrics, o.q.data(), o.c.data(), o.d.data(), o.m.data()};
  o.st = kq_quantize_cpu(j, threads, nullptr, k);
  return o;
}

static std::vector<float> student_t4(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::chi_squared_distribution<float> c(4.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(g) / std::sqrt(c(g) / 4.0f);
  return x;
}

static std::vector<float> dequant(const KOut& o, int64_t rows, int64_t cols, const KqParams& p, bool fast) {
  std::vector<float> w((size_t)(rows * cols));
  KqTensor t = o.tensor(rows, cols, p);
  if (fast) {
    kq_dequantize(t, w.data(), 2);
  } else {
    for (int64_t r = 0; r < rows; r++) kq_dequantize_row(t, r, w.data() + r * cols);
  }
  return w;
}

static const KqParams kFormats[] = {{4, 24, 1536, 5, 6}, {4, 32, 256, 6, 6},   {2, 16, 256, 4, 4},
                                    {8, 32, 256, 6, 6},  {4, 16, 512, 5, 4},   {2, 24, 96, 3, 5},
                                    {8, 5, 15, 2, 3},    {4, 256, 4096, 8, 8}, {2, 1, 64, 1, 1}};

static bool same_metrics(const MetricsOut& a, const MetricsOut& b) {
  return memcmp(&a.rel_error, &b.rel_error, 8) == 0 && memcmp(&a.snr_db, &b.snr_db, 8) == 0 &&
         memcmp(&a.cosine, &b.cosine, 8) == 0 && memcmp(&a.max_abs, &b.max_abs, 8) == 0;
}

/** Every element of a tensor dequantized by k's dequantize_row equals the reference's, bit for bit. */
static bool same_dequant(const KOut& o, int64_t rows, int64_t cols, const KqParams& p, const KqKernel& k) {
  KqTensor t = o.tensor(rows, cols, p);
  std::vector<float> a((size_t)cols), b((size_t)cols);
  for (int64_t r = 0; r < rows; r++) {
    kq_dequantize_row(t, r, a.data());
    std::fill(b.begin(), b.end(), -1.0f);
    k.dequantize_row(t, r, b.data());
    if (memcmp(a.data(), b.data(), a.size() * 4) != 0) return false;
  }
  return true;
}

/**
 * The variant against the reference on one input: status, bad index, error text, q, codes, d, dmin, and the
 * metrics (bit-exact for NEON, whose float64 sums run in the reference's order; within 1e-9 for AVX2, whose
 * sums run per lane); then its dequantizer on the reference's output.
 */
static void compare(const KqKernel& k, const std::vector<float>& x, int dtype, int64_t rows, int64_t cols,
                    const KqParams& p, const char* what) {
  auto data = encode(x, dtype);
  KOut a = run(data, dtype, rows, cols, p, &kq_scalar_kernel());
  KOut b = run(data, dtype, rows, cols, p, &k, 2);
  char ctx[200];
  snprintf(ctx, sizeof ctx, "%s differs (%s): bits %d G %d S %d codes %d/%d shape %lldx%lld dtype %d",
           k.build ? k.build : k.name, what, p.bits, p.group, p.super, p.sbits, p.mbits, (long long)rows,
           (long long)cols, dtype);
  CHECK(a.st.status == b.st.status && a.st.bad == b.st.bad && a.st.error == b.st.error,
        "%s: status %d/%d bad %lld/%lld", ctx, a.st.status, b.st.status, (long long)a.st.bad,
        (long long)b.st.bad);
  if (a.st.status != kOk) return;  // the outputs are partial; where they stop depends on threads
  CHECK(a.q == b.q, "%s: q", ctx);
  CHECK(a.c == b.c, "%s: codes", ctx);
  CHECK(a.d == b.d && a.m == b.m, "%s: d/dmin", ctx);
  if (strcmp(k.name, "neon") == 0)
    CHECK(same_metrics(a.st.metrics, b.st.metrics),
          "%s: metrics not bit-exact (rel %.17g / %.17g, max %.17g / %.17g)", ctx, a.st.metrics.rel_error,
          b.st.metrics.rel_error, a.st.metrics.max_abs, b.st.metrics.max_abs);
  else
    CHECK(std::fabs(a.st.metrics.rel_error - b.st.metrics.rel_error) <= 1e-9 * a.st.metrics.rel_error,
          "%s: metrics", ctx);
  CHECK(same_dequant(a, rows, cols, p, k), "%s: dequantize_row", ctx);
}

#include "test_kquant_fma.h"
#include "test_kquant_row.h"

static void test_variants_match_reference() {
  auto variants = simd_variants();
  const KqKernel& sel = kq_select_kernel();
  const char* force = getenv("APL_FORCE_SCALAR");
  if (force && strcmp(force, "1") == 0) {
    CHECK(&sel == &kq_scalar_kernel(), "APL_FORCE_SCALAR=1 chose %s", sel.name);
  } else if (!variants.empty()) {
    // a variant this CPU runs that reproduces the reference (kq_agrees) is chosen: a failing one falls back
    CHECK(&sel == variants[0], "kq_select_kernel chose %s, not %s: it disagrees with the reference", sel.name,
          variants[0]->name);
  }
  const char* want = getenv("APL_EXPECT_KERNEL");  // test/native/run-arm64.sh names the kernel to choose
  if (want && *want)
    CHECK(strcmp(sel.name, want) == 0, "the kquant kernel chosen is %s, expected %s", sel.name, want);
  if (variants.empty()) {
    printf("kquant: no SIMD variant runs here; only the reference is tested\n");
    return;
  }
  const int64_t shapes[][2] = {{5, 1536}, {3, 1000}, {4, 37}, {2, 4096}, {1, 1}, {2, 3100}};
  auto heavy = student_t4(5 * 4096, 7);
  for (const KqKernel* k : variants) {
    int before = failures;
    for (const KqParams& p : kFormats)
      for (auto& sh : shapes)
        for (int dtype : {kF32, kF16, kBF16}) {
          int64_t rows = sh[0], cols = sh[1];
          std::vector<float> x(heavy.begin(), heavy.begin() + rows * cols);
          if (rows > 2)
            for (int64_t i = 2 * cols; i < 3 * cols; i++) x[(size_t)i] = 5.0f + 0.001f * x[(size_t)i];  // far
          if (rows > 3)
            for (int64_t i = 3 * cols; i < 4 * cols; i++)
              x[(size_t)i] = (i % 7) ? 0.0f : x[(size_t)i];  // sparse
          compare(*k, x, dtype, rows, cols, p, "table");
        }
    printf("kquant: %s matches the reference over %zu formats x %zu shapes x 3 dtypes%s\n",
           k->build ? k->build : k->name, sizeof kFormats / sizeof kFormats[0],
           sizeof shapes / sizeof shapes[0], failures == before ? "" : " -- NO, see the failures above");
  }
}

/**
 * The variants on the inputs at the edges of the reference's definition: odd sizes and every tail length
 * (cols around the vector widths and group ends), zeros of both signs, constant groups, subnormals, huge
 * values (still in range, and past the f16 super-scales: kScaleOverflow), NaN and ±inf (kNonFinite, first
 * bad index, in the vector body and the tail, through the f16/bf16 decoders too).
 */
static void test_variant_edges() {
  auto variants = simd_variants();
  if (variants.empty()) return;
  const KqParams formats[] = {{4, 24, 1536, 5, 6}, {2, 16, 256, 4, 4}, {8, 32, 256, 6, 6},
                              {4, 5, 20, 3, 2},    {2, 1, 64, 1, 1},   {4, 12, 48, 6, 6}};
  for (const KqKernel* k : variants) {
    int before = failures;
    for (const KqParams& p : formats) {
      // every tail: cols 1..70, then around a super-block and its groups
      auto g = gaussian(3 * 1600, 11);
      for (int64_t cols : {1,  2,  3,  4,  5,  7,  8,  9,   15,  16,   17,   23,  24,
                           25, 31, 33, 47, 63, 65, 70, 255, 257, 1535, 1537, 1599}) {
        std::vector<float> x(g.begin(), g.begin() + 3 * cols);
        compare(*k, x, kF32, 3, cols, p, "tail");
      }
      const int64_t cols = 203;
      std::vector<float> x((size_t)(4 * cols));
      for (int64_t i = 0; i < 4 * cols; i++) {
        float v = std::sin((float)i * 0.37f);
        if (i / cols == 0) v = (i % 3) ? ((i % 2) ? 0.0f : -0.0f) : v;  // zeros of both signs
        if (i / cols == 1) v = (i % 40 < 20) ? -0.0f : 1.5f;            // constant groups, -0 runs
        if (i / cols == 2) v = v * 1e-39f;                              // subnormal
        if (i / cols == 3) v = v * 3e6f;                                // huge, still in the f16 range
        x[(size_t)i] = v;
      }
      for (int dtype : {kF32, kF16, kBF16})
        compare(*k, x, dtype, 4, cols, p, "zeros/constant/subnormal/huge");
      std::vector<float> zero((size_t)(2 * cols), -0.0f);
      compare(*k, zero, kF32, 2, cols, p, "all -0");
      // past the f16 super-scales: kScaleOverflow at the same super-block
      std::vector<float> big(x.begin(), x.begin() + 2 * cols);
      for (int64_t i = cols + 100; i < 2 * cols; i++) big[(size_t)i] = (i % 2 ? 3e9f : -3e9f);
      compare(*k, big, kF32, 2, cols, p, "overflow");
      std::vector<float> fmax(x.begin(), x.begin() + cols);
      fmax[7] = 3.4e38f;
      fmax[8] = -3.4e38f;
      compare(*k, fmax, kF32, 1, cols, p, "float max");
      // Every third group quiet (row 0 ×0.01, row 1 ×0.02) beside loud ones: small scale codes.
      std::vector<float> quiet(x.begin(), x.begin() + 2 * cols);
      for (int64_t i = 0; i < 2 * cols; i++)
        quiet[(size_t)i] *= (i / p.group) % 3 ? 1.0f : 0.01f * (1 + i / cols);
      compare(*k, quiet, kF32, 2, cols, p, "quiet groups");
      // Narrow groups below zero with a few positive values beside loud groups that never go below zero: the
      // narrow ones set dmin (min code >= 1) but round to scale code 0, so 1/s is not finite there (the
      // reference's inv = off = 0; a kernel that kept inf would push their q to the top code).
      for (float loud : {20.0f, 50.0f, 400.0f}) {
        std::vector<float> nar(x.begin(), x.begin() + 2 * cols);
        for (int64_t i = 0; i < 2 * cols; i++) {
          const float u = 0.5f + 0.5f * std::sin((float)i * 0.91f);  // in [0, 1]
          nar[(size_t)i] = (i / p.group) % 2 ? loud * u : -0.3f + 0.35f * u;
        }
        compare(*k, nar, kF32, 2, cols, p, "narrow groups below zero, scale code 0");
      }
      // non-finite values in the body and the tail, the first wins; through each decoder
      for (int64_t at : {(int64_t)0, (int64_t)5, (int64_t)17, cols - 1}) {
        for (float bad : {NAN, INFINITY, -INFINITY}) {
          std::vector<float> y(x.begin(), x.begin() + 3 * cols);
          y[(size_t)(cols + at)] = bad;
          y[(size_t)(2 * cols + 1)] = NAN;  // a later row: not the first
          for (int dtype : {kF32, kF16, kBF16}) compare(*k, y, dtype, 3, cols, p, "non-finite");
        }
      }
    }
    printf("kquant: %s matches the reference on tails, zeros, subnormals, huge and non-finite input%s\n",
           k->build ? k->build : k->name, failures == before ? "" : " -- NO, see the failures above");
  }
}

static void test_error_limits() {
  const int64_t rows = 64, cols = 4096;
  auto g = gaussian((size_t)(rows * cols), 1), t = student_t4((size_t)(rows * cols), 2);
  struct L {
    KqParams p;
    double gmax, tmax;
  } lims[] = {{{4, 24, 1536, 5, 6}, 0.071, 0.086},
              {{2, 16, 256, 4, 4}, 0.29, 0.34},
              {{8, 32, 256, 6, 6}, 0.0065, 0.0085}};
  for (auto& l : lims)
    for (int k = 0; k < 2; k++) {
      auto& x = k ? t : g;
      KOut o = run(encode(x, kF32), kF32, rows, cols, l.p, nullptr, 2);
      double e = rel_err(x, dequant(o, rows, cols, l.p, false));
      CHECK(e < (k ? l.tmax : l.gmax), "%d-bit %s error %.4f", l.p.bits, k ? "t4" : "gauss", e);
      CHECK(std::fabs(o.st.metrics.rel_error - e) < 1e-6, "metrics %.6f vs %.6f", o.st.metrics.rel_error, e);
      MetricsOut m = kq_error_metrics(encode(x, kF32).data(), kF32, o.tensor(rows, cols, l.p), 2);
      CHECK(std::fabs(m.rel_error - e) < 1e-9, "errorMetrics %.6f vs %.6f", m.rel_error, e);
    }
}

static void test_edges_and_errors() {
  KqParams p{4, 24, 1536, 5, 6};
  const int64_t rows = 40, cols = 100;
  auto x = gaussian((size_t)(rows * cols), 3);
  x[(size_t)(17 * cols + 9)] = NAN;
  x[(size_t)(30 * cols + 2)] = INFINITY;
  for (int th : {1, 2, 3}) {
    KOut o = run(encode(x, kF32), kF32, rows, cols, p, nullptr, th);
    CHECK(o.st.status == kNonFinite && o.st.bad == 17 * cols + 9, "threads %d: status %d bad %lld", th,
          o.st.status, (long long)o.st.bad);
    CHECK(o.st.error.find("NaN at index 1709 (row 17, column 9)") != std::string::npos, "message: %s",
          o.st.error.c_str());
  }
  std::vector<float> big(64, 3e9f);
  big[3] = -3e9f;
  KOut ov = run(encode(big, kF32), kF32, 1, 64, p, nullptr);
  CHECK(ov.st.status == kScaleOverflow && ov.st.bad == 0, "overflow: status %d", ov.st.status);
  CHECK(ov.st.error.find("f16 super-scales") != std::string::npos, "overflow message: %s",
        ov.st.error.c_str());
  for (float c : {0.0f, -2.5f, 7.0f}) {
    std::vector<float> k(300, c);
    for (const KqParams& f : kFormats) {
      KOut o = run(encode(k, kF32), kF32, 1, 300, f, nullptr);
      for (float v : dequant(o, 1, 300, f, false))
        CHECK(std::fabs(v - c) <= std::fabs(c) * 2e-3f, "constant %g (bits %d G %d): %g", c, f.bits, f.group,
              v);
    }
  }
  std::vector<float> tiny(48);
  for (size_t i = 0; i < tiny.size(); i++) tiny[i] = (float)i * 1e-7f;
  KOut d = run(encode(tiny, kF32), kF32, 1, 48, p, nullptr);
  CHECK(d.st.status == kOk, "tiny values");
  for (float v : dequant(d, 1, 48, p, false)) CHECK(std::isfinite(v), "tiny output %g", v);
  // Threads do not change anything.
  auto y = gaussian(300 * 1000, 4);
  KOut a = run(encode(y, kF32), kF32, 300, 1000, p, nullptr, 1),
       b = run(encode(y, kF32), kF32, 300, 1000, p, nullptr, 3);
  CHECK(a.q == b.q && a.c == b.c && a.d == b.d && a.m == b.m, "thread count changed the output");
  CHECK(a.st.metrics.rel_error == b.st.metrics.rel_error, "thread count changed the metrics");
  CHECK(kq_check_params(KqParams{3, 24, 1536, 5, 6}).find("bits") != std::string::npos, "bits check");
  CHECK(kq_check_params(KqParams{4, 24, 1000, 5, 6}).find("multiple") != std::string::npos, "super check");
  CHECK(kq_check_params(KqParams{4, 24, 1536, 9, 6}).find("code widths") != std::string::npos, "codes check");
  CHECK(kq_check_params(KqParams{4, 24, 1536, 5, 6}).empty(), "good params");
  // Cancellation.
  Control ctl;
  ctl.cancel = true;
  std::vector<uint8_t> q((size_t)(300 * 500)), c((size_t)(300 * 100)), dd((size_t)(300 * 4)), mm = dd;
  auto yd = encode(y, kF32);
  KqJob j{yd.data(), kF32, 300, 1000, p, false, q.data(), c.data(), dd.data(), mm.data()};
  CHECK(kq_quantize_cpu(j, 2, &ctl).status == kCancelled, "cancel");
}

/** Sampled rows and inputs for an output check: every third row from 1, n inputs (fixed normal values). */
struct CheckIn {
  std::vector<float> x;
  std::vector<int32_t> rows;
  CheckJob job;
  CheckIn(int64_t rows_, int64_t cols, int64_t n) {
    x = gaussian((size_t)(n * cols), 77);
    for (int32_t r = 1; r < rows_; r += 3) rows.push_back(r);
    job.x = x.data();
    job.n = n;
    job.rows = rows.data();
    job.m = (int64_t)rows.size();
  }
};

static bool same(const CheckOut& a, const CheckOut& b) {
  return a.f_sq == b.f_sq && a.y_sq == b.y_sq && a.dy_sq == b.dy_sq;
}

/**
 * The GPU path's output check without a GPU: the sampled rows gathered (kq_gather) and every (row, input)
 * pair's products by kq_check_pair, the function cuda/check.cu's kernel runs, then OutputCheck with those
 * products must give the CPU check (products fused into the quantization, the selected kernel's dequantizer)
 * bit for bit.
 */
static void test_gpu_check_host() {
  const int dtypes[] = {kF32, kF16, kBF16};
  for (const KqParams& p : kFormats)
    for (int dt : dtypes) {
      const int64_t rows = 29, cols = 1000 + p.group * 3 + 1, n = 5;
      auto data = encode(student_t4((size_t)(rows * cols), 21), dt);
      KOut o;
      o.q.assign((size_t)(rows * packed_row_bytes(cols, p.bits)), 0);
      o.c.assign((size_t)(rows * kq_code_row_bytes(cols, p)), 0);
      o.d.assign((size_t)(rows * kq_supers_per_row(cols, p.super) * 2), 0);
      o.m = o.d;
      KqJob j{data.data(), dt, rows, cols, p, true, o.q.data(), o.c.data(), o.d.data(), o.m.data()};
      CheckIn in(rows, cols, n);
      QuantJob input{};
      input.data = j.data;
      input.dtype = dt;
      input.rows = rows;
      input.cols = cols;
      KqTensor t = o.tensor(rows, cols, p);
      const KqKernel* k = &kq_select_kernel();
      OutputCheck fused(input, in.job, [t, k](int64_t r, float* dst) { k->dequantize_row(t, r, dst); });
      o.st = kq_quantize_cpu(j, 2, nullptr, nullptr, &fused);
      CHECK(o.st.status == kOk && o.st.has_check, "quantize with check: %s", o.st.error.c_str());
      // What the GPU path does, on the CPU.
      KqGathered g = kq_gather(j, in.job);
      KqTensor gt = g.tensor(j, in.job.m);
      std::vector<double> y((size_t)(n * in.job.m));
      std::vector<float> yq(y.size());
      for (int64_t jj = 0; jj < in.job.m; jj++) {
        std::vector<float> want((size_t)cols), got((size_t)cols);
        kq_dequantize_row(t, in.rows[(size_t)jj], want.data());
        kq_dequantize_row(gt, jj, got.data());
        CHECK(want == got, "gathered row %lld dequantizes as its source row", (long long)jj);
        for (int64_t i = 0; i < n; i++)
          kq_check_pair(g.raw.data(), dt, gt, jj, in.x.data() + i * cols, &y[(size_t)(i * in.job.m + jj)],
                        &yq[(size_t)(i * in.job.m + jj)]);
      }
      OutputCheck after(input, in.job, [](int64_t, float*) {});
      after.set_products(y.data(), yq.data());
      for (int64_t i = 0; i < after.tasks(); i++) after.run_task(i);
      CheckOut a = o.st.check, b = after.finish();
      CHECK(same(a, b), "GPU-path check on the CPU differs (bits %d G %d dtype %d): dy² %.17g vs %.17g",
            p.bits, p.group, dt, a.dy_sq, b.dy_sq);
      CHECK(a.y_sq > 0 && a.dy_sq > 0 && a.f_sq > 0, "check sums are filled");
    }
}

static void test_gpu() {
#ifdef APL_HAVE_CUDA
  GpuInfo g = gpu_info();
  if (!g.available) {
    printf("kquant: GPU test SKIPPED: no usable GPU here (%s)\n", g.reason.c_str());
    return;
  }
  for (const KqParams& p : kFormats) {
    const int64_t rows = 37, cols = 3100;
    auto x = student_t4((size_t)(rows * cols), 9);
    auto data = encode(x, kF32);
    KOut a = run(data, kF32, rows, cols, p, &kq_scalar_kernel());
    KOut b;
    b.q.assign(a.q.size(), 0);
    b.c.assign(a.c.size(), 0);
    b.d.assign(a.d.size(), 0);
    b.m.assign(a.m.size(), 0);
    KqJob j{data.data(), kF32, rows, cols, p, true, b.q.data(), b.c.data(), b.d.data(), b.m.data()};
    b.st = kq_quantize(j, 1, 1, nullptr);
    CHECK(b.st.status == kOk, "gpu: %s", b.st.error.c_str());
    CHECK(a.q == b.q && a.c == b.c && a.d == b.d && a.m == b.m, "GPU differs (bits %d G %d)", p.bits,
          p.group);
  }
  // The output check with its products on the GPU equals the CPU's, bit for bit.
  for (const KqParams& p : kFormats) {
    const int64_t rows = 41, cols = 2100, n = 6;
    auto data = encode(gaussian((size_t)(rows * cols), 5), kBF16);
    CheckIn in(rows, cols, n);
    CheckOut out[2];
    for (int gpu = 0; gpu < 2; gpu++) {
      KOut o;
      o.q.assign((size_t)(rows * packed_row_bytes(cols, p.bits)), 0);
      o.c.assign((size_t)(rows * kq_code_row_bytes(cols, p)), 0);
      o.d.assign((size_t)(rows * kq_supers_per_row(cols, p.super) * 2), 0);
      o.m = o.d;
      KqJob j{data.data(), kBF16, rows, cols, p, true, o.q.data(), o.c.data(), o.d.data(), o.m.data()};
      QuantStatus st = kq_quantize(j, gpu ? 1 : 0, 2, nullptr, &in.job);
      CHECK(st.status == kOk && st.has_check, "check (gpu %d): %s", gpu, st.error.c_str());
      CHECK(!gpu || st.backend.find("output check on the CPU") == std::string::npos,
            "check ran on the GPU: %s", st.backend.c_str());
      out[gpu] = st.check;
    }
    CHECK(same(out[0], out[1]), "GPU output check differs (bits %d G %d): dy² %.17g vs %.17g", p.bits,
          p.group, out[0].dy_sq, out[1].dy_sq);
  }
  printf("kquant: GPU test ran on %s\n", g.name.c_str());
#else
  printf("kquant: GPU test SKIPPED: this build has no CUDA (nvcc not found)\n");
#endif
}

int main() {
  printf("kquant kernel: %s (build %s)\n", kq_select_kernel().name,
         kq_select_kernel().build ? kq_select_kernel().build : "-");
  test_same_bits_as_plain();
  test_pack_codes_row();
  test_variants_match_reference();
  test_variant_edges();
  test_error_limits();
  test_edges_and_errors();
  test_gpu_check_host();
  test_gpu();
  printf("kquant: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
