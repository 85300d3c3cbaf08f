// decode_split's two forms side by side, token by token in one process: the 90 / 10 split (one big part per
// thread, then 8 · threads small ones) and the guided one (APL_DEC_GUIDED=1: each task 1 / (2 · threads) of the
// rows left). A "token" runs a TinyLlama-shaped layer's four decode dispatches (q/k/v, o, gate/up, down: 4-bit
// groups of 64, f16 scales) for each of APL_DS_LAYERS layers (8: 190 MB, out of cache), with a 5 µs busy gap
// after each dispatch (a token's single-threaded steps); the form flips every token. Per form: best and median
// token ms, and the linears' idle thread time per token thread by thread (DispatchProfile).
// Build (after `npm run test:native`, which builds the objects) and run: o=native/build/test; g++ -std=c++17 -O2
// bench/native/dec-split.cc $o/g_kernels.o $o/g_pool.o $o/g_linear.o $o/g_kquant_linear.o $o/g_infer_*.o
// -lpthread -o /tmp/ds && /tmp/ds
// Env: APL_DS_LAYERS (8), APL_DS_TOKENS (60, both forms together), APL_DS_THREADS (2).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../../native/src/infer/linear.h"

using namespace apl;
using namespace apl::infer;

namespace {
int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

struct Weight {
  std::vector<uint8_t> q, s, z;
  Linear w;
};

Weight make(int64_t rows, int64_t cols, std::mt19937& g) {
  Weight p;
  p.q.resize((size_t)(rows * packed_row_bytes(cols, 4)));
  for (auto& b : p.q) b = (uint8_t)g();
  const size_t n = (size_t)(rows * groups_per_row(cols, 64));
  p.s.assign(n * 2, 0);
  p.z.assign(n * 2, 0);
  for (size_t i = 0; i < n; i++) {
    const uint16_t s = 0x2000 | (uint16_t)(g() & 0x3ff), z = 0x4000 | (uint16_t)(g() & 0x3ff);  // f16 ~0.01, ~2
    memcpy(&p.s[2 * i], &s, 2);
    memcpy(&p.z[2 * i], &z, 2);
  }
  p.w.kind = 0;
  p.w.rows = rows;
  p.w.cols = cols;
  p.w.bits = 4;
  p.w.group = 64;
  p.w.f16 = true;
  p.w.q = p.q.data();
  p.w.scales = p.s.data();
  p.w.zeros = p.z.data();
  return p;
}

void gap_us(double us) {
  const auto g0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - g0).count() < us) {
  }
}
}  // namespace

int main() {
  const int layers = env_int("APL_DS_LAYERS", 8), tokens = env_int("APL_DS_TOKENS", 60);
  const int threads = env_int("APL_DS_THREADS", 2);
  const int64_t H = 2048, KV = 256, I = 5632;
  std::mt19937 g(7);
  std::vector<std::vector<Weight>> L((size_t)layers);
  for (auto& l : L)
    for (int64_t r : {H, KV, KV, H, I, I}) l.push_back(make(r, H, g));
  for (auto& l : L) l.push_back(make(H, I, g));  // down
  std::vector<float> x((size_t)I), y((size_t)(2 * I));
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(g);
  const Kernel& k = select_kernel();
  Pool& pool = shared_pool(threads);
  ActQ act;
  DispatchProfile prof[2];
  std::vector<double> ms[2];
  for (int t = 0; t < tokens + 2; t++) {
    const int form = t % 2;
    decode_guided() = form == 1;
    DispatchProfile* dp = t >= 2 ? &prof[form] : nullptr;  // two warm-up tokens
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& l : L) {
      const LinearOut qkv[3] = {{&l[0].w, y.data()}, {&l[1].w, y.data() + H}, {&l[2].w, y.data() + H + KV}};
      linears(qkv, 3, x.data(), 1, pool, k, act, dp);
      gap_us(5);
      linear(l[3].w, x.data(), 1, y.data(), pool, k, act, dp);
      gap_us(5);
      const LinearOut gu[2] = {{&l[4].w, y.data()}, {&l[5].w, y.data() + I}};
      linears(gu, 2, x.data(), 1, pool, k, act, dp);
      gap_us(5);
      linear(l[6].w, x.data(), 1, y.data(), pool, k, act, dp);
      gap_us(5);
    }
    if (dp) ms[form].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const char* names[2] = {"90/10 ", "guided"};
  double med[2];
  for (int f = 0; f < 2; f++) {
    std::vector<double> v = ms[f];
    std::sort(v.begin(), v.end());
    med[f] = v[v.size() / 2];
    const double n = (double)v.size();
    std::printf("%s: %d thread(s), %d layers, best %.3f ms, median %.3f ms per token; idle %.1f %% of the runs\n",
                names[f], threads, layers, v[0], med[f],
                100.0 * (threads * prof[f].wall_ns - (double)prof[f].busy_ns.load()) / (threads * prof[f].wall_ns));
    for (int i = 0; i < threads && i < DispatchProfile::kThreads; i++) {
      const DispatchProfile::Thread& th = prof[f].th[i];
      std::printf("  thread %d: %.1f tasks, idle before its first %.3f ms, after its last %.3f ms, between %.3f ms, "
                  "no task %.3f ms (%lld runs) per token\n",
                  i, (double)th.all_tasks / n, th.late / 1e6 / n, th.early / 1e6 / n, th.between / 1e6 / n,
                  th.none_ns / 1e6 / n, (long long)th.none);
    }
  }
  std::printf("median 90/10 / guided: %.3f\n", med[0] / med[1]);
  return 0;
}
