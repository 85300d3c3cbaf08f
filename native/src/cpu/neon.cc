// NEON kernel (arm64): 4-wide min/max and rounding; the group sums use the scalar reference order, so q is
// bit-exact. Compiled with -ffp-contract=off (no fused multiply-add).
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace apl {

namespace {
struct NeonOps : ScalarOps {
  static void minmax(const float* x, int n, float* mn, float* mx) {
    if (n < 4) return ScalarOps::minmax(x, n, mn, mx);
    float32x4_t a = vld1q_f32(x), b = a;
    int i = 4;
    for (; i + 4 <= n; i += 4) {
      float32x4_t v = vld1q_f32(x + i);
      a = vminq_f32(a, v);
      b = vmaxq_f32(b, v);
    }
    float lo = vminvq_f32(a), hi = vmaxvq_f32(b);
    for (; i < n; i++) {
      if (x[i] < lo) lo = x[i];
      if (x[i] > hi) hi = x[i];
    }
    *mn = lo;
    *mx = hi;
  }
  static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    const float32x4_t vinv = vdupq_n_f32(inv), vz = vdupq_n_f32(z), vmax = vdupq_n_f32(qmax);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      float32x4_t t = vaddq_f32(vmulq_f32(vld1q_f32(x + i), vinv), vz);
      float32x4_t q = vminq_f32(vmaxq_f32(vrndnq_f32(t), zero), vmax);
      uint32x4_t u = vcvtq_u32_f32(q);
      qv[i] = (uint8_t)vgetq_lane_u32(u, 0);
      qv[i + 1] = (uint8_t)vgetq_lane_u32(u, 1);
      qv[i + 2] = (uint8_t)vgetq_lane_u32(u, 2);
      qv[i + 3] = (uint8_t)vgetq_lane_u32(u, 3);
    }
    ScalarOps::assign(x + i, n - i, inv, z, qmax, qv + i);
  }
};

int neon_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row<NeonOps>(j, r, s, m, bad, load_row_scalar, find_nonfinite_scalar);
}
}  // namespace

const CpuKernel* neon_kernel() {
  static const CpuKernel k{"neon", neon_row};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const CpuKernel* neon_kernel() { return nullptr; }
}  // namespace apl
#endif
