// The output check and Σw² of a quantize job (see check.h): the float products x · Wᵀ and the quantized ones
// x · Ŵᵀ of the sampled rows, four inputs per pass over a row, each sum a float64 chain in the TypeScript
// order.
#include "check.h"

#include <algorithm>
#include <utility>

#include "cpu/kernels.h"

namespace apl {

/**
 * Rows (decoded to float32: the float rows f and their dequantized d) against a block of four inputs in one
 * pass: per row and input one float64 chain for f and one for d, element by element (no chain is split). With
 * f null, the d chains alone.
 */
void check_dot_scalar(const float* xb, int64_t cols, int nr, const float* const* f, const float* const* d,
                      double* y, double* yq) {
  for (int r = 0; r < nr; r++) {
    double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    const float* fr = f ? f[r] : nullptr;
    const float* dr = d[r];
    for (int64_t c = 0; c < cols; c++) {
      const double dc = dr[c];
      const float* xv = xb + c * 4;
      for (int t = 0; t < 4; t++) {
        const double xt = xv[t];
        if (fr) a[t] += xt * (double)fr[c];
        b[t] += xt * dc;
      }
    }
    for (int t = 0; t < 4; t++) {
      if (fr) y[r * 4 + t] = a[t];
      yq[r * 4 + t] = b[t];
    }
  }
}

/** One row's float products and its steps of the Σ‖f‖² chain (see kernels.h CheckFRow). */
void check_frow_scalar(const float* xt, int64_t nb, int64_t cols, const float* f, double* y, double* s) {
  double sq = *s;
  for (int64_t c = 0; c < cols; c++) sq += (double)f[c] * (double)f[c];
  *s = sq;
  for (int64_t b = 0; b < nb; b++)
    for (int t = 0; t < 4; t++) {
      double a = 0;
      for (int64_t c = 0; c < cols; c++) a += (double)xt[(b * cols + c) * 4 + t] * (double)f[c];
      y[b * 4 + t] = a;
    }
}

namespace {
constexpr int64_t kSumBlock = 1 << 16;  // accuracy.ts sumSquares: bf16 summed in blocks of 65536 values
constexpr int64_t kBlocksPerTask = 8;

/** Σ w² of values [i0, i1) of the input as one float64 chain. */
double chain_sq(const QuantJob& j, int64_t i0, int64_t i1) {
  double s = 0;
  if (j.dtype == kF32) {
    for (int64_t i = i0; i < i1; i++) {
      float f;
      memcpy(&f, j.data + i * 4, 4);
      s += (double)f * (double)f;
    }
  } else {
    for (int64_t i = i0; i < i1; i++) {
      uint16_t h;
      memcpy(&h, j.data + i * 2, 2);
      double f = j.dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
      s += f * f;
    }
  }
  return s;
}
/** w² of bf16 value i at p, in float64 (bf16_to_f32, then the exact float64 square). */
inline double bf16_sq(const uint8_t* p, int64_t i) {
  uint16_t h;
  memcpy(&h, p + i * 2, 2);
  const double f = bf16_to_f32(h);
  return f * f;
}

/**
 * Σw² of bf16 blocks [b0, b1) into out[b]: one float64 chain per block, in element order (chain_sq's sums).
 * Four whole blocks' chains advance together: independent chains, so the adds overlap instead of waiting on
 * each other, and each chain is still the TypeScript order.
 */
void bf16_blocks_sq(const QuantJob& j, int64_t b0, int64_t b1, double* out) {
  const int64_t total = j.rows * j.cols;
  int64_t b = b0;
  for (; b + 4 <= b1 && (b + 4) * kSumBlock <= total; b += 4) {
    const uint8_t* p = j.data + b * kSumBlock * 2;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i < kSumBlock; i++) {
      s0 += bf16_sq(p, i);
      s1 += bf16_sq(p, kSumBlock + i);
      s2 += bf16_sq(p, 2 * kSumBlock + i);
      s3 += bf16_sq(p, 3 * kSumBlock + i);
    }
    out[b] = s0;
    out[b + 1] = s1;
    out[b + 2] = s2;
    out[b + 3] = s3;
  }
  for (; b < b1; b++) out[b] = chain_sq(j, b * kSumBlock, std::min(total, (b + 1) * kSumBlock));
}
}  // namespace

OutputCheck::OutputCheck(const QuantJob& j, const CheckJob& c, RowDequant dequant)
    : j_(j), c_(c), dequant_(std::move(dequant)), dot_(select_check_dot()), frow_(select_check_frow()) {
  const int64_t cols = j.cols;
  if (c.m > 0) {
    nb_ = (c.n + 3) / 4;
    xt_.assign((size_t)(nb_ * cols * 4), 0.0f);
    for (int64_t i = 0; i < c.n; i++)
      for (int64_t k = 0; k < cols; k++) xt_[(size_t)(((i / 4) * cols + k) * 4 + i % 4)] = c.x[i * cols + k];
    pick_.assign((size_t)j.rows, -1);
    for (int64_t jj = 0; jj < c.m; jj++) pick_[(size_t)c.rows[jj]] = (int32_t)jj;
    y_.assign((size_t)(c.n * c.m), 0.0);
    yq_.assign((size_t)(c.n * c.m), 0.0f);
    tasks_ = 1;  // the Σ‖f‖² chain
  }
  if (c.sum_squares) {
    const int64_t total = j.rows * j.cols;
    if (j.dtype == kBF16) {
      blocks_.assign((size_t)((total + kSumBlock - 1) / kSumBlock), 0.0);
      block_tasks_ = ((int64_t)blocks_.size() + kBlocksPerTask - 1) / kBlocksPerTask;
    } else {
      blocks_.assign(1, 0.0);
      block_tasks_ = 1;
    }
    tasks_ += block_tasks_;
  }
}

