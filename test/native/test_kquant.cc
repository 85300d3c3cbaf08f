// Plain C++ tests of the two-level-scale kernels (kquant.h): the AVX2 variant against the scalar reference
// (q, codes, d, dmin bit-exact) over a table of formats, dtypes and shapes; the fast dequantizer against the
// reference; error limits; metrics; threads; NaN/overflow errors; edge cases; the CUDA path when a GPU is
// present, and the GPU output check's products (kquant_check.h) run on the CPU against the CPU check. Built
// and run by test/native/run.sh.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/kquant_check.h"
#include "../../native/src/kquant_engine.h"

using namespace apl;

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

struct KOut {
  std::vector<uint8_t> q, c, d, m;
  QuantStatus st;
  KqTensor tensor(int64_t rows, int64_t cols, const KqParams& p) const {
    return KqTensor{q.data(), c.data(), d.data(), m.data(), rows, cols, p};
  }
};

static std::vector<uint8_t> encode(const std::vector<float>& x, int dtype) {
  std::vector<uint8_t> out(x.size() * dtype_size(dtype));
  for (size_t i = 0; i < x.size(); i++) {
    if (dtype == kF32) {
      memcpy(&out[i * 4], &x[i], 4);
    } else {
      uint16_t h = dtype == kF16 ? f32_to_f16(x[i]) : (uint16_t)(f32_bits(x[i]) >> 16);
      memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

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

static std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(g);
  return x;
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

static double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (size_t i = 0; i < a.size(); i++) {
    d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    n += (double)a[i] * a[i];
  }
  return std::sqrt(d / n);
}

static const KqParams kFormats[] = {{4, 24, 1536, 5, 6}, {4, 32, 256, 6, 6},   {2, 16, 256, 4, 4},
                                    {8, 32, 256, 6, 6},  {4, 16, 512, 5, 4},   {2, 24, 96, 3, 5},
                                    {8, 5, 15, 2, 3},    {4, 256, 4096, 8, 8}, {2, 1, 64, 1, 1}};

static void test_variants_match_reference() {
  const KqKernel* simd = kq_avx2_kernel();
  const KqKernel& sel = kq_select_kernel();
  if (!simd || &sel == &kq_scalar_kernel()) {
    printf("kquant: no SIMD variant runs here (%s); only the reference is tested\n", sel.name);
    return;
  }
  const int64_t shapes[][2] = {{5, 1536}, {3, 1000}, {4, 37}, {2, 4096}, {1, 1}, {2, 3100}};
  auto heavy = student_t4(5 * 4096, 7);
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
        auto data = encode(x, dtype);
        KOut a = run(data, dtype, rows, cols, p, &kq_scalar_kernel());
        KOut b = run(data, dtype, rows, cols, p, simd, 2);
        bool same = a.q == b.q && a.c == b.c && a.d == b.d && a.m == b.m;
        CHECK(a.st.status == kOk && b.st.status == kOk, "status %d %d", a.st.status, b.st.status);
        CHECK(same, "avx2 differs: bits %d G %d S %d codes %d/%d shape %lldx%lld dtype %d", p.bits, p.group,
              p.super, p.sbits, p.mbits, (long long)rows, (long long)cols, dtype);
        CHECK(std::fabs(a.st.metrics.rel_error - b.st.metrics.rel_error) <= 1e-9 * a.st.metrics.rel_error,
              "metrics differ");
        auto w0 = dequant(a, rows, cols, p, false), w1 = dequant(a, rows, cols, p, true);
        CHECK(memcmp(w0.data(), w1.data(), w0.size() * 4) == 0, "fast dequantize differs (G %d bits %d)",
              p.group, p.bits);
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
  CheckIn(int64_t rows_, int64_t cols, int64_t n, bool sum_squares) {
    x = gaussian((size_t)(n * cols), 77);
    for (int32_t r = 1; r < rows_; r += 3) rows.push_back(r);
    job.x = x.data();
    job.n = n;
    job.rows = rows.data();
    job.m = (int64_t)rows.size();
    job.sum_squares = sum_squares;
  }
};

static bool same(const CheckOut& a, const CheckOut& b) {
  return a.f_sq == b.f_sq && a.y_sq == b.y_sq && a.dy_sq == b.dy_sq && a.ref_sq == b.ref_sq;
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
      CheckIn in(rows, cols, n, true);
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
      CHECK(a.y_sq > 0 && a.dy_sq > 0 && a.f_sq > 0 && a.ref_sq > 0, "check sums are filled");
    }
}

/**
 * Σw² of a split bf16 tensor (OutputCheck's block tasks: four blocks' chains advanced together) against the
 * plain definition, accuracy.ts sumSquares: one float64 chain per 65536-value block in element order, the
 * blocks summed in order. 11 whole blocks and a partial one (tasks of 8 blocks: a group of four, a group of
 * four and the rest).
 */
static void test_sum_squares_blocks() {
  for (int64_t rows : {177, 64, 3}) {
    const int64_t cols = 4096, total = rows * cols;
    auto data = encode(student_t4((size_t)total, (unsigned)rows), kBF16);
    QuantJob input{};
    input.data = data.data();
    input.dtype = kBF16;
    input.rows = rows;
    input.cols = cols;
    CheckJob cj;
    cj.sum_squares = true;
    OutputCheck chk(input, cj, [](int64_t, float*) {});
    for (int64_t t = 0; t < chk.tasks(); t++) chk.run_task(t);
    double want = 0;
    for (int64_t b0 = 0; b0 < total; b0 += 65536) {
      double s = 0;
      for (int64_t i = b0; i < std::min(total, b0 + 65536); i++) {
        uint16_t h;
        memcpy(&h, data.data() + i * 2, 2);
        double f = bf16_to_f32(h);
        s += f * f;
      }
      want += s;
    }
    CHECK(chk.finish().ref_sq == want, "Σw² of %lld bf16 values: %.17g, want %.17g", (long long)total,
          chk.finish().ref_sq, want);
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
    CheckIn in(rows, cols, n, true);
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
  printf("kquant kernel: %s\n", kq_select_kernel().name);
  test_variants_match_reference();
  test_error_limits();
  test_edges_and_errors();
  test_gpu_check_host();
  test_sum_squares_blocks();
  test_gpu();
  printf("kquant: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
