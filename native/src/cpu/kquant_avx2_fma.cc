// kquant_avx2.cc again, compiled with -mavx2 -mf16c -mfma: kq_avx2_fma_kernel, whose sums of exact products
// are fused (avx2::madd_exact). The same bytes and metrics as kq_avx2_kernel; chosen only where the CPU has
// FMA and it reproduces the reference (kq_select_kernel).
#define APL_FMA 1
#include "kquant_avx2.cc"  // NOLINT(bugprone-suspicious-include): one source, two instruction sets
