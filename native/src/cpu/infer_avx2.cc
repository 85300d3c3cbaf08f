// AVX2 + F16C + FMA inference kernel (x86-64): maddubs integer dot products (see infer_x86.h).
#include "../infer/infer.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "infer_x86.h"

namespace apl {
namespace infer {

const Kernel* avx2_kernel() {
  static const Kernel k{"avx2", x86::quantize_act, x86::qrows<false>, x86::frows, x86::dotf, x86::axpyf};
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(Kernel, avx2_kernel)
#endif
