// The scalar reference as a CPU kernel (also the portable fallback on every architecture).
#include "kernels.h"

namespace apl {

static int scalar_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row<ScalarOps>(j, r, s, m, bad, load_row_scalar, find_nonfinite_scalar);
}

const CpuKernel& scalar_kernel() {
  static const CpuKernel k{"scalar", scalar_row};
  return k;
}

}  // namespace apl
