// The engine behind the addon, free of N-API so the plain C++ test program links it: threaded CPU
// quantization with progress and cancellation, the CUDA path, dequantize, qmatmul and error metrics (element
// decoding and statistics are in stats.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "cpu/kernels.h"
#include "quant.h"

namespace apl {

/** The `code` of the error a scale overflow raises across the native boundary (native/index.ts exports it).
 */
constexpr const char* kScaleOverflowCode = "ERR_APL_SCALE_OVERFLOW";

struct QuantStatus {
  int status = kOk;  // kOk, kNonFinite, kScaleOverflow, kCancelled
  int64_t bad =
      -1;  // flat index of the first bad element (kNonFinite) or of the group start (kScaleOverflow)
  std::string backend;  // what ran, e.g. "cpu-avx2" or "cuda:NVIDIA H100"
  std::string error;    // set when status != kOk (without the tensor name)
  bool has_metrics = false;
  MetricsOut metrics{};
  /** The metrics' sums (metrics_from included): what the next call of the same tensor starts from. */
  MetricsAcc sums{};
  bool has_check = false;
  CheckOut check{};  // the converter's output check (when a CheckJob was given)
};

struct Control {
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> rows_done{0};
};

/** 0 = all cores (hardware concurrency). */
int resolve_threads(int threads);

/**
 * Runs job() on the caller and on `helpers` threads of one of the process's kept pools at once, and returns
 * when all have returned. False (nothing run) while other callers hold every pool, or when threads cannot
 * start.
 */
bool pool_run(int helpers, const std::function<void()>& job);

/**
 * Starts job() on one of the process's kept runner threads (a new one when none is idle, up to 16; they are
 * never freed) and returns at once; job must catch what it throws. The quantize calls' engine runs there: a
 * thread started per call cost the start and fresh pages for its thread-local scratch every call (≈ 160 calls
 * per conversion of a 22-layer model; a 4 KiB fault costs ≈ 12 µs in this project's VMs). Where no thread can
 * start, job runs on the caller before this returns.
 */
void run_kept(std::function<void()> job);

/**
 * Runs fn(chunk) for chunk in [0, nchunks) over `threads` threads (the caller's thread is one of them: the
 * others from pool_run's kept threads, or started here when every pool is busy). fn
 * returns false to stop its thread. An exception in any thread (e.g. bad_alloc) stops the others and is
 * rethrown here.
 */
template <class Fn>
void parallel_chunks(int threads, int64_t nchunks, Fn fn) {
  int t = (int)std::min<int64_t>(std::max(1, threads), std::max<int64_t>(1, nchunks));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto worker = [&]() {
    try {
      for (;;) {
        int64_t c = next.fetch_add(1);
        if (c >= nchunks || failed.load(std::memory_order_relaxed) || !fn(c)) return;
      }
    } catch (...) {
      std::lock_guard<std::mutex> g(mu);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  if (t > 1 && pool_run(t - 1, std::function<void()>(worker))) {
    if (error) std::rethrow_exception(error);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (int i = 1; i < t; i++) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

/** Rows per work item: about 64K elements, so progress and cancellation are prompt and threads balance. */
inline int64_t rows_per_chunk(int64_t cols) {
  return std::max<int64_t>(1, (64 * 1024) / std::max<int64_t>(1, cols));
}

/**
 * The CPU row loop both quantizers run (quantize_cpu; kq_quantize_cpu in kquant_engine.cc): rows in chunks of
 * rows_per_chunk(cols) over parallel_chunks, the output check's independent tasks first (the long Σ‖f‖² chain
 * starts while the other threads quantize). Per chunk, scratch = prepare() (the caller's thread-local
 * buffers); per row, row(r, scratch, metrics, &bad) returns kOk or the row's error status. The first bad row
 * (and, among the rows that fail, the lowest bad index) stops the chunks after it; cancellation is checked
 * between chunks. Returns `st` with the error status (the caller describes it), or with the metrics and the
 * check.
 */
template <class Job, class Prepare, class Row>
QuantStatus run_rows(const Job& j, int threads, Control* ctl, OutputCheck* check, QuantStatus st,
                     Prepare prepare, Row row) {
  int64_t per = rows_per_chunk(j.cols);
  int64_t nchunks = (j.rows + per - 1) / per;
  const int64_t extra = check ? check->tasks() : 0;
  std::vector<MetricsAcc> macc(j.metrics ? (size_t)nchunks : 0);
  std::atomic<int64_t> first_bad_row{INT64_MAX};
  std::mutex mu;
  int bad_status = kOk;
  int64_t bad_index = INT64_MAX;
  std::atomic<bool> cancelled{false};
  parallel_chunks(resolve_threads(threads), nchunks + extra, [&](int64_t c) -> bool {
    if (c < extra) {
      check->run_task(c);
      return true;
    }
    c -= extra;
    auto s = prepare();
    int64_t r0 = c * per, r1 = std::min(j.rows, r0 + per);
    if (r0 > first_bad_row.load()) return false;
    if (ctl && ctl->cancel.load(std::memory_order_relaxed)) {
      cancelled = true;
      return false;
    }
    // The chunk's metrics add up in a local (the same sums in the same order) and are stored once:
    // neighbouring chunks' entries share cache lines, and other threads update those group after group (false
    // sharing).
    MetricsAcc local;
    MetricsAcc* m = j.metrics ? &local : nullptr;
    for (int64_t r = r0; r < r1; r++) {
      int64_t bad = -1;
      int rc = row(r, s, m, &bad);
      if (rc != kOk) {
        std::lock_guard<std::mutex> g(mu);
        if (bad < bad_index) {
          bad_index = bad;
          bad_status = rc;
        }
        int64_t cur = first_bad_row.load();
        while (r < cur && !first_bad_row.compare_exchange_weak(cur, r)) {
        }
        return false;
      }
    }
    if (j.metrics) macc[(size_t)c] = local;
    if (check) check->rows_done(r0, r1);
    if (ctl) ctl->rows_done.fetch_add(r1 - r0);
    return true;
  });
  if (bad_status != kOk) {
    st.status = bad_status;
    st.bad = bad_index;
  } else if (cancelled) {
    st.status = kCancelled;
  }
  if (st.status != kOk) return st;
  if (j.metrics) {
    // From the sums of the tensor's earlier calls: chunk by chunk in row order, the same adds as one call
    // over all the rows when each call starts on a multiple of rows_per_chunk.
    MetricsAcc all = j.metrics_from;
    for (auto& m : macc) all.merge(m);
    st.has_metrics = true;
    st.metrics = finish_metrics(all);
    st.sums = all;
  }
  if (check) {
    st.has_check = true;
    st.check = check->finish();
  }
  return st;
}

/**
 * Quantizes on the CPU with `kernel` (select_kernel() by default) over `threads` threads; with `check`, its
 * products are computed as rows are quantized and its other tasks run on the same threads.
 */
QuantStatus quantize_cpu(const QuantJob& j, int threads, Control* ctl, const CpuKernel* kernel = nullptr,
                         OutputCheck* check = nullptr);

/**
 * backend: 0 cpu, 1 gpu (error when none), 2 auto (gpu when usable, else cpu). With `check`, the status also
 * carries the output check (check.h).
 */
QuantStatus quantize(const QuantJob& j, int backend, int threads, Control* ctl,
                     const CheckJob* check = nullptr);

void dequantize(const QTensor& w, float* out, int threads);
/** y (n × rows) = x (n × cols) · Ŵᵀ, dequantizing one row of W at a time per thread. */
void qmatmul(const float* x, int64_t n, const QTensor& w, float* y, int threads);
MetricsOut error_metrics(const uint8_t* data, int dtype, const QTensor& w, int threads);

/**
 * The metrics of a rows × cols input (data, dtype) against its quantized form, whose row r `dequant_row(r,
 * dst)` writes as cols float32 values: rows_per_chunk rows per task, each task's sums merged in task order
 * (both quantization types' error_metrics).
 */
template <class DequantRow>
MetricsOut metrics_against(const uint8_t* data, int dtype, int64_t rows, int64_t cols, int threads,
                           DequantRow dequant_row) {
  const int64_t per = rows_per_chunk(cols), nchunks = (rows + per - 1) / per;
  std::vector<MetricsAcc> acc((size_t)nchunks);
  QuantJob j{};
  j.data = data;
  j.dtype = dtype;
  j.cols = cols;
  parallel_chunks(resolve_threads(threads), nchunks, [&](int64_t c) {
    std::vector<float> x((size_t)cols), d((size_t)cols);
    const int64_t r1 = std::min(rows, (c + 1) * per);
    MetricsAcc a;  // stored once: neighbouring chunks' entries share cache lines
    for (int64_t r = c * per; r < r1; r++) {
      const float* xr = load_row_scalar(j, r, x.data());
      dequant_row(r, d.data());
      for (int64_t k = 0; k < cols; k++) a.add(xr[k], d[(size_t)k]);
    }
    acc[(size_t)c] = a;
    return true;
  });
  MetricsAcc all;
  for (auto& a : acc) all.merge(a);
  return finish_metrics(all);
}
/** The same metrics between two float32 arrays already decoded: x the reference, w its approximation. */
MetricsOut compare_metrics(const float* x, const float* w, int64_t n);

struct GpuInfo {
  bool available = false;
  std::string name, reason;
};
GpuInfo gpu_info();

}  // namespace apl
