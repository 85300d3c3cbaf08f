// AVX2 + F16C kernel (x86-64). Compiled with -mavx2 -mf16c (no -mfma) and -ffp-contract=off.
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <vector>

#include "avx2_ops.h"
#include "batched_rows.h"
#include "check_dot_avx2.h"

namespace apl {

namespace {
struct RowOps : avx2::Ops {
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    avx2::pack(qv, cols, bits, out);
  }
};
int avx2_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row_batched<RowOps>(j, r, s, m, bad, avx2::load_row, avx2::find_nonfinite);
}

}  // namespace

const CpuKernel* avx2_kernel() {
  static const CpuKernel k{"avx2", avx2_row};
  return &k;
}

CheckDot check_dot_avx2() { return check_dot_rows; }

}  // namespace apl
#else
namespace apl {
const CpuKernel* avx2_kernel() { return nullptr; }
CheckDot check_dot_avx2() { return nullptr; }
}  // namespace apl
#endif
