// CPU variants of the two-level-scale kernels (kquant.h): the scalar reference, AVX2 (x86-64) and NEON
// (arm64), chosen at run time.
#pragma once

#include <stdlib.h>

#include <new>

#include "../kquant.h"

namespace apl {

struct KqKernel {
  const char* name;
  /** Quantizes row r (kq_quantize_row). */
  int (*quantize_row)(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad);
  /** Dequantizes row r (same values as kq_dequantize_row). */
  void (*dequantize_row)(const KqTensor& t, int64_t r, float* dst);
};

const KqKernel& kq_scalar_kernel();
/** nullptr when not compiled in (other architectures). */
const KqKernel* kq_avx2_kernel();
const KqKernel* kq_neon_kernel();
/** The best variant this CPU runs that reproduces the reference; APL_FORCE_SCALAR=1 forces the reference. */
const KqKernel& kq_select_kernel();

}  // namespace apl
