// Plain C++ tests of the kernels (no Node): every SIMD variant this CPU runs against the scalar reference
// over a table of all schemes — q, scales and zeros bit-exact — plus round-trip error limits, edge cases,
// NaN/Inf errors, threads and cancellation. Built and run by test/native/run.sh.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/engine.h"
#include "../../native/src/stats.h"
#include "check.h"
#ifdef APL_HAVE_CUDA
#include <chrono>

#include "../../native/src/cuda/cuda.h"
#endif

using namespace apl;

#include "test_check_dot.h"
#include "test_parallel.h"

struct Out {
  std::vector<uint8_t> q, s, z;
  QuantStatus st;
};

/** x in dtype's bytes, bfloat16 rounded to nearest even (check.h's encode truncates). */
static std::vector<uint8_t> encode_rne(const std::vector<float>& x, int dtype) {
  std::vector<uint8_t> b(x.size() * dtype_size(dtype));
  for (size_t i = 0; i < x.size(); i++) {
    if (dtype == kF32) {
      memcpy(&b[i * 4], &x[i], 4);
    } else {
      uint16_t h;
      if (dtype == kF16) {
        h = f32_to_f16(x[i]);
      } else {
        uint32_t u = f32_bits(x[i]);
        h = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
      }
      memcpy(&b[i * 2], &h, 2);
    }
  }
  return b;
}

static Out run(const std::vector<uint8_t>& data, int dtype, int64_t rows, int64_t cols, int bits,
               int64_t group, bool sym, bool opt, bool f16, const CpuKernel* k, int threads = 1,
               bool metrics = false) {
  Out o;
  int64_t gpr = groups_per_row(cols, group);
  o.q.assign((size_t)(rows * packed_row_bytes(cols, bits)), 0xee);
  o.s.assign((size_t)(rows * gpr * (f16 ? 2 : 4)), 0xee);
  o.z.assign(o.s.size(), 0xee);
  QuantJob j{data.data(), dtype, rows,    cols,       bits,       group,     sym,
             opt,         f16,   metrics, o.q.data(), o.s.data(), o.z.data()};
  o.st = quantize_cpu(j, threads, nullptr, k);
  return o;
}

