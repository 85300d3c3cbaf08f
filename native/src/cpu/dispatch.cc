// Run-time choice of the CPU kernel: the best variant this CPU supports, or the scalar reference when
// APL_FORCE_SCALAR=1 (read on every call, so tests can switch it).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../env.h"
#include "kernels.h"

namespace apl {

static bool force_scalar() { return env_is_1("APL_FORCE_SCALAR"); }

#if defined(__x86_64__) || defined(_M_X64)
static bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"); }
static bool has_avx512() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }
#endif

/**
 * A variant is used only after it reproduces the scalar reference on a small table of schemes (a few
 * microseconds, once per variant): a kernel this build could not test on its own CPU (AVX-512, NEON) can
 * never write different bytes; it is skipped instead.
 */
static bool agrees_with_reference(const CpuKernel& k) {
  const int64_t rows = 4, cols = 203;
  std::vector<float> x((size_t)(rows * cols));
  for (int64_t i = 0; i < rows * cols; i++) {
    float v = std::sin((float)i * 0.7f) * (1.0f + (float)(i % 13));
    if (i / cols == 1) v = v * v * v;               // heavy tails
    if (i / cols == 2) v = 3.0f + 0.01f * v;        // far from zero
    if (i / cols == 3) v = (i % 5) ? 0.0f : 0.25f;  // sparse
    x[(size_t)i] = v;
  }
  const uint8_t* data = reinterpret_cast<const uint8_t*>(x.data());
  for (int bits : {1, 2, 4, 8})
    for (int64_t group : {(int64_t)7, (int64_t)64, cols})
      for (int flags = 0; flags < 4; flags++) {
        bool sym = flags & 1, opt = flags & 2;
        int64_t gpr = groups_per_row(cols, group);
        size_t qb = (size_t)(rows * packed_row_bytes(cols, bits)), pb = (size_t)(rows * gpr * 2);
        std::vector<uint8_t> q[2], s[2], z[2];
        for (int w = 0; w < 2; w++) {
          q[w].assign(qb, 0);
          s[w].assign(pb, 0);
          z[w].assign(pb, 0);
          QuantJob j{data, kF32, rows,  cols,        bits,        group,      sym,
                     opt,  true, false, q[w].data(), s[w].data(), z[w].data()};
          const CpuKernel& kk = w ? k : scalar_kernel();
          std::vector<float> row((size_t)cols);
          std::vector<uint8_t> qv((size_t)cols);
          RowScratch scratch{row.data(), qv.data()};
          for (int64_t r = 0; r < rows; r++) {
            int64_t bad = -1;
            if (kk.quantize_row(j, r, scratch, nullptr, &bad) != kOk) return false;
          }
        }
        if (q[0] != q[1] || s[0] != s[1] || z[0] != z[1]) return false;
      }
  return true;
}

// Each check runs once, and only after the CPU is known to support the variant.
static bool avx512_ok() {
  static const bool ok = avx512_kernel() && agrees_with_reference(*avx512_kernel());
  return ok;
}
static bool avx2_ok() {
  static const bool ok = avx2_kernel() && agrees_with_reference(*avx2_kernel());
  return ok;
}
static bool neon_ok() {
  static const bool ok = neon_kernel() && agrees_with_reference(*neon_kernel());
  return ok;
}

const CpuKernel& select_kernel() {
  if (force_scalar()) return scalar_kernel();
#if defined(__x86_64__) || defined(_M_X64)
  const bool no512 = env_is_1("APL_NO_AVX512");
  if (!no512 && has_avx2() && has_avx512() && avx512_ok()) return *avx512_kernel();
  if (has_avx2() && avx2_ok()) return *avx2_kernel();
#endif
#if defined(__aarch64__)
  if (neon_ok()) return *neon_kernel();
#endif
  return scalar_kernel();
}

/**
 * The AVX2 products give check_dot_scalar's sums bit for bit on a small table (odd lengths, 1–4 rows; with f
 * and without).
 */
static bool check_dot_agrees(CheckDot dot) {
  const int64_t cols = 203;
  std::vector<float> x((size_t)(cols * 4)), fd((size_t)(2 * kCheckDotRows * cols));
  for (size_t i = 0; i < x.size(); i++) x[i] = std::sin((float)i * 0.37f) * (1.0f + (float)(i % 7));
  for (size_t i = 0; i < fd.size(); i++) fd[i] = std::cos((float)i * 0.91f) * (i % 3 ? 1e-3f : 17.0f);
  const float* f[kCheckDotRows];
  const float* d[kCheckDotRows];
  for (int r = 0; r < kCheckDotRows; r++) {
    f[r] = fd.data() + (2 * r) * cols;
    d[r] = fd.data() + (2 * r + 1) * cols;
  }
  for (int nr = 1; nr <= kCheckDotRows; nr++)
    for (int64_t n : {cols, (int64_t)1, (int64_t)6}) {
      double y[2][4 * kCheckDotRows], yq[2][4 * kCheckDotRows];
      check_dot_scalar(x.data(), n, nr, f, d, y[0], yq[0]);
      dot(x.data(), n, nr, f, d, y[1], yq[1]);
      if (std::memcmp(y[0], y[1], sizeof(double) * 4 * nr) ||
          std::memcmp(yq[0], yq[1], sizeof(double) * 4 * nr))
        return false;
      dot(x.data(), n, nr, nullptr, d, nullptr, yq[1]);  // the d chains alone (check.cc's form)
      if (std::memcmp(yq[0], yq[1], sizeof(double) * 4 * nr)) return false;
    }
  return true;
}

/**
 * A check kernel's form to use: the AVX2 one where the CPU runs it and it reproduced the scalar one
 * (`avx2ok`, tested once per process by the caller), else the scalar reference (always under
 * APL_FORCE_SCALAR=1).
 */
template <class Fn>
static Fn checked_form(Fn scalar, Fn avx2, bool avx2ok) {
  return !force_scalar() && avx2ok ? avx2 : scalar;
}

CheckDot select_check_dot() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool ok = has_avx2() && check_dot_avx2() && check_dot_agrees(check_dot_avx2());
#else
  const bool ok = false;
#endif
  return checked_form(check_dot_scalar, check_dot_avx2(), ok);
}

/** The AVX2 row products and Σ‖f‖² steps give check_frow_scalar's bits on a small table (0–9 blocks). */
static bool check_frow_agrees(CheckFRow frow) {
  const int64_t cols = 203, nbmax = 9;
  std::vector<float> x((size_t)(nbmax * cols * 4)), f((size_t)cols);
  for (size_t i = 0; i < x.size(); i++) x[i] = std::sin((float)i * 0.37f) * (1.0f + (float)(i % 7));
  for (size_t i = 0; i < f.size(); i++) f[i] = std::cos((float)i * 0.91f) * (i % 3 ? 1e-3f : 17.0f);
  for (int64_t nb = 0; nb <= nbmax; nb++)
    for (int64_t n : {cols, (int64_t)1, (int64_t)6}) {
      double y[2][4 * nbmax], s[2] = {0.5, 0.5};
      check_frow_scalar(x.data(), nb, n, f.data(), y[0], &s[0]);
      frow(x.data(), nb, n, f.data(), y[1], &s[1]);
      if (s[0] != s[1] || std::memcmp(y[0], y[1], sizeof(double) * 4 * nb)) return false;
    }
  return true;
}

CheckFRow select_check_frow() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool ok = has_avx2() && check_frow_avx2() && check_frow_agrees(check_frow_avx2());
#else
  const bool ok = false;
#endif
  return checked_form(check_frow_scalar, check_frow_avx2(), ok);
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
