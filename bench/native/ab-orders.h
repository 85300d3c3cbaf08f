// What the A/B benches of the wide decode's two reading orders (kq-stream.cc, wide-stream.cc) share: the
// environment knobs and the timed loop with its bit-for-bit check and report. Bench code only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

inline int64_t env(const char* k, int64_t d) {
  const char* v = std::getenv(k);
  return v ? std::atoll(v) : d;
}

/**
 * One thread count's A/B: reps × the two orders (block by block, then memory order) alternating call by call,
 * each call on the next of nw weights (the one used longest ago). set_seq(bool) picks the order, run(i, y)
 * runs weight i into y (rows floats); after each memory-order call the same weight block by block (not timed)
 * must give the same bits. Prints best and median GB/s of each order (bytes a call) and their ratios; only:
 * memory order alone, no check.
 */
template <class SetSeq, class Run>
void ab_orders(int threads, int reps, int nw, int64_t rows, double bytes, SetSeq set_seq, Run run,
               bool only = false) {
  std::vector<double> ta, tb;
  std::vector<float> ya((size_t)rows), yb((size_t)rows);
  bool same = true;
  int call = 0;
  for (int i = 0; i < reps; i++)
    for (int order = only ? 1 : 0; order < 2; order++) {
      const int w = call++ % nw;
      set_seq(order == 1);
      const auto c0 = std::chrono::steady_clock::now();
      run(w, order ? yb.data() : ya.data());
      (order ? tb : ta)
          .push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count());
      if (order && !only) {  // the same weight in the order before (not timed)
        set_seq(false);
        run(w, ya.data());
        same = same && std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0;
      }
    }
  auto gbs = [&](std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return bytes / v[(size_t)(q * (double)(v.size() - 1))] / 1e9;
  };
  if (only) {
    std::printf("%d thread(s): memory order best %.1f GB/s, median %.1f\n", threads, gbs(tb, 0), gbs(tb, 0.5));
    return;
  }
  std::printf(
      "%d thread(s): block by block best %.1f GB/s, median %.1f; memory order best %.1f, median %.1f; "
      "ratio best %.2f, median %.2f; outputs %s\n",
      threads, gbs(ta, 0), gbs(ta, 0.5), gbs(tb, 0), gbs(tb, 0.5), gbs(tb, 0) / gbs(ta, 0),
      gbs(tb, 0.5) / gbs(ta, 0.5), same ? "identical" : "DIFFER");
}
