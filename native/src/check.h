// The converter's output check, computed inside a quantize job (on its threads, in the same pass as the
// quantization where possible) with exactly the arithmetic of the TypeScript it replaces
// (server/src/convert/accuracy.ts: productError), so the accuracy report is the same to the last digit.
//
// Every float32 × float32 product is exact in float64, and each sum is a float64 chain in the TypeScript
// order: vector lanes only ever hold different chains, never parts of one.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "quant.h"

namespace apl {

/** What the caller asks for (pointers stay valid for the call). */
struct CheckJob {
  /** x: n × cols fixed inputs (row-major float32); rows: the m sampled rows of the job, ascending. */
  const float* x = nullptr;
  int64_t n = 0;
  const int32_t* rows = nullptr;
  int64_t m = 0;
  /**
   * A tensor checked in several calls: the Σ‖f‖² chain of its earlier calls' sampled rows, continued here
   * (one chain over all of them, as in one call); y / yq, when set, receive this call's products (n × m each,
   * input major), from which the caller sums Σ y² and Σ (y − ŷ)² over all the calls in productError's order.
   */
  double f_sq_from = 0;
  double* y_out = nullptr;
  float* yq_out = nullptr;
};

struct CheckOut {
  /** Σ‖f_j‖², Σ y², Σ (y − ŷ)² over the sampled rows (productError). */
  double f_sq = 0, y_sq = 0, dy_sq = 0;
};

/**
 * State of one job's check: per sampled row, the float and quantized products. rows_done() is called for
 * every row [r0, r1) once it is quantized (from any thread) and computes the quantized products; extra tasks
 * run beside the quantization: the Σ‖f‖² chain with the float products (task 0); finish()
 * combines everything in the TypeScript order.
 */
class OutputCheck {
 public:
  /** Row r of the quantized job, dequantized to float32 (cols values). */
  using RowDequant = std::function<void(int64_t r, float* dst)>;
  /**
   * j: the input (data, dtype, rows, cols) and, when `dequant` is empty, the groupwise output it is
   * dequantized from; other types (kquant) pass their own row dequantizer.
   */
  OutputCheck(const QuantJob& j, const CheckJob& c, RowDequant dequant = {});
  /** Quantized products for the sampled rows among [r0, r1) (already quantized). */
  void rows_done(int64_t r0, int64_t r1);
  /** Independent tasks (no quantized data needed), numbered 0..tasks()-1: the Σ‖f‖² chain with the float
   * products when rows are sampled (one task), else none. */
  int64_t tasks() const { return tasks_; }
  void run_task(int64_t t);
  /** The products computed elsewhere (the GPU: cuda/check.cu), n × m each, instead of rows_done(). */
  void set_products(const double* y, const float* yq);
  CheckOut finish() const;

 private:
  /** Products of the sampled rows jjs[0..nr) (nr ≤ kCheckDotRows), several rows per pass over the inputs. */
  void rows(const int64_t* jjs, int nr);
  const QuantJob j_;
  CheckJob c_;
  RowDequant dequant_;
  /** The products' kernels (cpu/kernels.h check_dot_*, check_frow_*). */
  void (*dot_)(const float*, int64_t, int, const float* const*, const float* const*, double*, double*);
  void (*frow_)(const float*, int64_t, int64_t, const float*, double*, double*);
  bool f_products_ = true;     // the float products are run_task(0)'s (false once set_products gave them)
  int64_t nb_ = 0;             // input blocks of 4
  std::vector<float> xt_;      // x regrouped: block b, column c, lane t at (b·cols + c)·4 + t
  std::vector<int32_t> pick_;  // row → index among the sampled rows, or −1
  std::vector<double> y_;      // n × m
  std::vector<float> yq_;      // n × m
  double f_sq_ = 0;
  int64_t tasks_ = 0;
};

}  // namespace apl
