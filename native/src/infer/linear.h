// Linear layers over the thread pool: y (n × rows) = x (n × cols) · Ŵᵀ.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "infer.h"
#include "pool.h"

namespace apl {
namespace infer {

/** Why a weight cannot run (empty when it can). */
const char* check_linear(const Linear& w);

/**
 * APL_PROFILE=1's view inside decode's one-dispatch linears (n = 1), summed over the calls given it: the
 * activations' quantization (on the caller's thread while the others wait), the wall time of the pool's runs
 * after it and the tasks' time summed over threads (threads · wall − busy: thread time inside the runs
 * without a task, i.e. the hand-offs and the wait for the last task), and that idle time thread by thread.
 */
struct DispatchProfile {
  static double now_ns() {
    return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  double quant_ns = 0, wall_ns = 0;
  std::atomic<int64_t> busy_ns{0};
  /** Threads seen one by one (Pool::thread_index; 0 is the caller); higher indices only count in busy_ns. */
  static constexpr int kThreads = 16;
  /**
   * One thread's idle time, summed over the runs: `late` from a run's start to its first task, `early` from
   * its last task to the run's end, `between` its tasks (claims), and the runs it took no task of (`none`
   * runs, their wall time in none_ns). first / last / busy / tasks: the current run (written by that thread
   * only).
   */
  struct alignas(64) Thread {  // a line each: the threads write their own while a run goes on
    double first = 0, last = 0, busy = 0;
    int64_t tasks = 0;
    double late = 0, early = 0, between = 0, none_ns = 0, busy_ns = 0;
    int64_t none = 0, all_tasks = 0;
  } th[kThreads];
  /** A task of the current run ran on this thread from s0 to s1. */
  void task(double s0, double s1);
  /** The current run went from t0 to t1 over `threads` threads: adds its idle time per thread. */
  void run_done(double t0, double t1, int threads);
};

/**
 * y[t·rows + r] for t < n. Packed weights quantize x per group to int8 (into act) and run integer dot
 * products; float weights run in float32. prof (decode only): see DispatchProfile.
 */
void linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Kernel& k, ActQ& act,
            DispatchProfile* prof = nullptr);

/**
 * The prompt schedule of a row-interleaved GEMM (groupwise `Gemm`, kquant `KqGemm`: both give quantize_act
 * and rows): x quantized per token over the pool, then blocks of 16 rows × 128 tokens, token blocks outermost
 * so a block's activations stay cached.
 */
template <class G>
void gemm_schedule(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const G& gm, ActQ& act) {
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

struct LinearOut {
  const Linear* w;
  float* y;
};
/**
 * Linears of the same input x (q/k/v, gate/up): outs[i].y = x · Ŵᵢᵀ. Decode (n = 1, packed weights of one
 * bits / group / cols, or float weights of one cols) quantizes x once and runs the weights' rows end to end
 * in one dispatch over the pool (decode_split); otherwise one linear() each.
 */
void linears(const LinearOut* outs, int count, const float* x, int64_t n, Pool& pool, const Kernel& k,
             ActQ& act, DispatchProfile* prof = nullptr);
/**
 * The decode tasks over `total` rows (boundaries b[0] = 0 < … < b.back() = total, even): with 2+ threads, one
 * part of 90 % / threads of the rows per thread, then 8 · threads small parts that whichever thread is ahead
 * takes, so neither waits long at the end; one task with one thread.
 */
void decode_split(int64_t total, int threads, std::vector<int64_t>& b);
/**
 * APL_DEC_GUIDED=1 (read once; a bench flips it per call): decode_split gives each task 1 / (2 · threads) of
 * the rows left instead (guided self-scheduling: a thread that starts late or runs slower takes fewer rows),
 * down to the small parts' size.
 */
bool& decode_guided();

}  // namespace infer
}  // namespace apl
