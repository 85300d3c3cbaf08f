// The engine behind the addon, free of N-API so the plain C++ test program links it: threaded CPU
// quantization with progress and cancellation, the CUDA path, dequantize, qmatmul and error metrics (element
// decoding and statistics are in stats.h).
#pragma once

#include <atomic>
#include <string>
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
  bool has_check = false;
  CheckOut check{};  // the converter's output check and Σw² (when a CheckJob was given)
};

struct Control {
  std::atomic<bool> cancel{false};
  std::atomic<int64_t> rows_done{0};
};

/** 0 = all cores (hardware concurrency). */
int resolve_threads(int threads);

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
/** The same metrics between two float32 arrays already decoded: x the reference, w its approximation. */
MetricsOut compare_metrics(const float* x, const float* w, int64_t n);

struct GpuInfo {
  bool available = false;
  std::string name, reason;
};
GpuInfo gpu_info();

}  // namespace apl
