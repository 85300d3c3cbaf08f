// CPU kernel variants (scalar reference, AVX2, AVX-512, NEON) behind one table, chosen at run time.
#pragma once

#include <string>

#include "../quant.h"

namespace apl {

struct CpuKernel {
  const char* name;
  /** Quantizes row r (see quantize_row in quant.h). */
  int (*quantize_row)(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad);
};

const CpuKernel& scalar_kernel();
/** nullptr when the variant is not compiled into this build (other architectures). */
const CpuKernel* avx2_kernel();
const CpuKernel* avx512_kernel();
const CpuKernel* neon_kernel();

/**
 * The output check's products (check.cc): rows f[0..nr) and their dequantized d[0..nr) (cols float32 each,
 * 1 ≤ nr ≤ kCheckDotRows) against one block of four inputs xb (column c, input t at c·4 + t); for row r and
 * input t, y[r·4 + t] = Σ_c x·f and yq[r·4 + t] = Σ_c x·d, each a float64 chain in column order. With f null
 * only yq is computed (y is not written).
 */
constexpr int kCheckDotRows = 4;
using CheckDot = void (*)(const float* xb, int64_t cols, int nr, const float* const* f, const float* const* d,
                          double* y, double* yq);
/** The scalar form (the reference), the AVX2 one (nullptr when not compiled in), and the one to use. */
void check_dot_scalar(const float* xb, int64_t cols, int nr, const float* const* f, const float* const* d,
                      double* y, double* yq);
CheckDot check_dot_avx2();
CheckDot select_check_dot();

/**
 * One sampled row f (cols float32) against nb blocks of four inputs xt (block b, column c, input t at
 * (b·cols + c)·4 + t): y[b·4 + t] = Σ_c x·f, a float64 chain per input in column order; and *s += f[c]² for
 * c in order, continuing the one chain *s (check.cc's Σ‖f‖², which is latency-bound: the products run in its
 * shadow). nb may be 0 (the chain alone).
 */
using CheckFRow = void (*)(const float* xt, int64_t nb, int64_t cols, const float* f, double* y, double* s);
void check_frow_scalar(const float* xt, int64_t nb, int64_t cols, const float* f, double* y, double* s);
CheckFRow check_frow_avx2();
CheckFRow select_check_frow();

/** The best variant this CPU supports; APL_FORCE_SCALAR=1 forces the scalar reference. */
const CpuKernel& select_kernel();
/** What the CPU supports, e.g. "avx2 f16c" (for engineInfo). */
std::string cpu_features();

}  // namespace apl
