// The NEON inference kernel for kquant weights with the dot-product extension (vdotq_s32): compiled with
// -march=armv8.2-a+dotprod (binding.gyp's apl_infer_dotprod, test/native/run-arm64.sh) and paired by
// kq_kernel_for with the groupwise `neon-dotprod` kernel, which infer/kernels.cc lists only where the CPU has
// the extension. The body is infer_kquant_neon.h. Off arm64 it returns nullptr; on an arm64 compiler not
// targeting the extension it returns nullptr too (as infer_neon_dotprod.cc).
#if defined(__aarch64__) && !defined(__ARM_FEATURE_DOTPROD)
#include "../infer/kquant_linear.h"
APL_NO_KERNEL(KqKernel, kq_neon_dotprod_kernel)
#else
#define APL_KQ_NEON_KERNEL_FN kq_neon_dotprod_kernel
#include "infer_kquant_neon.h"
#endif
