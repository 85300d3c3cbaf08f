// Run-time choice of the CPU kernel: the best variant this CPU supports, or the scalar reference when
// APL_FORCE_SCALAR=1 (read on every call, so tests can switch it).
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace apl {

static bool force_scalar() {
  const char* v = std::getenv("APL_FORCE_SCALAR");
  return v && std::strcmp(v, "1") == 0;
}

#if defined(__x86_64__) || defined(_M_X64)
static bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"); }
static bool has_avx512() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }
#endif

const CpuKernel& select_kernel() {
  if (force_scalar()) return scalar_kernel();
#if defined(__x86_64__) || defined(_M_X64)
  const char* v = std::getenv("APL_NO_AVX512");
  bool no512 = v && std::strcmp(v, "1") == 0;
  if (!no512 && has_avx2() && has_avx512() && avx512_kernel()) return *avx512_kernel();
  if (has_avx2() && avx2_kernel()) return *avx2_kernel();
#endif
#if defined(__aarch64__)
  if (neon_kernel()) return *neon_kernel();
#endif
  return scalar_kernel();
}

std::string cpu_features() {
  std::string s;
#if defined(__x86_64__) || defined(_M_X64)
  if (__builtin_cpu_supports("avx2")) s += "avx2 ";
  if (__builtin_cpu_supports("f16c")) s += "f16c ";
  if (__builtin_cpu_supports("fma")) s += "fma ";
  if (__builtin_cpu_supports("avx512f")) s += "avx512f ";
  if (__builtin_cpu_supports("avx512bw")) s += "avx512bw ";
#elif defined(__aarch64__)
  s += "neon ";
#endif
  if (!s.empty()) s.pop_back();
  return s;
}

}  // namespace apl
