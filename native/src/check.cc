// The output check of a quantize job (see check.h): the float products x · Wᵀ and the quantized ones
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
}

void OutputCheck::run_task(int64_t t) {
  if (c_.m == 0 || t != 0) return;
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
  return o;
}

}  // namespace apl
