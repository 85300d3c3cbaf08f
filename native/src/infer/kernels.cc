// The scalar reference kernel and the run-time choice of a CPU variant for inference.
#include <cstdlib>
#include <cstring>

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <cpuid.h>
#endif
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include "../env.h"
#include "kquant_ref.h"

namespace apl {
namespace infer {

void dequantize_row_any(const Linear& w, int64_t r, float* dst) {
  if (w.kind == 2) return kq_dequantize_row_ref(w, r, dst);
  if (w.kind == 0) {
    QTensor t{w.q, w.scales, w.zeros, w.rows, w.cols, w.bits, w.group, w.f16};
    dequantize_row(t, r, dst);
    return;
  }
  const uint8_t* row = w.data + r * w.cols * dtype_size(w.dtype);
  for (int64_t c = 0; c < w.cols; c++) dst[c] = float_at(row, c, w.dtype);
}

namespace {

void scalar_quantize_act(const float* x, int64_t cols, int64_t group, int, int8_t* xq, float* dx,
                         int32_t* xsum) {
  act_quantize_ref(x, cols, group, xq, dx, xsum);
}

void scalar_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                  int64_t ystride) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t t = t0; t < t1; t++)
      y[t * ystride + r] = qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
}

void scalar_frows(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1, float* y,
                  int64_t ystride) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t t = t0; t < t1; t++) y[t * ystride + r] = fdot_ref(w, r, x + t * w.cols);
}

float scalar_dotf(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    float p = a[i] * b[i];
    acc[i & 7] += p;
  }
  return reduce8(acc);
}

void scalar_axpyf(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float p = s * x[i];
    y[i] += p;
  }
}

#if defined(__x86_64__) || defined(_M_X64)
bool cpu_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}
bool cpu_vnni() {
  return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// AMX-TILE and AMX-INT8 (CPUID.(7, 0):EDX bits 24, 25); on Linux the tile data state (XFEATURE_XTILEDATA, 18)
// must also be requested once per process before any thread loads a tile configuration.
const char* amx_check() {
  if (!cpu_vnni()) return "no AVX-512 VNNI";
#if defined(__GNUC__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
    return "the CPU has no AMX-INT8";
#else
  return "not built with GCC or Clang";
#endif
#if defined(__linux__)
  const long kReqXcompPerm = 0x1023, kXtiledata = 18;
  if (syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) != 0)
    return "Linux refused the AMX tile data state (arch_prctl ARCH_REQ_XCOMP_PERM)";
  return nullptr;
#else
  return "AMX permission is only requested on Linux";
#endif
}
#endif

#if defined(__aarch64__)
// The dot-product extension (SDOT/UDOT, FEAT_DotProd): optional in armv8.2-a, absent on e.g. Cortex-A53/A72.
bool cpu_dotprod() {
#if defined(__linux__)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &n, nullptr, 0) == 0 && v != 0;
#else
  return false;
#endif
}
#endif

}  // namespace

const char* amx_unusable() {
#if defined(__x86_64__) || defined(_M_X64)
  static const char* why = amx_kernel() ? amx_check() : "not compiled in (no -mamx-int8)";
  return why;
#else
  return "not an x86-64 build";
#endif
}

const Kernel& scalar_kernel() {
  static const Kernel k{"scalar", scalar_quantize_act, scalar_qrows, scalar_frows, scalar_dotf, scalar_axpyf};
  return k;
}

std::vector<const Kernel*> available_kernels() {
  std::vector<const Kernel*> v{&scalar_kernel()};
#if defined(__x86_64__) || defined(_M_X64)
  if (avx2_kernel() && cpu_avx2()) v.push_back(avx2_kernel());
  // The 512-bit kernel (two rows at a time, planes of 64 codes per vpdpbusd: infer_wide.h) is the default:
  // 1.3-2× the 256-bit one on 4/2/1-bit decode here (Zen 5); 8 bits keep the 256-bit layout.
  if (vnni_kernel() && cpu_vnni()) v.push_back(vnni_kernel());
  if (avx512_kernel() && cpu_vnni()) v.push_back(avx512_kernel());
  // avx512 with the row-interleaved prompt path (infer_gemm.h) for 8 tokens or more: the default.
  if (gemm_kernel() && cpu_vnni()) v.push_back(gemm_kernel());
  // avx512-gemm with the prompt's integer sums on AMX tiles (cpu/infer_amx.cc), where the CPU and OS allow it
  if (amx_kernel() && !amx_unusable()) v.push_back(amx_kernel());
#endif
#if defined(__aarch64__)
  if (neon_kernel()) v.push_back(neon_kernel());
  // A compiler that targets the extension everywhere (Apple's arm64 default) builds the plain file with it
  // too: then both files hold the same kernel, listed once.
  const Kernel* dp = neon_dotprod_kernel();
  if (dp && cpu_dotprod() && !(neon_kernel() && std::strcmp(neon_kernel()->name, dp->name) == 0))
    v.push_back(dp);
#endif
  return v;
}

const Kernel* kernel_by_name(const char* name) {
  for (const Kernel* k : available_kernels())
    if (std::strcmp(k->name, name) == 0) return k;
  return nullptr;
}

const Kernel& select_kernel() {
  if (env_is_1("APL_FORCE_SCALAR")) return scalar_kernel();
  bool no512 = env_is_1("APL_NO_AVX512");
  bool nodp = env_is_1("APL_NO_DOTPROD");
  bool noamx = env_is_1("APL_NO_AMX");
  auto v = available_kernels();
  for (size_t i = v.size(); i-- > 0;) {
    if (no512 && std::strncmp(v[i]->name, "avx512", 6) == 0) continue;
    if (nodp && std::strcmp(v[i]->name, "neon-dotprod") == 0) continue;
    if (noamx && std::strcmp(v[i]->name, "avx512-amx") == 0) continue;
    return *v[i];
  }
  return scalar_kernel();
}

}  // namespace infer
}  // namespace apl
