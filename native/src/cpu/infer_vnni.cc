// AVX-512 VNNI inference kernel (x86-64 with AVX-512 F/BW/VL/VNNI): the AVX2 kernel with vpdpbusd on 256-bit
// vectors for the integer dot products (one instruction per 32 values instead of three).
#include "../infer/infer.h"

#if defined(__x86_64__) || defined(_M_X64)
#define APL_INFER_VNNI 1
#include "infer_x86.h"

namespace apl {
namespace infer {

const Kernel* vnni_kernel() {
  static const Kernel k{"avx512-vnni", x86::quantize_act, x86::qrows<true>,
                        x86::frows,    x86::dotf,         x86::axpyf};
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(Kernel, vnni_kernel)
#endif
