// The output check's products compiled with -mavx2 -mf16c -mfma (check_dot_fma): the exact products x·f and
// x·ŵ fused into their float64 chains, the same sums as check_dot_scalar bit for bit.
#define APL_FMA 1
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "check_dot_avx2.h"

namespace apl {
CheckDot check_dot_fma() { return check_dot_rows; }
}  // namespace apl
#else
namespace apl {
CheckDot check_dot_fma() { return nullptr; }
}  // namespace apl
#endif
