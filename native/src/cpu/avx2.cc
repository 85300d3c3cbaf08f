// AVX2 + F16C kernel (x86-64). Compiled with -mavx2 -mf16c (no -mfma) and -ffp-contract=off.
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <algorithm>
#include <vector>

#include "avx2_ops.h"
#include "batched_rows.h"

namespace apl {

namespace {
struct RowOps : avx2::Ops {
  static void pack(const uint8_t* qv, int64_t cols, int bits, uint8_t* out) {
    avx2::pack(qv, cols, bits, out);
  }
};
int avx2_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad) {
  return quantize_row_batched<RowOps>(j, r, s, m, bad, avx2::load_row, avx2::find_nonfinite);
}

/**
 * check_dot for R rows at once: per row and input one float64 chain for f (F: when asked) and one for d, four
 * inputs per vector, so R or 2·R independent add chains. The rows are widened to float64 first, so each
 * column costs a broadcast load per chain; x·f is exact in float64, and with no FMA (-mno-fma,
 * -ffp-contract=off) each step is check_dot_scalar's round(chain + x·f).
 */
template <int R, bool F>
void dot_rows(const float* xb, int64_t cols, const float* const* f, const float* const* d, double* y,
              double* yq) {
  thread_local std::vector<double> wide;
  if ((int64_t)wide.size() < 2 * R * cols) wide.resize((size_t)(2 * R * cols));
  double* fw[R];
  double* dw[R];
  for (int r = 0; r < R; r++) {
    fw[r] = wide.data() + (2 * r) * cols;
    dw[r] = wide.data() + (2 * r + 1) * cols;
    int64_t c = 0;
    for (; c + 4 <= cols; c += 4) {
      if (F) _mm256_storeu_pd(fw[r] + c, _mm256_cvtps_pd(_mm_loadu_ps(f[r] + c)));
      _mm256_storeu_pd(dw[r] + c, _mm256_cvtps_pd(_mm_loadu_ps(d[r] + c)));
    }
    for (; c < cols; c++) {
      if (F) fw[r][c] = f[r][c];
      dw[r][c] = d[r][c];
    }
  }
  __m256d a[R], b[R];
  for (int r = 0; r < R; r++) a[r] = b[r] = _mm256_setzero_pd();
  for (int64_t c = 0; c < cols; c++) {
    const __m256d xv = _mm256_cvtps_pd(_mm_loadu_ps(xb + c * 4));
    for (int r = 0; r < R; r++) {
      if (F) a[r] = _mm256_add_pd(a[r], _mm256_mul_pd(xv, _mm256_broadcast_sd(fw[r] + c)));
      b[r] = _mm256_add_pd(b[r], _mm256_mul_pd(xv, _mm256_broadcast_sd(dw[r] + c)));
    }
  }
  for (int r = 0; r < R; r++) {
    if (F) _mm256_storeu_pd(y + 4 * r, a[r]);
    _mm256_storeu_pd(yq + 4 * r, b[r]);
  }
}

template <bool F>
void check_dot_rows(const float* xb, int64_t cols, int nr, const float* const* f, const float* const* d,
                    double* y, double* yq) {
  switch (nr) {
    case 1:
      return dot_rows<1, F>(xb, cols, f, d, y, yq);
    case 2:
      return dot_rows<2, F>(xb, cols, f, d, y, yq);
    case 3:
      return dot_rows<3, F>(xb, cols, f, d, y, yq);
    default:
      return dot_rows<4, F>(xb, cols, f, d, y, yq);
  }
}

void check_dot(const float* xb, int64_t cols, int nr, const float* const* f, const float* const* d, double* y,
               double* yq) {
  if (f)
    check_dot_rows<true>(xb, cols, nr, f, d, y, yq);
  else
    check_dot_rows<false>(xb, cols, nr, f, d, y, yq);
}

/**
 * check_frow for B ≤ 4 blocks of inputs (one float64 chain per input, four per vector) and, with S, the
 * Σ‖f‖² chain in the same column loop: that chain waits on its add latency, the products fill the gaps.
 */
template <int B, bool S>
void frow_blocks(const float* xt, int64_t cols, const float* f, double* y, double* s) {
  __m256d a[B];
  for (int b = 0; b < B; b++) a[b] = _mm256_setzero_pd();
  double sq = S ? *s : 0;
  for (int64_t c = 0; c < cols; c++) {
    const double fc = f[c];
    if (S) sq += fc * fc;
    const __m256d fv = _mm256_set1_pd(fc);
    for (int b = 0; b < B; b++)
      a[b] = _mm256_add_pd(a[b], _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(xt + (b * cols + c) * 4)), fv));
  }
  for (int b = 0; b < B; b++) _mm256_storeu_pd(y + 4 * b, a[b]);
  if (S) *s = sq;
}

template <bool S>
void frow_some(const float* xt, int64_t nb, int64_t cols, const float* f, double* y, double* s) {
  switch (nb) {
    case 1:
      return frow_blocks<1, S>(xt, cols, f, y, s);
    case 2:
      return frow_blocks<2, S>(xt, cols, f, y, s);
    case 3:
      return frow_blocks<3, S>(xt, cols, f, y, s);
    default:
      return frow_blocks<4, S>(xt, cols, f, y, s);
  }
}

void check_frow(const float* xt, int64_t nb, int64_t cols, const float* f, double* y, double* s) {
  if (nb == 0) {
    double sq = *s;
    for (int64_t c = 0; c < cols; c++) sq += (double)f[c] * (double)f[c];
    *s = sq;
    return;
  }
  // The chain rides with the first four blocks; more blocks (small tensors, more inputs) in passes of four.
  frow_some<true>(xt, std::min<int64_t>(4, nb), cols, f, y, s);
  for (int64_t b = 4; b < nb; b += 4)
    frow_some<false>(xt + b * cols * 4, std::min<int64_t>(4, nb - b), cols, f, y + 4 * b, nullptr);
}
}  // namespace

const CpuKernel* avx2_kernel() {
  static const CpuKernel k{"avx2", avx2_row};
  return &k;
}

CheckDot check_dot_avx2() { return check_dot; }
CheckFRow check_frow_avx2() { return check_frow; }

}  // namespace apl
#else
namespace apl {
const CpuKernel* avx2_kernel() { return nullptr; }
CheckDot check_dot_avx2() { return nullptr; }
CheckFRow check_frow_avx2() { return nullptr; }
}  // namespace apl
#endif
