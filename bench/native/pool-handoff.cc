// The thread pool's hand-off per decode dispatch (native/src/infer/pool.cc): Pool::run of empty tasks, 2 tasks
// (one per thread) and 18 (decode_split's count at 2 threads: two big parts and 16 small ones), with a 5 µs
// busy gap between runs like decode's single-threaded steps (so the workers are spinning, as in a token).
// Best, 10th percentile and median µs over 20000 runs, 1 and 2 threads. A decoded token makes 4 dispatches per
// layer and one for the lm head (89 at 22 layers).
// Build and run: g++ -std=c++17 -O2 bench/native/pool-handoff.cc native/src/infer/pool.cc -lpthread -o /tmp/ph && /tmp/ph
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "../../native/src/infer/pool.h"

using namespace apl::infer;
using clk = std::chrono::steady_clock;

int main() {
  for (int threads : {1, 2}) {
    Pool& p = shared_pool(threads);
    for (int ntasks : {2, 18}) {
      std::vector<double> t;
      volatile long sink = 0;
      for (int i = 0; i < 20000; i++) {
        const auto c0 = clk::now();
        p.run(ntasks, [&](int64_t k) { sink = sink + k; });
        t.push_back(std::chrono::duration<double, std::micro>(clk::now() - c0).count());
        const auto g0 = clk::now();
        while (std::chrono::duration<double, std::micro>(clk::now() - g0).count() < 5) {
        }
      }
      std::sort(t.begin(), t.end());
      std::printf("%d thread(s), %d empty tasks: best %.2f µs, p10 %.2f, median %.2f\n", threads, ntasks, t[0],
                  t[t.size() / 10], t[t.size() / 2]);
    }
  }
  return 0;
}
