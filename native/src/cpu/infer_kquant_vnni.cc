// AVX-512 VNNI (vpdpbusd on 256-bit vectors) inference kernel for kquant weights (see infer_kquant_x86.h).
#include "../infer/kquant_linear.h"

#if defined(__x86_64__) || defined(_M_X64)
// GCC's AVX-512 intrinsics (cvtph, broadcast) start from an undefined vector it then reports
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#define APL_INFER_VNNI 1
#include "infer_kquant_x86.h"

namespace apl {
namespace infer {

const KqKernel* kq_vnni_kernel() {
  static const KqKernel k{"avx512-vnni", kqx86::quantize_act, kqx86::qrows};
  return &k;
}

const KqKernel* kq_gemm_kernel() {
  static const KqGemm g{kqx86::kqgemm::fits, gemm512::quantize_act, kqx86::kqgemm::rows};
  static const KqKernel k{"avx512-gemm", kqx86::quantize_act, kqx86::qrows, &g};
  return &k;
}

}  // namespace infer
}  // namespace apl
#else
APL_NO_KERNEL(KqKernel, kq_vnni_kernel)
APL_NO_KERNEL(KqKernel, kq_gemm_kernel)
#endif
