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

/** The best variant this CPU supports; APL_FORCE_SCALAR=1 forces the scalar reference. */
const CpuKernel& select_kernel();
/** What the CPU supports, e.g. "avx2 f16c" (for engineInfo). */
std::string cpu_features();

}  // namespace apl
