// The NEON inference kernel for every arm64 CPU (plain armv8-a: vmull/vpadal integer dot products); the body
// is infer_neon.h. Off arm64 the function returns nullptr.
#define APL_NEON_KERNEL_FN neon_kernel
#include "infer_neon.h"
