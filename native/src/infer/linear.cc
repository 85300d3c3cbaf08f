#include "linear.h"

#include <algorithm>
#include <vector>

#include "../env.h"
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

/** Rows in chunks over the pool, every token count (main's only path before the decode split below). */
void linear_chunked(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Kernel& k,
                    ActQ& act) {
  if (w.kind == 2) return kq_linear(w, x, n, y, pool, kq_kernel_for(k), act);
  const int threads = pool.threads();
  // Tokens in blocks (activations of a block stay in cache while a chunk of rows is reused across them).
  const int64_t tb = n == 1 ? 1 : 16;
  const int64_t nb = (n + tb - 1) / tb;
  if (k.gemm && k.gemm->fits(w, n)) return gemm_schedule(w, x, n, y, pool, *k.gemm, act);
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

/** APL_DEC_SPLIT=0 (read once): decode runs main's chunking before this split, one dispatch per weight. */
bool old_split() {
  static const bool old = !env_not_0("APL_DEC_SPLIT");
  return old;
}

}  // namespace

bool& decode_guided() {
  static bool on = env_is_1("APL_DEC_GUIDED");
  return on;
}

void decode_split(int64_t total, int threads, std::vector<int64_t>& b) {
  b.assign(1, 0);
  if (threads > 1 && total > 2 * threads && decode_guided()) {
    // each task a 1 / (2 · threads) of the rows left, down to the small size of the 90 / 10 split below
    const int64_t small = std::max<int64_t>(2, total / (80 * threads) / 2 * 2);
    while (total - b.back() > small) {
      const int64_t left = total - b.back();
      b.push_back(std::min(total, b.back() + std::max(small, left / (2 * threads) / 2 * 2)));
    }
  } else if (threads > 1 && total > 2 * threads) {
    // one big part per thread (90 % of the rows), then 8 small ones per thread
    const int64_t big = total * 9 / 10 / threads / 2 * 2;
    for (int i = 1; i <= threads; i++) b.push_back(big * i);
    const int64_t start = b.back(), small = 8 * threads;
    for (int64_t i = 1; i < small; i++) {
      const int64_t v = std::min(total, (start + (total - start) * i / small) / 2 * 2);
      if (v > b.back()) b.push_back(v);
    }
  }
  if (b.back() != total) b.push_back(total);
}

void DispatchProfile::task(double s0, double s1) {
  busy_ns.fetch_add((int64_t)(s1 - s0), std::memory_order_relaxed);
  const int i = Pool::thread_index();
  if (i >= kThreads) return;
  Thread& t = th[i];
  if (t.tasks++ == 0) t.first = s0;
  t.last = s1;
  t.busy += s1 - s0;
}

void DispatchProfile::run_done(double t0, double t1, int threads) {
  for (int i = 0; i < threads && i < kThreads; i++) {
    Thread& t = th[i];
    if (t.tasks == 0) {
      t.none++;
      t.none_ns += t1 - t0;
    } else {
      t.late += t.first - t0;
      t.early += t1 - t.last;
      t.between += (t.last - t.first) - t.busy;
      t.busy_ns += t.busy;
      t.all_tasks += t.tasks;
    }
    t.tasks = 0;
    t.busy = 0;
  }
}

void linears(const LinearOut* outs, int count, const float* x, int64_t n, Pool& pool, const Kernel& k,
             ActQ& act, DispatchProfile* prof) {
  if (n <= 0 || count <= 0) return;
  const Linear& w0 = *outs[0].w;
  bool one = n == 1 && (w0.kind == 0 || w0.kind == 1) && !old_split();
  for (int i = 1; i < count && one; i++) {
    const Linear& w = *outs[i].w;
    one =
        w.kind == w0.kind && w.cols == w0.cols && (w.kind == 1 || (w.bits == w0.bits && w.group == w0.group));
  }
  if (!one) {
    for (int i = 0; i < count; i++) linear_chunked(*outs[i].w, x, n, outs[i].y, pool, k, act);
    return;
  }
  double t0 = prof ? DispatchProfile::now_ns() : 0;
  if (w0.kind == 0) {  // the activations quantized once for all the weights
    act.resize(1, w0.cols, w0.group);
    k.quantize_act(x, w0.cols, w0.group, w0.bits, act.xq_at(0), act.dx.data(), act.xsum.data());
  }
  if (prof) {
    const double t1 = DispatchProfile::now_ns();
    prof->quant_ns += t1 - t0;
    t0 = t1;
  }
  int64_t total = 0;
  for (int i = 0; i < count; i++) total += outs[i].w->rows;
  thread_local std::vector<int64_t> split;
  decode_split(total, pool.threads(), split);
  const std::vector<int64_t>& b = split;  // the caller's (a worker naming `split` would find its own)
  // Task i: rows [b[i], b[i+1]) of the weights' rows end to end (a task may span two weights).
  pool.run((int64_t)b.size() - 1, [&](int64_t task) {
    const double s0 = prof ? DispatchProfile::now_ns() : 0;
    int64_t lo = b[(size_t)task], hi = b[(size_t)task + 1], base = 0;
    for (int i = 0; i < count && lo < hi; base += outs[i].w->rows, i++) {
      const Linear& w = *outs[i].w;
      if (lo >= base + w.rows) continue;
      const int64_t r0 = lo - base, r1 = std::min(w.rows, hi - base);
      if (w.kind == 0)
        k.qrows(w, r0, r1, act, 0, 1, outs[i].y, w.rows);
      else
        k.frows(w, r0, r1, x, 0, 1, outs[i].y, w.rows);
      lo = base + r1;
    }
    if (prof) prof->task(s0, DispatchProfile::now_ns());
  });
  if (prof) {
    const double t1 = DispatchProfile::now_ns();
    prof->wall_ns += t1 - t0;
    prof->run_done(t0, t1, pool.threads());
  }
}

void linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Kernel& k, ActQ& act,
            DispatchProfile* prof) {
  if (n <= 0) return;
  if (n == 1) {
    const LinearOut o{&w, y};
    return linears(&o, 1, x, n, pool, k, act, prof);
  }
  linear_chunked(w, x, n, y, pool, k, act);
}

}  // namespace infer
}  // namespace apl
