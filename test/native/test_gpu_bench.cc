// With a usable GPU (called from test_gpu.cc): quantize with the output check on 'gpu' against 'cpu' (the
// same q/scales/zeros bytes, the same check to the last bit) over bits × groups × dtypes; and with --bench
// the figures of bench/gpu.sh that need no Node: a TinyLlama-shaped conversion at the engine level (every
// weight of 22 layers, 4 bits, groups of 64, output check on) on cpu and gpu side by side, and the forward
// pass (decode tokens/s at 8/4/2/1 bits + bf16, a 512-token prompt) on cpu (all cores) and gpu.
#ifdef APL_HAVE_CUDA
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/cuda/forward.h"
#include "../../native/src/engine.h"
#include "check.h"

using namespace apl;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<uint8_t> random_input(int64_t n, int dtype, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<uint8_t> b((size_t)(n * dtype_size(dtype)));
  for (int64_t i = 0; i < n; i++) {
    float v = nd(g);
    if (dtype == kF32) {
      memcpy(&b[(size_t)i * 4], &v, 4);
    } else {
      uint16_t h = (uint16_t)(f32_bits(v) >> 16);
      memcpy(&b[(size_t)i * 2], &h, 2);
    }
  }
  return b;
}

struct Run {
  std::vector<uint8_t> q, s, z;
  QuantStatus st;
};

Run run(const std::vector<uint8_t>& in, int dtype, int64_t rows, int64_t cols, int bits, int64_t group,
        int backend, const CheckJob* chk, int threads) {
  Run r;
  r.q.resize((size_t)(rows * packed_row_bytes(cols, bits)));
  const size_t pb = (size_t)(rows * groups_per_row(cols, group) * 2);
  r.s.resize(pb);
  r.z.resize(pb);
  QuantJob j{in.data(), dtype, rows, cols,       bits,       group,     false,
             true,      true,  true, r.q.data(), r.s.data(), r.z.data()};
  r.st = quantize(j, backend, threads, nullptr, chk);
  return r;
}

bool same_check(const CheckOut& a, const CheckOut& b) {
  return a.f_sq == b.f_sq && a.y_sq == b.y_sq && a.dy_sq == b.dy_sq;
}

/** One weight of rows × cols through cpu and gpu; adds the wall times. */
void compare(int64_t rows, int64_t cols, int dtype, int bits, int64_t group, int threads, double* tc,
             double* tg, uint32_t seed) {
  std::vector<uint8_t> in = random_input(rows * cols, dtype, seed);
  const int64_t n = 8, m = std::min<int64_t>(rows, 256);
  std::vector<float> x((size_t)(n * cols));
  std::mt19937 g(seed + 1);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(g);
  std::vector<int32_t> picks((size_t)m);
  for (int64_t k = 0; k < m; k++) picks[(size_t)k] = (int32_t)(k * rows / m);
  CheckJob chk{x.data(), n, picks.data(), m, true};
  double t0 = now();
  Run a = run(in, dtype, rows, cols, bits, group, 0, &chk, threads);
  double t1 = now();
  Run b = run(in, dtype, rows, cols, bits, group, 1, &chk, threads);
  *tc += t1 - t0;
  *tg += now() - t1;
  CHECK(a.st.status == kOk && b.st.status == kOk, "quantize: %s / %s", a.st.error.c_str(),
        b.st.error.c_str());
  CHECK(b.st.backend.rfind("cuda:", 0) == 0 && b.st.backend.find("CPU") == std::string::npos,
        "gpu backend: %s", b.st.backend.c_str());
  CHECK(a.q == b.q && a.s == b.s && a.z == b.z,
        "gpu q/scales/zeros differ: %lldx%lld dtype %d bits %d group %lld", (long long)rows, (long long)cols,
        dtype, bits, (long long)group);
  CHECK(a.st.has_check && b.st.has_check && same_check(a.st.check, b.st.check),
        "output check differs: %lldx%lld dtype %d bits %d group %lld", (long long)rows, (long long)cols,
        dtype, bits, (long long)group);
}

