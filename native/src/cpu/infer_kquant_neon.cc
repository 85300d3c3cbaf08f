// The NEON inference kernel for kquant weights on every arm64 CPU (plain armv8-a: vmlal_s8 products summed in
// int16); the body is infer_kquant_neon.h. Off arm64 the function returns nullptr.
#define APL_KQ_NEON_KERNEL_FN kq_neon_kernel
#include "infer_kquant_neon.h"