void OutputCheck::run_task(int64_t t) {
  if (c_.m > 0) {
    if (t == 0) {
      // Σ‖f_j‖² over the sampled rows, in order: one chain, which waits on its add latency; the float
      // products x · f of each row (no quantized data needed) run in the same column loop, in its shadow.
      // Products already set (the GPU's) are kept.
      const int64_t cols = j_.cols, n = c_.n, m = c_.m, nb = f_products_ ? nb_ : 0;
      std::vector<float> fb((size_t)cols);
      std::vector<double> yr((size_t)(4 * nb));
      double s = c_.f_sq_from;
      for (int64_t jj = 0; jj < m; jj++) {
        const float* f = load_row_scalar(j_, c_.rows[jj], fb.data());
        frow_(xt_.data(), nb, cols, f, yr.data(), &s);
        for (int64_t i = 0; i < 4 * nb && i < n; i++) y_[(size_t)(i * m + jj)] = yr[(size_t)i];
      }
      f_sq_ = s;
      return;
    }
    t -= 1;
  }
  const int64_t total = j_.rows * j_.cols;
  if (j_.dtype != kBF16) {
    blocks_[0] = chain_sq(j_, 0, total);
    return;
  }
  int64_t b1 = std::min<int64_t>((int64_t)blocks_.size(), (t + 1) * kBlocksPerTask);
  bf16_blocks_sq(j_, t * kBlocksPerTask, b1, blocks_.data());
}

void OutputCheck::rows_done(int64_t r0, int64_t r1) {
  if (c_.m == 0) return;
  int64_t picked[kCheckDotRows];
  int np = 0;
  for (int64_t r = r0; r < r1; r++) {
    if (pick_[(size_t)r] < 0) continue;
    picked[np++] = pick_[(size_t)r];
    if (np == kCheckDotRows) {
      rows(picked, np);
      np = 0;
    }
  }
  if (np) rows(picked, np);
}

void OutputCheck::set_products(const double* y, const float* yq) {
  f_products_ = false;
  std::copy(y, y + y_.size(), y_.begin());
  std::copy(yq, yq + yq_.size(), yq_.begin());
}

void OutputCheck::rows(const int64_t* jjs, int nr) {
  const int64_t cols = j_.cols, m = c_.m;
  thread_local std::vector<float> buf;
  if ((int64_t)buf.size() < kCheckDotRows * cols) buf.resize((size_t)(kCheckDotRows * cols));
  const float* d[kCheckDotRows];
  for (int k = 0; k < nr; k++) {
    float* db = buf.data() + k * cols;
    const int64_t r = c_.rows[jjs[k]];
    if (dequant_) {
      dequant_(r, db);
    } else {
      QTensor w{j_.q, j_.scales, j_.zeros, j_.rows, cols, j_.bits, j_.group, j_.f16};
      dequantize_row(w, r, db);
    }
    d[k] = db;
  }
  // The quantized products alone: the float ones are the Σ‖f‖² task's (run_task).
  for (int64_t b = 0; b < nb_; b++) {
    const float* xb = xt_.data() + b * cols * 4;
    double yq[4 * kCheckDotRows];
    dot_(xb, cols, nr, nullptr, d, nullptr, yq);
    for (int k = 0; k < nr; k++)
      for (int64_t t = 0; t < 4 && b * 4 + t < c_.n; t++)
        yq_[(size_t)((b * 4 + t) * m + jjs[k])] = (float)yq[k * 4 + t];
  }
}

CheckOut OutputCheck::finish() const {
  CheckOut o;
  const int64_t n = c_.n, m = c_.m;
  o.f_sq = c_.f_sq_from;
  if (c_.y_out) std::copy(y_.begin(), y_.end(), c_.y_out);
  if (c_.yq_out) std::copy(yq_.begin(), yq_.end(), c_.yq_out);
  if (m > 0) {
    o.f_sq = f_sq_;
    // productError's order: inputs in blocks of four, then rows, then the block's inputs.
    double ys = 0, dys = 0;
    for (int64_t i = 0; i < n; i += 4) {
      int64_t k = std::min<int64_t>(4, n - i);
      for (int64_t jj = 0; jj < m; jj++)
        for (int64_t t = 0; t < k; t++) {
          double y = y_[(size_t)((i + t) * m + jj)];
          double d = y - (double)yq_[(size_t)((i + t) * m + jj)];
          ys += y * y;
          dys += d * d;
        }
    }
    o.y_sq = ys;
    o.dy_sq = dys;
  }
  if (c_.sum_squares) {
    double s = 0;
    for (double b : blocks_) s += b;
    o.ref_sq = s;
  }
  return o;
}

}  // namespace apl