/** A TinyLlama-shaped model with random weights (packed bits or bf16 when bits == 0); owns its bytes. */
struct Big {
  infer::ModelConfig c;
  infer::ModelWeights w;
  std::vector<std::vector<uint8_t>> store;
  std::vector<float> ones;
  const uint8_t* bytes(size_t n, std::mt19937& g, uint16_t fill_or0) {
    store.emplace_back(n);
    auto& b = store.back();
    if (fill_or0) {
      for (size_t i = 0; i + 1 < n; i += 2) memcpy(&b[i], &fill_or0, 2);
    } else {
      for (auto& v : b) v = (uint8_t)g();
    }
    return b.data();
  }
  infer::Linear make(int64_t rows, int64_t cols, int bits, std::mt19937& g) {
    infer::Linear L;
    L.rows = rows;
    L.cols = cols;
    if (bits == 0) {
      L.kind = 1;
      L.dtype = kBF16;
      const uint8_t* d = bytes((size_t)(rows * cols * 2), g, 0);
      uint16_t* h = (uint16_t*)d;
      for (int64_t i = 0; i < rows * cols; i++) h[i] = (uint16_t)((h[i] & 0x807f) | 0x3c00);
      L.data = d;
      return L;
    }
    L.kind = 0;
    L.bits = bits;
    L.group = 64;
    L.f16 = true;
    L.q = bytes((size_t)(rows * L.row_bytes()), g, 0);
    L.scales = bytes((size_t)(rows * L.gpr() * 2), g, f32_to_f16(0.002f));
    L.zeros = bytes((size_t)(rows * L.gpr() * 2), g, f32_to_f16((float)(1 << (bits - 1)) - 0.5f));
    return L;
  }
  Big(int bits, int64_t layers, int64_t context) {
    std::mt19937 g(7);
    c.hidden = 2048;
    c.inter = 5632;
    c.layers = layers;
    c.heads = 32;
    c.kv_heads = 4;
    c.head_dim = 64;
    c.vocab = 32000;
    c.eps = 1e-5f;
    c.context = context;
    for (int i = 0; i < 32; i++) c.inv_freq.push_back((float)(1.0 / std::pow(10000.0, i / 32.0)));
    store.reserve((size_t)(layers * 7 * 3 + 16));
    ones.assign((size_t)c.hidden, 1.0f);
    w.embed = make(c.vocab, c.hidden, bits, g);
    for (int64_t l = 0; l < layers; l++) {
      infer::LayerWeights L;
      L.in_norm = L.post_norm = ones.data();
      L.q = make(2048, 2048, bits, g);
      L.k = make(256, 2048, bits, g);
      L.v = make(256, 2048, bits, g);
      L.o = make(2048, 2048, bits, g);
      L.gate = make(5632, 2048, bits, g);
      L.up = make(5632, 2048, bits, g);
      L.down = make(2048, 5632, bits, g);
      w.layers.push_back(L);
    }
    w.final_norm = ones.data();
    w.lm_head = make(c.vocab, c.hidden, bits, g);
  }
};

template <class Fwd>
void speed(Fwd fwd, int decode, int prompt, double* dec, double* pr) {
  std::vector<int32_t> t((size_t)prompt);
  for (int i = 0; i < prompt; i++) t[(size_t)i] = (i * 7919 + 13) % 32000;
  fwd(t.data(), 16, 0);  // warm-up
  double t0 = now();
  for (int i = 0; i < decode; i++) fwd(&t[(size_t)i], 1, 16 + i);
  *dec = decode / (now() - t0);
  t0 = now();
  fwd(t.data(), prompt, 0);
  *pr = prompt / (now() - t0);
}
}  // namespace

int test_gpu_check_and_bench(bool bench, int layers) {
  // bits × groups × dtypes on an odd shape
  double tc = 0, tg = 0;
  for (int dtype : {kF32, kBF16})
    for (int bits : {1, 2, 4, 8})
      for (int64_t group : {32, 128, 517})
        compare(301, 517, dtype, bits, group, 0, &tc, &tg, (uint32_t)(bits + group));
  printf("  quantize + output check: gpu = cpu (bytes and check) on 24 combinations%s\n",
         failures ? " FAILED" : "");
  if (!bench) return failures;
  // The conversion's weights at the engine level, TinyLlama-shaped (bf16 in, 4 bits, groups of 64, check on).
  tc = tg = 0;
  const int64_t shapes[][2] = {{2048, 2048}, {256, 2048},  {256, 2048}, {2048, 2048},
                               {5632, 2048}, {5632, 2048}, {2048, 5632}};
  for (int l = 0; l < layers; l++)
    for (auto& s : shapes) compare(s[0], s[1], kBF16, 4, 64, 0, &tc, &tg, (uint32_t)l);
  compare(32000, 2048, kBF16, 4, 64, 0, &tc, &tg, 99);
  printf(
      "  convert-like pass (%d layers, bf16 → 4 bits, check on): cpu %.2f s, gpu %.2f s (gpu/cpu speed "
      "%.1f×); outputs %s\n",
      layers, tc, tg, tc / tg, failures ? "DIFFER" : "equal");
  // Forward: decode and a 512-token prompt.
  for (int bits : {8, 4, 2, 1, 0}) {
    Big m(bits, layers, 600);
    infer::Model cpu(m.c, m.w, resolve_threads(0), infer::select_kernel());
    std::string err;
    std::unique_ptr<cuda::GpuModel> g(cuda::GpuModel::create(m.c, m.w, &err));
    CHECK(g != nullptr, "GpuModel::create: %s", err.c_str());
    if (!g) continue;
    std::vector<float> out((size_t)m.c.vocab);
    double cd = 0, cp = 0, gd = 0, gp = 0;
    speed([&](const int32_t* t, int64_t n, int64_t pos) { cpu.forward(t, n, pos, false, out.data()); }, 4,
          512, &cd, &cp);
    speed(
        [&](const int32_t* t, int64_t n, int64_t pos) {
          if (!g->forward(t, n, pos, false, out.data(), &err)) CHECK(false, "gpu forward: %s", err.c_str());
        },
        32, 512, &gd, &gp);
    printf(
        "  forward %-6s decode cpu %7.1f gpu %8.1f tokens/s (%.1f×) | prompt 512 cpu %6.0f gpu %7.0f "
        "tokens/s (%.1f×)\n",
        bits ? (std::to_string(bits) + "-bit").c_str() : "bf16", cd, gd, gd / cd, cp, gp, gp / cp);
  }
  return failures;
}
#endif