static std::vector<float> student_t4(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::student_t_distribution<float> d(4.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

static std::vector<float> dequant(const Out& o, int64_t rows, int64_t cols, int bits, int64_t group,
                                  bool f16) {
  std::vector<float> w((size_t)(rows * cols));
  QTensor t{o.q.data(), o.s.data(), o.z.data(), rows, cols, bits, group, f16};
  dequantize(t, w.data(), 2);
  return w;
}

/** The SIMD variants compiled in that this CPU runs (__builtin_cpu_supports exists on x86 only). */
static std::vector<const CpuKernel*> simd_variants() {
  std::vector<const CpuKernel*> v;
#if defined(__x86_64__) || defined(_M_X64)
  if (avx2_kernel() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
    v.push_back(avx2_kernel());
  if (avx512_kernel() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    v.push_back(avx512_kernel());
#endif
  if (neon_kernel()) v.push_back(neon_kernel());
  return v;
}

static void test_variants_match_reference() {
  std::vector<const CpuKernel*> variants = simd_variants();
  printf("variants tested against the scalar reference:");
  for (auto* v : variants) printf(" %s", v->name);
  printf("%s\n", variants.empty() ? " none (this CPU has no SIMD variant)" : "");
  const int64_t rows = 6, cols = 203;
  std::vector<float> src = gaussian((size_t)(rows * cols), 7);
  std::vector<float> t = student_t4((size_t)(rows * cols), 8);
  // row 2: heavy tails; row 3: constant; row 4: zeros and tiny values; row 5: offset
  for (int64_t i = 0; i < cols; i++) {
    src[(size_t)(2 * cols + i)] = t[(size_t)i] * 3;
    src[(size_t)(3 * cols + i)] = 0.375f;
    src[(size_t)(4 * cols + i)] = i % 3 ? 0.0f : 1e-7f * (float)i;
    src[(size_t)(5 * cols + i)] = 4.0f + 0.01f * src[(size_t)i];
  }
  int combos = 0;
  for (int dtype : {kF32, kF16, kBF16}) {
    std::vector<uint8_t> data = encode_rne(src, dtype);
    for (int bits : {1, 2, 4, 8})
      for (int64_t group : {(int64_t)1, (int64_t)7, (int64_t)8, (int64_t)32, (int64_t)64, (int64_t)100, cols})
        for (bool sym : {false, true})
          for (bool opt : {false, true})
            for (bool f16 : {true, false}) {
              Out ref = run(data, dtype, rows, cols, bits, group, sym, opt, f16, &scalar_kernel());
              CHECK(ref.st.status == kOk, "reference failed: %s", ref.st.error.c_str());
              for (auto* k : variants) {
                Out o = run(data, dtype, rows, cols, bits, group, sym, opt, f16, k, 2);
                bool same = o.q == ref.q && o.s == ref.s && o.z == ref.z;
                CHECK(same, "%s differs from the reference: dtype %d bits %d group %lld sym %d opt %d f16 %d",
                      k->name, dtype, bits, (long long)group, sym, opt, f16);
              }
              combos++;
            }
  }
  printf("  %d combinations (dtype x bits x group x symmetric x mode x scale dtype)\n", combos);
}

/** One group of 8 quantized by hand from the spec (quant.h's header): exact values, for every kernel. */
struct SpecExample {
  const char* what;
  int bits;
  bool sym;
  float x[8];
  float scale, zero;
  std::vector<uint8_t> q;  // packed, first value in the lowest bits
};

static void test_spec_examples() {
  const SpecExample ex[] = {
      // asymmetric: scale = (max − min)/(2^bits − 1) = 2/3, zero = −min/scale = 1.5, q = rint(x/scale + zero)
      {"2-bit asymmetric",
       2,
       false,
       {-1, -0.5f, 0, 0.25f, 0.5f, 0.75f, 1, 0.125f},
       2.0f / 3.0f,
       1.5f,
       {164, 190}},
      // symmetric: zero = 2^(bits−1) = 8, scale = m / −8 with m = max (|min| == max picks max) = −0.125
      {"4-bit symmetric",
       4,
       true,
       {-1, 1, 0.5f, -0.5f, 0.25f, 0, 0.75f, -0.75f},
       -0.125f,
       8.0f,
       {15, 196, 134, 226}},
      // 1 bit: scale = 2·mean|x| = 2, zero = 0.5, q = (x > 0)
      {"1-bit sign", 1, false, {-1, 0, 2, -3, 0.5f, 0, 1, -0.5f}, 2.0f, 0.5f, {84}},
      // far from zero: the guard raises the scale to max(|min|, |max|)/512 = 1000/512, so zero = −512
      {"8-bit zero-point guard",
       8,
       false,
       {1000, 1001, 1000, 1000, 1001, 1000, 1000, 1000},
       1.953125f,
       -512.0f,
       {0, 1, 0, 0, 1, 0, 0, 0}},
  };
  std::vector<const CpuKernel*> kernels{&scalar_kernel(), &select_kernel()};
  for (const CpuKernel* k : simd_variants()) kernels.push_back(k);
  for (const auto& e : ex) {
    std::vector<uint8_t> data = encode_rne(std::vector<float>(e.x, e.x + 8), kF32);
    for (const CpuKernel* k : kernels) {
      Out o = run(data, kF32, 1, 8, e.bits, 8, e.sym, false, false, k);
      float s, z;
      memcpy(&s, o.s.data(), 4);
      memcpy(&z, o.z.data(), 4);
      CHECK(o.st.status == kOk && o.q == e.q && s == e.scale && z == e.zero,
            "%s (%s): scale %g zero %g q[0] %d, expected %g %g %d", e.what, k->name, s, z, o.q[0], e.scale,
            e.zero, e.q[0]);
    }
  }
}

static void test_error_limits() {
  const int64_t rows = 64, cols = 1024;
  std::vector<float> g = gaussian((size_t)(rows * cols), 11);
  std::vector<float> t = student_t4((size_t)(rows * cols), 12);
  struct Lim {
    int bits;
    double gauss, t4;
  } lims[] = {{8, 0.006, 0.008}, {4, 0.095, 0.125}, {2, 0.47, 0.62}, {1, 0.62, 0.72}};
  for (auto& l : lims) {
    for (int which = 0; which < 2; which++) {
      const std::vector<float>& x = which ? t : g;
      std::vector<uint8_t> data = encode_rne(x, kF32);
      Out mm = run(data, kF32, rows, cols, l.bits, 64, false, false, true, nullptr, 2, true);
      Out op = run(data, kF32, rows, cols, l.bits, 64, false, true, true, nullptr, 2, true);
      double e0 = rel_err(x, dequant(mm, rows, cols, l.bits, 64, true));
      double e1 = rel_err(x, dequant(op, rows, cols, l.bits, 64, true));
      double lim = which ? l.t4 : l.gauss;
      printf("  %d-bit g64 %-6s minmax %6.2f %%  optimized %6.2f %%\n", l.bits, which ? "t(4)" : "gauss",
             e0 * 100, e1 * 100);
      CHECK(e0 < lim, "%d-bit minmax error %.4f over %.4f", l.bits, e0, lim);
      CHECK(e1 <= e0 * 1.0001, "%d-bit optimized %.4f worse than minmax %.4f", l.bits, e1, e0);
      CHECK(std::fabs(mm.st.metrics.rel_error - e0) < 1e-6, "metrics %.6f vs %.6f", mm.st.metrics.rel_error,
            e0);
      std::vector<float> w = dequant(mm, rows, cols, l.bits, 64, true);
      double max_abs = 0;
      for (size_t i = 0; i < x.size(); i++) max_abs = std::max(max_abs, std::fabs((double)x[i] - w[i]));
      CHECK(std::fabs(mm.st.metrics.max_abs - max_abs) <= 1e-6 * max_abs, "metrics max |error| %.6f vs %.6f",
            mm.st.metrics.max_abs, max_abs);
      if (l.bits == 2) CHECK(e1 < 0.85 * e0, "2-bit optimized should cut error 15 %%: %.4f vs %.4f", e1, e0);
    }
  }
}

static void test_edges_and_errors() {
  // NaN: first bad index, whatever the thread count.
  const int64_t rows = 300, cols = 64;
  std::vector<float> x = gaussian((size_t)(rows * cols), 3);
  x[(size_t)(250 * cols + 5)] = INFINITY;
  x[(size_t)(17 * cols + 9)] = NAN;
  std::vector<uint8_t> data = encode_rne(x, kF32);
  for (int th : {1, 2, 4}) {
    Out o = run(data, kF32, rows, cols, 4, 64, false, false, true, nullptr, th);
    CHECK(o.st.status == kNonFinite && o.st.bad == 17 * cols + 9, "threads %d: status %d bad %lld", th,
          o.st.status, (long long)o.st.bad);
    CHECK(o.st.error.find("NaN at index 1097") != std::string::npos, "message: %s", o.st.error.c_str());
  }
  // f16 overflow of the scale
  std::vector<float> big = {-3e9f, 3e9f, 1.0f, 2.0f};
  Out o = run(encode_rne(big, kF32), kF32, 1, 4, 4, 4, false, false, true, nullptr);
  CHECK(o.st.status == kScaleOverflow, "expected overflow, got %d", o.st.status);
  o = run(encode_rne(big, kF32), kF32, 1, 4, 4, 4, false, false, false, nullptr);
  CHECK(o.st.status == kOk, "f32 scales should hold 3e9");
  // zeros → exact; constant → near exact
  for (int bits : {1, 2, 4, 8}) {
    std::vector<float> zeros(64, 0.0f), cst(64, -2.5f);
    Out a = run(encode_rne(zeros, kF32), kF32, 1, 64, bits, 64, false, true, true, nullptr);
    std::vector<float> w = dequant(a, 1, 64, bits, 64, true);
    for (float v : w) CHECK(v == 0.0f, "zeros: %g", v);
    if (bits > 1) {
      Out b = run(encode_rne(cst, kF32), kF32, 1, 64, bits, 64, false, false, true, nullptr);
      w = dequant(b, 1, 64, bits, 64, true);
      for (float v : w) CHECK(std::fabs(v + 2.5f) < 2.5f * 2e-3f, "constant %d bits: %g", bits, v);
    }
  }
  // one element, denormals: finite output
  std::vector<float> den(16);
  for (int i = 0; i < 16; i++) den[(size_t)i] = (i % 2 ? 1e-40f : -3e-41f);
  for (bool f16 : {true, false}) {
    Out d = run(encode_rne(den, kF32), kF32, 1, 16, 4, 16, false, true, f16, nullptr);
    CHECK(d.st.status == kOk, "denormals");
    for (float v : dequant(d, 1, 16, 4, 16, f16)) CHECK(std::isfinite(v), "denormal output %g", v);
  }
  Out one = run(encode_rne({0.7f}, kF32), kF32, 1, 1, 8, 64, false, false, true, nullptr);
  CHECK(std::fabs(dequant(one, 1, 1, 8, 64, true)[0] - 0.7f) < 0.01f, "one element");
}

static void test_cancel_and_threads() {
  const int64_t rows = 512, cols = 2048;
  std::vector<uint8_t> data = encode_rne(gaussian((size_t)(rows * cols), 5), kF32);
  Out a = run(data, kF32, rows, cols, 4, 64, false, true, true, nullptr, 1, true);
  Out b = run(data, kF32, rows, cols, 4, 64, false, true, true, nullptr, 3, true);
  CHECK(a.q == b.q && a.s == b.s && a.z == b.z, "thread count changed the output");
  CHECK(a.st.metrics.rel_error == b.st.metrics.rel_error, "thread count changed the metrics");
  Control ctl;
  ctl.cancel = true;
  std::vector<uint8_t> q((size_t)(rows * cols / 2)), s((size_t)(rows * 32 * 2)), z(s.size());
  QuantJob j{data.data(), kF32, rows, cols, 4, 64, false, true, true, false, q.data(), s.data(), z.data()};
  QuantStatus st = quantize_cpu(j, 2, &ctl);
  CHECK(st.status == kCancelled, "cancel: status %d", st.status);
  Control ctl2;
  st = quantize_cpu(j, 2, &ctl2);
  CHECK(st.status == kOk && ctl2.rows_done.load() == rows, "progress %lld", (long long)ctl2.rows_done.load());
}

static void test_f16_conversion() {
  // Every f16 value converts to f32 and back unchanged; halfway cases round to even.
  for (uint32_t h = 0; h < 65536; h++) {
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff)) continue;  // NaN payloads
    CHECK(f32_to_f16(f16_to_f32((uint16_t)h)) == h, "f16 %04x", h);
  }
  CHECK(f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie to even (down)");
  CHECK(f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "tie to even (up)");
  CHECK(f32_to_f16(70000.0f) == 0x7c00, "overflow");
  CHECK(f32_to_f16(2.98e-8f) == 0x0000 || f32_to_f16(2.98e-8f) == 0x0001, "underflow");
}

// Element decoding and statistics (stats.h), against fixed values worked out by hand and numpy's conventions.
static void test_stats() {
  // float16 1, -inf; bfloat16 1; float8 e4m3fn 1 and NaN; e5m2 -inf; big-endian int32 -7; uint64 2^63.
  const uint8_t f16[] = {0x00, 0x3c, 0x00, 0xfc};
  CHECK(elem_get(f16, 0, kEF16, true) == 1.0 && elem_get(f16, 1, kEF16, true) == -INFINITY, "f16 decode");
  CHECK(elem_get(f16, 0, kEF16, false) == f16_to_f32(0x003c), "f16 byte order");
  const uint8_t bf[] = {0x80, 0x3f};
  CHECK(elem_get(bf, 0, kEBF16, true) == 1.0, "bf16 decode");
  const uint8_t f8[] = {0x38, 0x7f, 0xfc, 0x01};
  CHECK(elem_get(f8, 0, kEF8E4M3, true) == 1.0 && std::isnan(elem_get(f8, 1, kEF8E4M3, true)),
        "e4m3fn decode");
  CHECK(elem_get(f8, 2, kEF8E5M2, true) == -INFINITY, "e5m2 -inf");
  CHECK(elem_get(f8, 3, kEF8E4M3, true) == 1.0 / 512, "e4m3fn subnormal");
  const uint8_t be[] = {0xff, 0xff, 0xff, 0xf9};
  CHECK(elem_get(be, 0, kEI32, false) == -7.0, "big-endian int32");
  const uint8_t u64[] = {0, 0, 0, 0, 0, 0, 0, 0x80};
  CHECK(elem_get(u64, 0, kEU64, true) == 9223372036854775808.0, "uint64 2^63");
  const uint8_t b[] = {0, 2, 1};
  CHECK(elem_get(b, 1, kEBool, true) == 1.0, "bool is 1 for any non-zero byte");
  // Statistics: 1..4 with NaN and ±Inf counted apart; the same over two chunks; the histogram.
  const float v[] = {1, 2, NAN, 3, INFINITY, 4, -INFINITY};
  const uint8_t* p = reinterpret_cast<const uint8_t*>(v);
  double s1[kStatsLen] = {0, 0, 0, INFINITY, -INFINITY, 0, 0}, s2[kStatsLen];
  memcpy(s2, s1, sizeof s1);
  stats_add(s1, p, 7, kEF32, true);
  stats_add(s2, p, 3, kEF32, true);
  stats_add(s2, p + 12, 4, kEF32, true);
  CHECK(s1[kStCount] == 4 && s1[kStMean] == 2.5 && s1[kStM2] == 5 && s1[kStMin] == 1 && s1[kStMax] == 4,
        "stats: count %g mean %g m2 %g", s1[kStCount], s1[kStMean], s1[kStM2]);
  CHECK(s1[kStNan] == 1 && s1[kStInf] == 2, "stats: nan %g inf %g", s1[kStNan], s1[kStInf]);
  for (int k = 0; k < kStatsLen; k++)
    CHECK(s1[k] == s2[k], "stats over two chunks: [%d] %g vs %g", k, s1[k], s2[k]);
  double counts[3];
  histogram(p, 7, kEF32, true, 1, 4, 3, counts);
  CHECK(counts[0] == 1 && counts[1] == 1 && counts[2] == 2, "histogram %g %g %g", counts[0], counts[1],
        counts[2]);
  histogram(p, 7, kEF32, true, 2, 2, 2, counts);
  CHECK(counts[0] == 4 && counts[1] == 0, "histogram of a constant: all in bin 0");
}

#ifdef APL_HAVE_CUDA
// CUDA against the scalar reference over the scheme table (bit-exact), then (with --gpu-bench) timings.
static void test_gpu(bool bench) {
  const int64_t rows = 6, cols = 203;
  std::vector<float> src = gaussian((size_t)(rows * cols), 7);
  std::vector<float> t = student_t4((size_t)cols, 8);
  for (int64_t i = 0; i < cols; i++) {
    src[(size_t)(2 * cols + i)] = t[(size_t)i] * 3;
    src[(size_t)(3 * cols + i)] = 0.375f;
    src[(size_t)(5 * cols + i)] = 4.0f + 0.01f * src[(size_t)i];
  }
  int combos = 0;
  for (int dtype : {kF32, kF16, kBF16}) {
    std::vector<uint8_t> data = encode_rne(src, dtype);
    for (int bits : {1, 2, 4, 8})
      for (int64_t group : {(int64_t)1, (int64_t)7, (int64_t)32, (int64_t)64, cols})
        for (bool sym : {false, true})
          for (bool opt : {false, true})
            for (bool f16 : {true, false}) {
              Out ref = run(data, dtype, rows, cols, bits, group, sym, opt, f16, &scalar_kernel(), 1, true);
              Out o;
              int64_t gpr = groups_per_row(cols, group);
              o.q.assign(ref.q.size(), 0xee);
              o.s.assign((size_t)(rows * gpr * (f16 ? 2 : 4)), 0xee);
              o.z.assign(o.s.size(), 0xee);
              QuantJob j{data.data(), dtype, rows, cols,       bits,       group,     sym,
                         opt,         f16,   true, o.q.data(), o.s.data(), o.z.data()};
              MetricsAcc m;
              int64_t bad = -1;
              std::string err;
              float ms = 0;
              int rc = cuda::quantize(j, &m, &bad, &err, &ms);
              CHECK(rc == kOk, "cuda::quantize: %d %s", rc, err.c_str());
              CHECK(o.q == ref.q && o.s == ref.s && o.z == ref.z,
                    "CUDA differs from the reference: dtype %d bits %d group %lld sym %d opt %d f16 %d",
                    dtype, bits, (long long)group, sym, opt, f16);
              CHECK(std::fabs(finish_metrics(m).rel_error - ref.st.metrics.rel_error) < 1e-9, "CUDA metrics");
              combos++;
            }
  }
  printf("  CUDA (%s) = reference on %d combinations\n",
         getenv("APL_CUDA_ONE_THREAD") ? "one thread per group" : "eight threads per group", combos);
  // Groups over 512 elements take the unstaged path (a float32 copy on the device, then the octet kernel).
  {
    const int64_t r2 = 3, c2 = 1300, g2 = 700;
    std::vector<uint8_t> data = encode_rne(gaussian((size_t)(r2 * c2), 4), kBF16);
    for (bool opt : {false, true}) {
      Out ref = run(data, kBF16, r2, c2, 4, g2, false, opt, true, &scalar_kernel());
      Out o = ref;
      std::fill(o.q.begin(), o.q.end(), 0xee);
      QuantJob j{data.data(), kBF16, r2,    c2,         4,          g2,        false,
                 opt,         true,  false, o.q.data(), o.s.data(), o.z.data()};
      int64_t bad = -1;
      std::string err;
      CHECK(cuda::quantize(j, nullptr, &bad, &err, nullptr) == kOk, "large groups: %s", err.c_str());
      CHECK(o.q == ref.q && o.s == ref.s && o.z == ref.z, "CUDA differs on groups of %lld", (long long)g2);
    }
  }
  std::vector<float> nan = gaussian(1000, 1);
  nan[777] = NAN;
  std::vector<uint8_t> nd = encode_rne(nan, kF32);
  Out o = run(nd, kF32, 10, 100, 4, 64, false, false, true, &scalar_kernel());
  QuantJob j{nd.data(), kF32, 10, 100, 4, 64, false, false, true, false, o.q.data(), o.s.data(), o.z.data()};
  int64_t bad = -1;
  std::string err;
  CHECK(cuda::quantize(j, nullptr, &bad, &err, nullptr) == kNonFinite && bad == 777, "CUDA NaN index %lld",
        (long long)bad);
  if (!bench) return;
  // Timings: 5632 x 2048 f32, 4 bits, group 64 (the CPU benchmark's matrix) and a 16x larger one.
  for (int64_t rows_b : {(int64_t)5632, (int64_t)5632 * 16}) {
    const int64_t cols_b = 2048;
    std::vector<uint8_t> data = encode_rne(gaussian((size_t)(rows_b * cols_b), 9), kF32);
    double gb = (double)data.size() / 1e9;
    for (bool opt : {false, true}) {
      std::vector<uint8_t> q((size_t)(rows_b * cols_b / 2)), s((size_t)(rows_b * 32 * 2)), z(s.size());
      QuantJob jb{data.data(), kF32, rows_b, cols_b,   4,        64,      false,
                  opt,         true, false,  q.data(), s.data(), z.data()};
      float best_k = 1e30f;
      double best_total = 1e30;
      for (int rep = 0; rep < 3; rep++) {
        float ms = 0;
        auto t0 = std::chrono::steady_clock::now();
        CHECK(cuda::quantize(jb, nullptr, &bad, &err, &ms) == kOk, "bench: %s", err.c_str());
        double tot = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (ms < best_k) best_k = ms;
        if (tot < best_total) best_total = tot;
      }
      auto t0 = std::chrono::steady_clock::now();
      QuantStatus st = quantize_cpu(jb, 0, nullptr);
      double cpu = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      CHECK(st.status == kOk, "cpu bench");
      printf(
          "  %lldx%lld f32 4-bit g64 %-9s GPU kernels %8.3f ms = %7.1f GB/s; GPU incl. copies %8.1f ms = "
          "%6.1f GB/s; "
          "CPU (%s, %d threads) %8.1f ms = %6.2f GB/s; kernels %.0fx CPU\n",
          (long long)rows_b, (long long)cols_b, opt ? "optimized" : "minmax", best_k, gb / (best_k / 1e3),
          best_total * 1e3, gb / best_total, select_kernel().name, resolve_threads(0), cpu * 1e3, gb / cpu,
          cpu / (best_k / 1e3));
    }
  }
}
#endif

int main(int argc, char** argv) {
  (void)argc;  // read only with CUDA (--gpu-bench)
  (void)argv;
  const char* fs = getenv("APL_FORCE_SCALAR");
  if (fs && strcmp(fs, "1") == 0)
    CHECK(strcmp(select_kernel().name, "scalar") == 0, "APL_FORCE_SCALAR=1 ignored");
  printf("native kernel tests (kernel in use: %s; CPU: %s)\n", select_kernel().name, cpu_features().c_str());
  test_f16_conversion();
  test_stats();
  test_variants_match_reference();
  test_spec_examples();
  test_error_limits();
  test_edges_and_errors();
  test_cancel_and_threads();
  test_check_dot();
  test_parallel_chunks();
  GpuInfo g = gpu_info();
  if (g.available) {
    printf("GPU: %s\n", g.name.c_str());
#ifdef APL_HAVE_CUDA
    bool bench = false;
    for (int i = 1; i < argc; i++) bench = bench || strcmp(argv[i], "--gpu-bench") == 0;
    test_gpu(bench);
#endif
  } else {
    printf("GPU tests SKIPPED: %s\n", g.reason.c_str());
  }
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
