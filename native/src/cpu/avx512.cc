// AVX-512 kernel (x86-64 with AVX-512F/BW): 16-wide min/max, rounding and non-finite checks. The group sums
// keep the 8-lane AVX2 code, because the reference fixes their order (8 lanes), so q stays bit-exact.
// Compiled with -mavx512f -mavx512bw -mavx2 -mf16c (no -mfma) and -ffp-contract=off.
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include "avx2_ops.h"

namespace apl {

namespace {
struct Ops512 : avx2::Ops {
  static void minmax(const float* x, int n, float* mn, float* mx) {
    if (n < 16) return avx2::Ops::minmax(x, n, mn, mx);
    __m512 a = _mm512_loadu_ps(x), b = a;
    int i = 16;
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      a = _mm512_min_ps(a, v);
      b = _mm512_max_ps(b, v);
    }
    if (i < n) {
      __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(m, x + i);
      a = _mm512_mask_min_ps(a, m, a, v);
      b = _mm512_mask_max_ps(b, m, b, v);
    }
    *mn = _mm512_reduce_min_ps(a);
    *mx = _mm512_reduce_max_ps(b);
  }
  static void assign(const float* x, int n, float inv, float z, float qmax, uint8_t* qv) {
    const __m512 vinv = _mm512_set1_ps(inv), vz = _mm512_set1_ps(z), vmax = _mm512_set1_ps(qmax);
    const __m512 zero = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
      __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
      __m512 t = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv), vz);
      t = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m512 q = _mm512_min_ps(_mm512_max_ps(t, zero), vmax);
      _mm512_mask_cvtepi32_storeu_epi8(qv + i, m, _mm512_cvtps_epi32(q));
    }
  }
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    avx2::pack(qv, cols, bits, out);
  }
};

int64_t find_nonfinite512(const float* x, int64_t n) {
  const __m512i e = _mm512_set1_epi32(0x7f800000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i a = _mm512_and_si512(_mm512_loadu_si512((const void*)(x + i)), e);
    if (_mm512_cmpeq_epi32_mask(a, e)) break;
  }
  int64_t k = find_nonfinite_scalar(x + i, n - i);
  return k >= 0 ? i + k : -1;
}

int avx512_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row<Ops512>(j, r, s, m, bad, avx2::load_row, find_nonfinite512);
}
}  // namespace

const CpuKernel* avx512_kernel() {
  static const CpuKernel k{"avx512", avx512_row};
  return &k;
}

}  // namespace apl
#else
namespace apl {
const CpuKernel* avx512_kernel() { return nullptr; }
}  // namespace apl
#endif
