// AVX2 (maddubs) inference kernel for kquant weights (see infer_kquant_x86.h).
#include "../infer/kquant_linear.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "infer_kquant_x86.h"

namespace apl {
namespace infer {

const KqKernel* kq_avx2_kernel() {
  static const KqKernel k{"avx2", kqx86::quantize_act, kqx86::qrows};
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(KqKernel, kq_avx2_kernel)
#endif
