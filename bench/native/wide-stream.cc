// A/B of the AVX-512 wide decode kernel's two reading orders on weights read from DRAM: a row pair block by
// block (block b of row a, then block b of row b: the order before) against memory order (wide_rows_seq: up
// to 16 blocks of row a, then the same of row b). APL_WS_WEIGHTS (12) distinct weights of APL_WS_ROWS ×
// APL_WS_COLS (5632 × 2048), APL_WS_BITS (4) bits, groups of APL_WS_GROUP (64), f16 scales, each call on the
// weight used longest ago, the two orders alternating call by call, 1 and 2 threads (the decode split of
// linear.cc: 90 % in equal parts, then 8·T small ones). Prints best and median GB/s of each and checks that
// both give the same outputs bit for bit. Build and run (x86-64 with AVX-512 VNNI): bash
// bench/native/wide-stream.sh
#define APL_INFER_VNNI 1
#define APL_INFER_WIDE 1
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../../native/src/cpu/infer_x86.h"
#include "../../native/src/infer/pool.h"
#include "ab-orders.h"

using namespace apl::infer;

int main() {
  const int64_t rows = env("APL_WS_ROWS", 5632), cols = env("APL_WS_COLS", 2048),
                group = env("APL_WS_GROUP", 64);
  const int bits = (int)env("APL_WS_BITS", 4);
  const int nw = (int)env("APL_WS_WEIGHTS", 12), reps = (int)env("APL_WS_REPS", 200);
  std::mt19937 rng(1);
  struct Wt {
    std::vector<uint8_t> q, s, z;
    Linear w;
  };
  std::vector<Wt> ws((size_t)nw);
  for (auto& t : ws) {
    Linear& w = t.w;
    w.rows = rows, w.cols = cols, w.bits = bits, w.group = group, w.f16 = true;
    t.q.resize((size_t)(rows * w.row_bytes()));
    for (auto& c : t.q) c = (uint8_t)rng();
    t.s.resize((size_t)(rows * w.gpr() * 2));
    t.z.resize(t.s.size());
    for (size_t i = 0; i < t.s.size(); i += 2) {
      const uint16_t sv = (uint16_t)(0x1800 + rng() % 0x400), zv = (uint16_t)(0x4400 + rng() % 0x600);
      memcpy(&t.s[i], &sv, 2);
      memcpy(&t.z[i], &zv, 2);
    }
    w.q = t.q.data(), w.scales = t.s.data(), w.zeros = t.z.data();
  }
  std::vector<float> x((size_t)cols);
  for (int64_t i = 0; i < cols; i++) x[(size_t)i] = (float)std::sin((double)i * 0.37);
  ActQ act;
  act.resize(1, cols, group);
  x86::quantize_act_wide(x.data(), cols, group, bits, act.xq_at(0), act.dx.data(), act.xsum.data());
  const double bytes = (double)ws[0].w.bytes();
  std::printf("%lld x %lld, %d-bit g%lld, %d weights (%.1f MB each), %d calls per order\n", (long long)rows,
              (long long)cols, bits, (long long)group, nw, bytes / 1e6, reps);
  for (int threads : {1, 2}) {
    Pool& pool = shared_pool(threads);
    std::vector<int64_t> b(1, 0);
    if (threads > 1) {
      const int64_t big = rows * 9 / 10 / threads / 2 * 2;
      for (int i = 1; i <= threads; i++) b.push_back(big * i);
      const int64_t start = b.back(), small = 8 * threads;
      for (int64_t i = 1; i < small; i++) {
        const int64_t v = std::min(rows, (start + (rows - start) * i / small) / 2 * 2);
        if (v > b.back()) b.push_back(v);
      }
    }
    if (b.back() != rows) b.push_back(rows);
    ab_orders(
        threads, reps, nw, rows, bytes, [](bool seq) { x86::wide_seq() = seq; },
        [&](int i, float* y) {
          const Linear& w = ws[(size_t)i].w;
          pool.run((int64_t)b.size() - 1, [&](int64_t k) {
            x86::qrows<true>(w, b[(size_t)k], b[(size_t)k + 1], act, 0, 1, y, rows);
          });
        });
  }
  return 0;
}
