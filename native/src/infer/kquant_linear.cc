// The scalar kquant kernel, the choice of a kquant variant, and kquant linear layers over the thread pool.
#include "kquant_linear.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../env.h"
#include "kquant_ref.h"
#include "linear.h"

namespace apl {
namespace infer {

namespace {

void kq_scalar_quantize_act(const float* x, int64_t cols, int64_t group, int, int8_t* xq, float* dx,
                            int32_t* xsum) {
  act_quantize_ref(x, cols, group, xq, dx, xsum);
  for (int64_t c = cols; c % 32; c++) xq[c] = 0;
}

void kq_scalar_qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                     int64_t ystride) {
  for (int64_t r = r0; r < r1; r++)
    for (int64_t t = t0; t < t1; t++)
      y[t * ystride + r] = kq_qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
}

}  // namespace

const KqKernel& kq_scalar_kernel() {
  static const KqKernel k{"scalar", kq_scalar_quantize_act, kq_scalar_qrows};
  return k;
}

bool& kq_wide_seq() {
  static bool on = env_not_0("APL_WIDE_SEQ");
  return on;
}

const KqKernel& kq_kernel_for(const Kernel& k) {
  const KqKernel* v = nullptr;
  if (std::strcmp(k.name, "avx2") == 0)
    v = kq_avx2_kernel();
  else if (std::strcmp(k.name, "avx512-gemm") == 0)
    v = kq_gemm_kernel();
  else if (std::strcmp(k.name, "avx512-amx") == 0)
    v = kq_amx_kernel();
  else if (std::strncmp(k.name, "avx512", 6) == 0)
    v = kq_vnni_kernel();
  else if (std::strcmp(k.name, "neon") == 0)
    v = kq_neon_kernel();
  else if (std::strcmp(k.name, "neon-dotprod") == 0)
    v = kq_neon_dotprod_kernel();
  return v ? *v : kq_scalar_kernel();
}

const char* kq_check_linear(const Linear& w) {
  if (w.bits != 2 && w.bits != 4 && w.bits != 8) return "kquant bits must be 2, 4 or 8";
  if (w.group < 1 || w.group > kKqMaxGroup) return "kquant group must be 1..256";
  if (w.kq_super < w.group || w.kq_super % w.group || w.kq_super > kKqMaxElems ||
      w.kq_super / w.group > kKqMaxGroups)
    return "kquant super must be a multiple of group, at most 4096 elements and 64 groups";
  if (w.kq_sbits < 1 || w.kq_sbits > 8 || w.kq_mbits < 1 || w.kq_mbits > 8)
    return "kquant scaleBits and minBits must be 1..8";
  return "";
}

void kq_linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const KqKernel& k,
               ActQ& act) {
  if (n <= 0) return;
  if (k.gemm && k.gemm->fits(w, n)) return gemm_schedule(w, x, n, y, pool, *k.gemm, act);
  const int threads = pool.threads();
  const int64_t tb = n == 1 ? 1 : 16;
  const int64_t nb = (n + tb - 1) / tb;
  const int64_t rc = n == 1 ? std::max<int64_t>(4, w.rows / (threads * 8)) : 16;
  const int64_t nrc = (w.rows + rc - 1) / rc;
  act.resize(n, w.cols, w.group);
  const int64_t stride = (std::max(w.cols, kq_blocked_len(w.cols, w.group)) + 63) / 64 * 64;
  if (stride > act.xstride) {
    act.xstride = stride;
    // 64 bytes more than used: readers take xq_of(t), which starts at the first 64-byte boundary of xq.
    if ((int64_t)act.xq.size() < n * stride + 64) act.xq.resize((size_t)(n * stride + 64));
  }
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
}

}  // namespace infer
}  // namespace apl
