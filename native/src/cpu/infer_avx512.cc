// AVX-512 inference kernel (x86-64 with AVX-512 F/BW/VL/VNNI): the VNNI kernel with 512-bit vpdpbusd for
// group sizes 64 and 128 (64 values per instruction); the same integers and float order, so bit-exact as
// well.
#include "../infer/infer.h"

#if defined(__x86_64__) || defined(_M_X64)
#define APL_INFER_VNNI 1
#define APL_INFER_WIDE 1
#include "infer_gemm.h"
#include "infer_x86.h"

namespace apl {
namespace infer {

const Kernel* avx512_kernel() {
  static const Kernel k{"avx512",  x86::quantize_act_wide, x86::qrows<true>, x86::frows, x86::dotf,
                        x86::axpyf};
  return &k;
}

const Kernel* gemm_kernel() {
  static const Gemm g{gemm512::fits, gemm512::quantize_act, gemm512::rows};
  static const Kernel k{
      "avx512-gemm", x86::quantize_act_wide, x86::qrows<true>, x86::frows, x86::dotf, x86::axpyf, &g};
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
namespace apl {
namespace infer {
const Kernel* avx512_kernel() { return nullptr; }
const Kernel* gemm_kernel() { return nullptr; }
}  // namespace infer
}  // namespace apl
#endif
