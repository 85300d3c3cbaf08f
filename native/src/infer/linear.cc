#include "linear.h"

#include <algorithm>

#include "kquant_linear.h"

namespace apl {
namespace infer {

const char* check_linear(const Linear& w) {
  if (w.rows < 1 || w.cols < 1) return "a linear weight needs at least one row and one column";
  if (w.kind == 0) {
    if (w.bits != 1 && w.bits != 2 && w.bits != 4 && w.bits != 8) return "bits must be 1, 2, 4 or 8";
    if (w.group < 1) return "groupSize must be positive";
    if (std::min(w.group, w.cols) > kMaxGroup) return "groups longer than 65536 values are not supported";
  } else if (w.kind == 2) {
    return kq_check_linear(w);
  } else if (w.kind == 1) {
    if (w.dtype != kF32 && w.dtype != kF16 && w.dtype != kBF16) return "dtype must be f32, f16 or bf16";
  } else {
    return "unknown weight kind";
  }
  return "";
}

namespace {

/** The prompt path: blocks of 16 rows × blocks of tokens, token blocks outermost (activations stay cached).
 */
void gemm_linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Gemm& gm,
                 ActQ& act) {
  act.resize(n, w.cols, w.group);
  pool.run(n, [&](int64_t t) {
    gm.quantize_act(x + t * w.cols, w.cols, w.group, act.xq_at(t), act.dx.data() + t * act.gstride,
                    act.xsum.data() + t * act.gstride);
  });
  const int64_t tb = 128, nb = (n + tb - 1) / tb, rc = 16, nrc = (w.rows + rc - 1) / rc;
  pool.run(nrc * nb, [&](int64_t i) {
    int64_t r0 = (i % nrc) * rc, t0 = (i / nrc) * tb;
    gm.rows(w, r0, std::min(w.rows, r0 + rc), act, t0, std::min(n, t0 + tb), y, w.rows);
  });
}

}  // namespace

void linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Kernel& k, ActQ& act) {
  if (n <= 0) return;
  if (w.kind == 2) return kq_linear(w, x, n, y, pool, kq_kernel_for(k), act);
  const int threads = pool.threads();
  // Tokens in blocks (activations of a block stay in cache while a chunk of rows is reused across them).
  const int64_t tb = n == 1 ? 1 : 16;
  const int64_t nb = (n + tb - 1) / tb;
  if (k.gemm && k.gemm->fits(w, n)) return gemm_linear(w, x, n, y, pool, *k.gemm, act);
  int64_t rc = n == 1 ? std::max<int64_t>(4, w.rows / (threads * 8)) : 16;
  const int64_t nrc = (w.rows + rc - 1) / rc;
  if (w.kind == 0) {
    act.resize(n, w.cols, w.group);
    auto quant = [&](int64_t t) {
      k.quantize_act(x + t * w.cols, w.cols, w.group, w.bits, act.xq_at(t), act.dx.data() + t * act.gstride,
                     act.xsum.data() + t * act.gstride);
    };
    if (n == 1)
      quant(0);
    else
      pool.run(n, quant);
    pool.run(nrc * nb, [&](int64_t i) {
      int64_t r0 = (i / nb) * rc, t0 = (i % nb) * tb;
      k.qrows(w, r0, std::min(w.rows, r0 + rc), act, t0, std::min(n, t0 + tb), y, w.rows);
    });
  } else {
    pool.run(nrc * nb, [&](int64_t i) {
      int64_t r0 = (i / nb) * rc, t0 = (i % nb) * tb;
      k.frows(w, r0, std::min(w.rows, r0 + rc), x, t0, std::min(n, t0 + tb), y, w.rows);
    });
  }
}

}  // namespace infer
}  // namespace apl
