// The NEON inference kernel with the dot-product extension (vdotq_s32): this file is compiled with
// -march=armv8.2-a+dotprod (binding.gyp's apl_infer_dotprod, test/native/run-arm64.sh) and chosen at run time
// only where the CPU has the extension (infer/kernels.cc). The body is infer_neon.h. Off arm64 it returns
// nullptr; on an arm64 compiler not targeting the extension it returns nullptr too, so the plain kernel is
// never listed twice.
#if defined(__aarch64__) && !defined(__ARM_FEATURE_DOTPROD)
#include "../infer/infer.h"
APL_NO_KERNEL(Kernel, neon_dotprod_kernel)
#else
#define APL_NEON_KERNEL_FN neon_dotprod_kernel
#include "infer_neon.h"
#endif
