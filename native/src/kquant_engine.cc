// Threaded CPU engine and backend choice for the two-level-scale type (see kquant_engine.h). Chunks of rows
// go to threads in order; metrics are merged per chunk in chunk order, so output and metrics do not depend
// on the thread count.
#include "kquant_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include "env.h"

#ifdef APL_HAVE_CUDA
#include "cuda/check_cuda.h"
#include "cuda/kquant_cuda.h"
#endif

namespace apl {

std::string kq_check_params(const KqParams& p) {
  char buf[200];
  if (p.bits != 2 && p.bits != 4 && p.bits != 8) {
    snprintf(buf, sizeof buf, "bits must be 2, 4 or 8 (got %d)", p.bits);
    return buf;
  }
  if (p.group < 1 || p.group > kKqMaxGroup) {
    snprintf(buf, sizeof buf, "group must be 1..%d (got %d)", kKqMaxGroup, p.group);
    return buf;
  }
  if (p.super < p.group || p.super % p.group || p.super > kKqMaxElems || p.super / p.group > kKqMaxGroups) {
    snprintf(buf, sizeof buf, "super must be a multiple of group, at most %d elements and %d groups (got %d)",
             kKqMaxElems, kKqMaxGroups, p.super);
    return buf;
  }
  if (p.sbits < 1 || p.sbits > 8 || p.mbits < 1 || p.mbits > 8) {
    snprintf(buf, sizeof buf, "code widths must be 1..8 bits (got %d and %d)", p.sbits, p.mbits);
    return buf;
  }
  return "";
}

namespace {

/** The input part of a job (data, dtype, rows, cols), as the output check reads it. */
QuantJob input_of(const KqJob& j) {
  QuantJob q{};
  q.data = j.data;
  q.dtype = j.dtype;
  q.rows = j.rows;
  q.cols = j.cols;
  return q;
}

/** The output check of a kquant job: the sampled rows dequantized by the selected kernel. */
std::unique_ptr<OutputCheck> kq_check(const KqJob& j, const CheckJob* c) {
  if (!c) return nullptr;
  KqTensor t{j.q, j.codes, j.d, j.dmin, j.rows, j.cols, j.p};
  const KqKernel* k = &kq_select_kernel();
  return std::unique_ptr<OutputCheck>(
      new OutputCheck(input_of(j), *c, [t, k](int64_t r, float* dst) { k->dequantize_row(t, r, dst); }));
}

/** The output check of a job quantized elsewhere (the GPU): its tasks and every row's products, threaded. */
CheckOut kq_check_after(const KqJob& j, const CheckJob& c, int threads) {
  std::unique_ptr<OutputCheck> chk = kq_check(j, &c);
  int64_t per = rows_per_chunk(j.cols), nchunks = (j.rows + per - 1) / per, extra = chk->tasks();
  parallel_chunks(resolve_threads(threads), extra + nchunks, [&](int64_t i) {
    if (i < extra)
      chk->run_task(i);
    else
      chk->rows_done((i - extra) * per, std::min(j.rows, (i - extra + 1) * per));
    return true;
  });
  return chk->finish();
}

/**
 * The output check of a job quantized on the GPU: its products there (cuda/check.cu, kquant_check.h's
 * kq_check_pair: the CPU's float64 chains), Σ‖f‖² on the CPU threads. APL_CHECK_CPU=1, or a CUDA
 * error (named in *note), runs it all on the CPU.
 */
CheckOut kq_check_on_gpu(const KqJob& j, const CheckJob& c, int threads, std::string* note) {
#ifdef APL_HAVE_CUDA
  const char* force = std::getenv("APL_CHECK_CPU");
  if (c.m > 0 && !(force && force[0] == '1')) {
    std::vector<double> y((size_t)(c.n * c.m));
    std::vector<float> yq((size_t)(c.n * c.m));
    if (cuda::kq_check_products(j, c, y.data(), yq.data(), note)) {
      std::unique_ptr<OutputCheck> chk = kq_check(j, &c);
      chk->set_products(y.data(), yq.data());
      parallel_chunks(resolve_threads(threads), chk->tasks(), [&](int64_t i) {
        chk->run_task(i);
        return true;
      });
      return chk->finish();
    }
  }
#else
  (void)note;
#endif
  return kq_check_after(j, c, threads);
}

int kq_scalar_row(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) {
  return kq_quantize_row<KqScalarOps>(j, r, s, m, bad);
}

/** A variant is used only after it reproduces the reference on a small table (once per process). */
bool kq_agrees(const KqKernel& k) {
  const int64_t rows = 3, cols = 1000;
  std::vector<float> x((size_t)(rows * cols));
  for (int64_t i = 0; i < rows * cols; i++) {
    float v = std::sin((float)i * 0.7f) * (1.0f + (float)(i % 13));
    if (i / cols == 1) v = v * v * v;
    if (i / cols == 2) v = (i % 5) ? 3.0f + 0.01f * v : -0.25f;
    x[(size_t)i] = v;
  }
  const KqParams table[] = {{4, 24, 1536, 5, 6}, {2, 16, 256, 4, 4}, {8, 32, 256, 6, 6}, {4, 5, 20, 3, 2}};
  for (const KqParams& p : table) {
    std::vector<uint8_t> out[2][4];
    for (int w = 0; w < 2; w++) {
      out[w][0].assign((size_t)(rows * packed_row_bytes(cols, p.bits)), 0);
      out[w][1].assign((size_t)(rows * kq_code_row_bytes(cols, p)), 0);
      out[w][2].assign((size_t)(rows * kq_supers_per_row(cols, p.super) * 2), 0);
      out[w][3] = out[w][2];
      KqJob j{reinterpret_cast<const uint8_t*>(x.data()),
              kF32,
              rows,
              cols,
              p,
              false,
              out[w][0].data(),
              out[w][1].data(),
              out[w][2].data(),
              out[w][3].data()};
      std::vector<float> row((size_t)cols);
      std::vector<uint8_t> qv((size_t)cols), sc((size_t)cols), mc((size_t)cols);
      KqScratch s{row.data(), qv.data(), sc.data(), mc.data()};
      const KqKernel& kk = w ? k : kq_scalar_kernel();
      for (int64_t r = 0; r < rows; r++) {
        int64_t bad = -1;
        if (kk.quantize_row(j, r, s, nullptr, &bad) != kOk) return false;
      }
    }
    for (int a = 0; a < 4; a++)
      if (out[0][a] != out[1][a]) return false;
  }
  return true;
}

std::string value_text(float v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

void describe(const KqJob& j, QuantStatus& st) {
  char buf[256];
  if (st.status == kNonFinite) {
    float v = 0;
    int64_t i = st.bad;
    if (j.dtype == kF32) {
      memcpy(&v, j.data + i * 4, 4);
    } else {
      uint16_t h;
      memcpy(&h, j.data + i * 2, 2);
      v = j.dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    snprintf(buf, sizeof buf, "%s at index %lld (row %lld, column %lld)", value_text(v).c_str(), (long long)i,
             (long long)(i / j.cols), (long long)(i % j.cols));
    st.error = buf;
  } else if (st.status == kScaleOverflow) {
    snprintf(buf, sizeof buf, "the super-block at index %lld has values too large for its f16 super-scales",
             (long long)st.bad);
    st.error = buf;
  } else if (st.status == kCancelled) {
    st.error = "cancelled";
  }
}

}  // namespace

const KqKernel& kq_scalar_kernel() {
  static const KqKernel k{"scalar", kq_scalar_row, kq_dequantize_row};
  return k;
}

bool cpu_splits_512() {
  const char* v = std::getenv("APL_SPLIT_512");
  if (v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "0") == 0)) return v[0] == '1';
#if defined(__x86_64__) || defined(_M_X64)
  static const bool zen4 = __builtin_cpu_is("amd") && __builtin_cpu_supports("avx512f") && [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return family == 0x19;
  }();
  return zen4;
#else
  return false;
#endif
}

const KqKernel& kq_select_kernel() {
  if (env_is_1("APL_FORCE_SCALAR")) return kq_scalar_kernel();
#if defined(__x86_64__) || defined(_M_X64)
  // Each build is checked against the reference the first time it would be chosen, not before: a machine that
  // takes the AVX-512 build does not pay for the FMA build's check, nor one that does not split 512-bit
  // operations for avx512-ymm's.
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  const bool no_fma = env_is_1("APL_NO_FMA");
  if (!env_is_1("APL_NO_AVX512") && !no_fma) {
    static const bool avx512 = has_avx2 && __builtin_cpu_supports("fma") &&
                               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                               kq_avx512_kernel() && kq_agrees(*kq_avx512_kernel());
    if (avx512 && cpu_splits_512()) {
      static const bool avx512_ymm = kq_avx512_ymm_kernel() && kq_agrees(*kq_avx512_ymm_kernel());
      if (avx512_ymm) return *kq_avx512_ymm_kernel();
    }
    if (avx512) return *kq_avx512_kernel();
  }
  if (!no_fma) {
    static const bool fma =
        has_avx2 && __builtin_cpu_supports("fma") && kq_avx2_fma_kernel() && kq_agrees(*kq_avx2_fma_kernel());
    if (fma) return *kq_avx2_fma_kernel();
  }
  static const bool avx2 = has_avx2 && kq_avx2_kernel() && kq_agrees(*kq_avx2_kernel());
  if (avx2) return *kq_avx2_kernel();
#endif
#if defined(__aarch64__)
  static const bool neon = kq_neon_kernel() && kq_agrees(*kq_neon_kernel());
  if (neon) return *kq_neon_kernel();
#endif
  return kq_scalar_kernel();
}

QuantStatus kq_quantize_cpu(const KqJob& j, int threads, Control* ctl, const KqKernel* kernel,
                            OutputCheck* check) {
  const KqKernel& k = kernel ? *kernel : kq_select_kernel();
  QuantStatus st;
  st.backend = std::string("cpu-") + k.name;
  st = run_rows(
      j, threads, ctl, check, std::move(st),
      [&] {
        thread_local std::vector<float> row;
        thread_local std::vector<uint8_t> qv, sc, mc;
        if ((int64_t)row.size() < j.cols) row.resize((size_t)j.cols);
        if ((int64_t)qv.size() < j.cols) {
          qv.resize((size_t)j.cols);
          sc.resize((size_t)j.cols);
          mc.resize((size_t)j.cols);
        }
        return KqScratch{row.data(), qv.data(), sc.data(), mc.data()};
      },
      [&](int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad) { return k.quantize_row(j, r, s, m, bad); });
  if (st.status != kOk) describe(j, st);
  return st;
}

QuantStatus kq_quantize(const KqJob& j, int backend, int threads, Control* ctl, const CheckJob* check) {
  if (backend != 0) {
    GpuInfo g = gpu_info();
    if (g.available) {
#ifdef APL_HAVE_CUDA
      QuantStatus st;
      st.backend = "cuda:" + g.name;
      MetricsAcc m = j.metrics_from;
      std::string err;
      int rc = cuda::kq_quantize(j, j.metrics ? &m : nullptr, &st.bad, &err);
      if (rc == kOk) {
        // Sampled rows must match the CPU reference byte for byte.
        int64_t picks[3] = {0, j.rows / 2, j.rows - 1};
        int64_t rb = packed_row_bytes(j.cols, j.p.bits), cb = kq_code_row_bytes(j.cols, j.p);
        int64_t db = kq_supers_per_row(j.cols, j.p.super) * 2;
        std::vector<uint8_t> q((size_t)rb), c((size_t)cb), d((size_t)db), dm((size_t)db), qv((size_t)j.cols),
            sc((size_t)j.cols), mc((size_t)j.cols);
        std::vector<float> row((size_t)j.cols);
        KqScratch s{row.data(), qv.data(), sc.data(), mc.data()};
        for (int pi = 0; pi < (j.rows ? 3 : 0); pi++) {
          int64_t r = picks[pi];
          KqJob t = j;
          t.data = j.data + (size_t)(r * j.cols) * dtype_size(j.dtype);
          t.rows = 1;
          t.metrics = false;
          t.q = q.data();
          t.codes = c.data();
          t.d = d.data();
          t.dmin = dm.data();
          int64_t bad = -1;
          if (kq_select_kernel().quantize_row(t, 0, s, nullptr, &bad) != kOk ||
              memcmp(q.data(), j.q + r * rb, (size_t)rb) || memcmp(c.data(), j.codes + r * cb, (size_t)cb) ||
              memcmp(d.data(), j.d + r * db, (size_t)db) || memcmp(dm.data(), j.dmin + r * db, (size_t)db)) {
            rc = -1;
            err = "the GPU result differs from the CPU reference on sampled rows";
            break;
          }
        }
      }
      if (rc == kOk) {
        if (ctl) ctl->rows_done.store(j.rows);
        if (j.metrics) {
          st.has_metrics = true;
          st.metrics = finish_metrics(m);
          st.sums = m;
        }
        if (check) {
          std::string note;
          st.has_check = true;
          st.check = kq_check_on_gpu(j, *check, threads, &note);
          if (!note.empty()) st.backend += " (output check on the CPU: " + note + ")";
        }
        return st;
      }
      if (rc > 0) {
        st.status = rc;
        describe(j, st);
        return st;
      }
      if (backend == 1) {
        st.status = -1;
        st.error = "CUDA: " + err;
        return st;
      }
      std::unique_ptr<OutputCheck> chk = kq_check(j, check);
      QuantStatus cpu = kq_quantize_cpu(j, threads, ctl, nullptr, chk.get());
      cpu.backend += " (GPU not used: " + err + ")";
      return cpu;
#endif
    } else if (backend == 1) {
      QuantStatus st;
      st.status = -1;
      st.error = "backend 'gpu' was requested but no GPU is usable: " + g.reason;
      return st;
    }
  }
  std::unique_ptr<OutputCheck> chk = kq_check(j, check);
  return kq_quantize_cpu(j, threads, ctl, nullptr, chk.get());
}

void kq_dequantize(const KqTensor& t, float* out, int threads) {
  const KqKernel& k = kq_select_kernel();
  int64_t per = rows_per_chunk(t.cols);
  parallel_chunks(resolve_threads(threads), (t.rows + per - 1) / per, [&](int64_t c) {
    int64_t r1 = std::min(t.rows, (c + 1) * per);
    for (int64_t r = c * per; r < r1; r++) k.dequantize_row(t, r, out + r * t.cols);
    return true;
  });
}

MetricsOut kq_error_metrics(const uint8_t* data, int dtype, const KqTensor& t, int threads) {
  const KqKernel& k = kq_select_kernel();
  return metrics_against(data, dtype, t.rows, t.cols, threads,
                         [&k, &t](int64_t r, float* dst) { k.dequantize_row(t, r, dst); });
}

}  // namespace apl
