// The CUDA inference path, in two parts. Always (no GPU needed): the kernels' index math and per-element
// operations (native/src/cuda/gpu_index.h) run in CPU loops laid out like the kernels' warps and octets —
// k_act, k_qdot<1|8> with its shuffle order, k_fdot<1|8>, the embedding lookup, the attention window — and
// must equal the scalar reference (infer/ref.h) bit for bit over bits × group sizes × odd shapes × token
// counts. With a usable GPU: cuda::infer_linear equals the scalar kernel bit for bit over the same table, and
// the GPU forward of tiny llama / mistral (sliding window) / gemma models matches the CPU model (scalar
// kernel) within the bound forward.cu states. Otherwise it prints "skipped: no usable GPU (reason)". Built
// and run by test/native/run.sh.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/cuda/gpu_index.h"
#include "../../native/src/infer/linear.h"
#include "../../native/src/infer/model.h"
#include "check.h"
#ifdef APL_HAVE_CUDA
#include "../../native/src/cuda/cuda.h"
#include "../../native/src/cuda/forward.h"
#include "../../native/src/cuda/infer.h"
#endif

using namespace apl;

static std::mt19937 rng(1234);
static float gauss() { return std::normal_distribution<float>(0.0f, 1.0f)(rng); }

/** A random packed weight (codes, f16/f32 scales and zeros) that owns its bytes. */
struct Packed {
  std::vector<uint8_t> q, s, z;
  infer::Linear w;
  Packed(int64_t rows, int64_t cols, int bits, int64_t group, bool f16) {
    w.kind = 0;
    w.rows = rows;
    w.cols = cols;
    w.bits = bits;
    w.group = group;
    w.f16 = f16;
    q.resize((size_t)(rows * w.row_bytes()));
    for (auto& b : q) b = (uint8_t)(rng() & 0xff);
    const size_t np = (size_t)(rows * w.gpr());
    s.resize(np * (f16 ? 2 : 4));
    z.resize(np * (f16 ? 2 : 4));
    for (size_t i = 0; i < np; i++) {
      float sv = 0.01f + 0.05f * std::fabs(gauss()), zv = (float)((1 << bits) - 1) * 0.5f + gauss();
      if (f16) {
        uint16_t a = f32_to_f16(sv), b = f32_to_f16(zv);
        memcpy(&s[i * 2], &a, 2);
        memcpy(&z[i * 2], &b, 2);
      } else {
        memcpy(&s[i * 4], &sv, 4);
        memcpy(&z[i * 4], &zv, 4);
      }
    }
    w.q = q.data();
    w.scales = s.data();
    w.zeros = z.data();
  }
};

struct Floats {
  std::vector<uint8_t> d;
  infer::Linear w;
  Floats(int64_t rows, int64_t cols, int dtype) {
    w.kind = 1;
    w.rows = rows;
    w.cols = cols;
    w.dtype = dtype;
    d.resize((size_t)(rows * cols * dtype_size(dtype)));
    for (int64_t i = 0; i < rows * cols; i++) {
      float v = gauss() / std::sqrt((float)cols);
      if (dtype == kF32) {
        memcpy(&d[(size_t)i * 4], &v, 4);
      } else {
        uint16_t h = dtype == kF16 ? f32_to_f16(v) : (uint16_t)(f32_bits(v) >> 16);
        memcpy(&d[(size_t)i * 2], &h, 2);
      }
    }
    w.data = d.data();
  }
};

/** A kquant weight (kind 2) of random codes and super-block scales, in the layout ../kquant.h writes. */
struct KqRows {
  std::vector<uint8_t> q, codes, d, dm;
  infer::Linear w;
  KqTensor kt;
  KqRows(int64_t rows, int64_t cols, const KqParams& kp) {
    const int64_t groups = gpu::groups(cols, kp.group), supers = gpu::groups(cols, kp.super);
    q.resize((size_t)(rows * gpu::row_bytes(cols, kp.bits)));
    codes.resize((size_t)(rows * ((groups * (kp.sbits + kp.mbits) + 7) / 8)));
    d.resize((size_t)(rows * supers * 2));
    dm.resize(d.size());
    for (auto& b : q) b = (uint8_t)(rng() & 0xff);
    for (auto& b : codes) b = (uint8_t)(rng() & 0xff);
    for (size_t i = 0; i < d.size(); i += 2) {
      uint16_t a = f32_to_f16(0.001f + 0.01f * std::fabs(gauss())),
               b = f32_to_f16(0.02f * std::fabs(gauss()));
      memcpy(&d[i], &a, 2);
      memcpy(&dm[i], &b, 2);
    }
    kt = KqTensor{q.data(), codes.data(), d.data(), dm.data(), rows, cols, kp};
    w.kind = 2;
    w.rows = rows;
    w.cols = cols;
    w.bits = kp.bits;
    w.group = kp.group;
    w.q = q.data();
    w.codes = codes.data();
    w.kd = d.data();
    w.kdmin = dm.data();
    w.kq_group = kp.group;
    w.kq_super = kp.super;
    w.kq_sbits = kp.sbits;
    w.kq_mbits = kp.mbits;
  }
};
/** convert's kquant presets and layouts with tails (super-blocks and groups that do not divide the row). */
static const KqParams kKqParams[] = {
    {4, 32, 256, 6, 6}, {2, 16, 256, 4, 4}, {8, 32, 64, 8, 0}, {4, 16, 48, 5, 3}};

static gpu::DevLinear dev_of(const infer::Linear& w) {
  gpu::DevLinear d;
  d.codes = w.codes;
  d.kd = w.kd;
  d.kdmin = w.kdmin;
  d.kq_group = w.kq_group;
  d.kq_super = w.kq_super;
  d.kq_sbits = w.kq_sbits;
  d.kq_mbits = w.kq_mbits;
  d.kind = w.kind;
  d.rows = w.rows;
  d.cols = w.cols;
  d.q = w.q;
  d.scales = w.scales;
  d.zeros = w.zeros;
  d.bits = w.bits;
  d.group = w.group;
  d.f16 = w.f16;
  d.data = w.data;
  d.dtype = w.dtype;
  return d;
}

static std::vector<float> randn(int64_t n) {
  std::vector<float> x((size_t)n);
  for (auto& v : x) v = gauss();
  return x;
}

/** The scalar kernel's y (n × rows). */
static std::vector<float> scalar_linear(const infer::Linear& w, const std::vector<float>& x, int64_t n) {
  std::vector<float> y((size_t)(n * w.rows));
  infer::ActQ act;
  infer::linear(w, x.data(), n, y.data(), infer::shared_pool(1), infer::scalar_kernel(), act);
  return y;
}

/** k_act + k_qdot<T> emulated: one (token, group) per "thread", warps of 32 lanes with the kernel's shuffles.
 */
static std::vector<float> emulate_packed(const infer::Linear& w, const std::vector<float>& x, int64_t n,
                                         int T) {
  const gpu::DevLinear d = dev_of(w);
  const int64_t cols = w.cols, gpr = gpu::groups(cols, w.group);
  std::vector<int8_t> xq((size_t)(n * cols));
  std::vector<float> dx((size_t)(n * gpr));
  std::vector<int32_t> xsum((size_t)(n * gpr));
  for (int64_t i = 0; i < n * gpr; i++) {  // k_act's threads
    int64_t t = i / gpr, g = i % gpr;
    dx[(size_t)i] = gpu::act_group(x.data() + t * cols, g * w.group, gpu::group_end(g, w.group, cols),
                                   xq.data() + t * cols, &xsum[(size_t)i]);
  }
  std::vector<float> y((size_t)(n * w.rows), NAN);
  for (int64_t warp = 0; warp < gpu::warp_tasks(w.rows, n, T); warp++) {
    int64_t r, t0;
    gpu::warp_task(warp, w.rows, T, &r, &t0);
    const uint8_t* qrow = d.q + r * gpu::row_bytes(cols, d.bits);
    std::vector<float> acc((size_t)(32 * T), 0.0f);  // [lane][t]
    for (int64_t g0 = 0; g0 < gpr; g0 += 32) {
      std::vector<float> term((size_t)(32 * T), 0.0f);
      for (int lane = 0; lane < 32; lane++) {
        const int64_t g = g0 + lane;
        if (g >= gpr) continue;
        float s = gpu::param_at(d.scales, r * gpr + g, d.f16), z = gpu::param_at(d.zeros, r * gpr + g, d.f16);
        for (int t = 0; t < T; t++) {
          if (t0 + t >= n) continue;
          int32_t isum = 0;
          for (int64_t c = g * d.group; c < gpu::group_end(g, d.group, cols); c++)
            isum += (int32_t)infer::packed_at(qrow, c, d.bits) * (int32_t)xq[(size_t)((t0 + t) * cols + c)];
          const int64_t gi = (t0 + t) * gpr + g;
          term[(size_t)(lane * T + t)] = gpu::group_term(isum, s, z, dx[(size_t)gi], xsum[(size_t)gi]);
        }
      }
      for (int t = 0; t < T; t++)
        for (int k = 0; k < 4; k++)
          for (int lane = 0; lane < 32; lane++)
            if (gpu::lane_takes(g0, lane, k, gpr))
              acc[(size_t)(lane * T + t)] += term[(size_t)(gpu::src_lane(lane, k) * T + t)];
    }
    for (int t = 0; t < T; t++) {
      float l[8];
      for (int k = 0; k < 8; k++) l[k] = acc[(size_t)(k * T + t)];
      if (t0 + t < n) y[(size_t)((t0 + t) * w.rows + r)] = reduce8(l);
    }
  }
  return y;
}

/** k_fdot<T> emulated: eight chains per (row, tile), reduce8. */
static std::vector<float> emulate_float(const infer::Linear& w, const std::vector<float>& x, int64_t n,
                                        int T) {
  const gpu::DevLinear d = dev_of(w);
  std::vector<float> y((size_t)(n * w.rows), NAN);
  for (int64_t oct = 0; oct < gpu::warp_tasks(w.rows, n, T); oct++) {
    int64_t r, t0;
    gpu::octet_task(oct, w.rows, T, &r, &t0);
    for (int t = 0; t < T && t0 + t < n; t++) {
      float l[8];
      for (int k = 0; k < 8; k++) {
        float acc = 0.0f;
        for (int64_t c = k; c < w.cols; c += 8) {
          float p = gpu::fdot_product(d, r, c, x.data() + (t0 + t) * w.cols);
          acc += p;
        }
        l[k] = acc;
      }
      y[(size_t)((t0 + t) * w.rows + r)] = reduce8(l);
    }
  }
  return y;
}

static const int kBits[] = {1, 2, 4, 8};
static const int64_t kGroups[] = {8, 32, 33, 64, 128, 100000};  // 100000: one group per row
static const int64_t kShapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {33, 100}, {17, 257}, {9, 1000}};
static const int64_t kTokens[] = {1, 3, 8, 17};

static void test_emulated_kernels() {
  int combos = 0;
  for (int bits : kBits)
    for (int64_t group : kGroups)
      for (auto& sh : kShapes)
        for (bool f16 : {true, false}) {
          Packed p(sh[0], sh[1], bits, group, f16);
          const gpu::DevLinear d = dev_of(p.w);
          // the embedding lookup's element = dequantize_row_any
          std::vector<float> row((size_t)sh[1]);
          infer::dequantize_row_any(p.w, sh[0] - 1, row.data());
          bool eq = true;
          for (int64_t c = 0; c < sh[1]; c++) eq = eq && gpu::weight_elem(d, sh[0] - 1, c) == row[(size_t)c];
          CHECK(eq, "weight_elem differs from dequantize_row_any: bits %d group %lld", bits,
                (long long)group);
          for (int64_t n : kTokens) {
            std::vector<float> x = randn(n * sh[1]);
            std::vector<float> ref = scalar_linear(p.w, x, n);
            for (int T : {1, 8}) {
              CHECK(same_bits(emulate_packed(p.w, x, n, T), ref),
                    "emulated k_qdot<%d> differs: bits %d group %lld shape %lldx%lld n %lld f16 %d", T, bits,
                    (long long)group, (long long)sh[0], (long long)sh[1], (long long)n, (int)f16);
              combos++;
            }
          }
        }
  for (int dtype : {kF32, kF16, kBF16})
    for (auto& sh : kShapes)
      for (int64_t n : kTokens) {
        Floats f(sh[0], sh[1], dtype);
        std::vector<float> x = randn(n * sh[1]);
        std::vector<float> ref = scalar_linear(f.w, x, n);
        for (int T : {1, 8}) {
          CHECK(same_bits(emulate_float(f.w, x, n, T), ref),
                "emulated k_fdot<%d> differs: dtype %d %lldx%lld n %lld", T, dtype, (long long)sh[0],
                (long long)sh[1], (long long)n);
          combos++;
        }
      }
  // kquant values element by element (kq_elem: the GPU's embedding lookups and k_fdot on kind 2) = the scalar
  // float kernel on the rows dequantized by kq_dequantize_row, bit for bit
  for (const KqParams& kp : kKqParams)
    for (auto& sh : kShapes)
      for (int64_t n : {(int64_t)1, (int64_t)9}) {
        const int64_t rows = sh[0], cols = sh[1];
        KqRows k(rows, cols, kp);
        Floats deq(rows, cols, kF32);
        for (int64_t r = 0; r < rows; r++) kq_dequantize_row(k.kt, r, (float*)deq.d.data() + r * cols);
        const infer::Linear& kw = k.w;
        std::vector<float> x = randn(n * cols);
        for (int T : {1, 8}) {
          CHECK(same_bits(emulate_float(kw, x, n, T), scalar_linear(deq.w, x, n)),
                "emulated kquant k_fdot<%d> differs: bits %d group %d super %d %lldx%lld n %lld", T, kp.bits,
                kp.group, kp.super, (long long)rows, (long long)cols, (long long)n);
          combos++;
        }
      }
  // attention window: keys j with p − j < window
  for (int64_t p : {0, 1, 4, 5, 6, 100})
    for (int64_t win : {0, 1, 5}) {
      int64_t lo = 0;
      while (win > 0 && p - lo >= win) lo++;
      CHECK(gpu::attn_lo(p, win) == lo, "attn_lo(%lld, %lld) = %lld, expected %lld", (long long)p,
            (long long)win, (long long)gpu::attn_lo(p, win), (long long)lo);
    }
  CHECK(gpu::kv_offset(2, 3, 10, 4) == (2 * 10 + 3) * 4, "kv_offset");
  printf("  emulated CUDA kernels = scalar reference on %d combinations\n", combos);
}

#ifdef APL_HAVE_CUDA
/** A tiny random model (weights owned here). */
struct Tiny {
  infer::ModelConfig c;
  infer::ModelWeights w;
  std::vector<Packed> packed;
  std::vector<Floats> floats;
  std::vector<std::vector<float>> norms;
  infer::Linear make(int64_t rows, int64_t cols, int bits) {
    if (bits == 0) {
      floats.emplace_back(rows, cols, kBF16);
      return floats.back().w;
    }
    packed.emplace_back(rows, cols, bits, 32, true);
    return packed.back().w;
  }
  const float* norm() {
    norms.push_back(std::vector<float>((size_t)c.hidden));
    for (auto& v : norms.back()) v = 1.0f + 0.1f * gauss();
    return norms.back().data();
  }
  Tiny(const char* family, int bits) {
    const bool gemma = strcmp(family, "gemma") == 0;
    c.hidden = 64;
    c.inter = gemma ? 80 : 96;
    c.layers = 2;
    c.heads = gemma ? 2 : 4;
    c.kv_heads = gemma ? 1 : 2;
    c.head_dim = gemma ? 32 : 16;
    c.vocab = 61;
    c.eps = 1e-5f;
    c.gelu_tanh = c.embed_scale = c.norm_add_one = gemma;
    c.sliding_window = strcmp(family, "mistral") == 0 ? 5 : 0;
    c.context = 32;
    for (int64_t i = 0; i < c.head_dim / 2; i++)
      c.inv_freq.push_back((float)(1.0 / std::pow(10000.0, 2.0 * (double)i / (double)c.head_dim)));
    packed.reserve(64);
    floats.reserve(64);
    norms.reserve(64);
    const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
    w.embed = make(c.vocab, c.hidden, bits);
    for (int64_t l = 0; l < c.layers; l++) {
      infer::LayerWeights L;
      L.in_norm = norm();
      L.post_norm = norm();
      L.q = make(qd, c.hidden, bits);
      L.k = make(kvd, c.hidden, bits);
      L.v = make(kvd, c.hidden, bits);
      L.o = make(c.hidden, qd, bits);
      L.gate = make(c.inter, c.hidden, bits);
      L.up = make(c.inter, c.hidden, bits);
      L.down = make(c.hidden, c.inter, bits);
      w.layers.push_back(L);
    }
    w.final_norm = norm();
    w.lm_head = gemma ? w.embed : make(c.vocab, c.hidden, bits);
  }
};

static double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, s = 0;
  for (size_t i = 0; i < a.size(); i++) {
    d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    s += (double)b[i] * b[i];
  }
  return std::sqrt(d / (s > 0 ? s : 1));
}

static void test_gpu_linear() {
  int combos = 0;
  for (int bits : kBits)
    for (int64_t group : kGroups)
      for (auto& sh : kShapes)
        for (int64_t n : kTokens) {
          Packed p(sh[0], sh[1], bits, group, n % 2 == 1);
          std::vector<float> x = randn(n * sh[1]);
          std::vector<float> y((size_t)(n * sh[0]));
          std::string err;
          CHECK(cuda::infer_linear(p.w, x.data(), n, y.data(), &err), "infer_linear: %s", err.c_str());
          CHECK(same_bits(y, scalar_linear(p.w, x, n)),
                "CUDA linear differs: bits %d group %lld %lldx%lld n %lld", bits, (long long)group,
                (long long)sh[0], (long long)sh[1], (long long)n);
          combos++;
        }
  for (int dtype : {kF32, kF16, kBF16})
    for (auto& sh : kShapes)
      for (int64_t n : kTokens) {
        Floats f(sh[0], sh[1], dtype);
        std::vector<float> x = randn(n * sh[1]);
        std::vector<float> y((size_t)(n * sh[0]));
        std::string err;
        CHECK(cuda::infer_linear(f.w, x.data(), n, y.data(), &err), "infer_linear: %s", err.c_str());
        CHECK(same_bits(y, scalar_linear(f.w, x, n)), "CUDA float linear differs: dtype %d n %lld", dtype,
              (long long)n);
        combos++;
      }
  // kquant (convert's default format): k_qdot<T, true> = the scalar kquant linear (kq_qdot_ref), bit for bit
  for (const KqParams& kp : kKqParams)
    for (auto& sh : kShapes)
      for (int64_t n : kTokens) {
        KqRows k(sh[0], sh[1], kp);
        std::vector<float> x = randn(n * sh[1]);
        std::vector<float> y((size_t)(n * sh[0]));
        std::string err;
        CHECK(cuda::infer_linear(k.w, x.data(), n, y.data(), &err), "infer_linear (kquant): %s", err.c_str());
        CHECK(same_bits(y, scalar_linear(k.w, x, n)),
              "CUDA kquant linear differs: bits %d group %d super %d %lldx%lld n %lld", kp.bits, kp.group,
              kp.super, (long long)sh[0], (long long)sh[1], (long long)n);
        combos++;
      }
  printf("  CUDA linear = scalar reference on %d combinations\n", combos);
}

// The GPU forward against the CPU model on the scalar kernel: prompt (all logits) then three decode steps.
static void test_gpu_forward() {
  const int32_t prompt[] = {3, 17, 42, 5, 60, 0, 11, 29, 8};
  const int64_t np = 9;
  for (const char* fam : {"llama", "mistral", "gemma"})
    for (int bits : {0, 8, 4, 2, 1})
      for (bool kv16 : {false, true}) {
        Tiny m(fam, bits);
        // The GPU's KV cache is float32 or float16 as the config asks (float16 by default, model.h); the CPU
        // model with the same cache is the reference (float16 K/V move float logits by ~1e-3 from a float32
        // cache).
        infer::ModelConfig cc = m.c;
        cc.kv_f16 = kv16;
        infer::Model cpu(cc, m.w, 1, infer::scalar_kernel());
        std::string err;
        std::unique_ptr<cuda::GpuModel> g(cuda::GpuModel::create(cc, m.w, &err));
        CHECK(g != nullptr, "GpuModel::create: %s", err.c_str());
        if (!g) continue;
        CHECK(g->kv_bytes() == 2 * cc.layers * cc.context * cc.kv_heads * cc.head_dim * (kv16 ? 2 : 4),
              "kv_bytes %lld with kv_f16 %d", (long long)g->kv_bytes(), (int)kv16);
        std::vector<float> a((size_t)(np * m.c.vocab)), b(a.size());
        cpu.forward(prompt, np, 0, true, a.data());
        CHECK(g->forward(prompt, np, 0, true, b.data(), &err), "forward: %s", err.c_str());
        double worst = rel_l2(b, a);
        size_t exact = 0;
        for (size_t i = 0; i < a.size(); i++) exact += a[i] == b[i];
        for (int step = 0; step < 3; step++) {
          int32_t tok = (int32_t)(7 * step + 2);
          std::vector<float> c1((size_t)m.c.vocab), c2(c1.size());
          cpu.forward(&tok, 1, np + step, false, c1.data());
          CHECK(g->forward(&tok, 1, np + step, false, c2.data(), &err), "decode: %s", err.c_str());
          worst = std::max(worst, rel_l2(c2, c1));
        }
        // Float weights: only exp/tanh and RMSNorm's sum order differ (≤ a few ulps); packed: an int8
        // activation may move by one step where those differ.
        const double bound = bits == 0 ? 1e-5 : 2e-3;
        CHECK(worst <= bound, "%s %d-bit, kv_f16 %d: GPU vs CPU logits rel L2 %.3g > %.0e", fam, bits,
              (int)kv16, worst, bound);
        printf("  forward %s %s, %s KV: rel L2 %.2e, %zu/%zu prompt logits bit-equal\n", fam,
               bits ? (std::to_string(bits) + "-bit").c_str() : "bf16", kv16 ? "f16" : "f32", worst, exact,
               a.size());
      }
}
#endif

#ifdef APL_HAVE_CUDA
int test_gpu_check_and_bench(bool bench, int layers);  // test_gpu_bench.cc
#endif

int main(int argc, char** argv) {
  bool bench = false;
  for (int i = 1; i < argc; i++) bench = bench || strcmp(argv[i], "--bench") == 0;
  const char* lv = getenv("APL_GPU_LAYERS");
  const int layers = lv ? atoi(lv) : 22;
  printf("CUDA inference tests\n");
  test_emulated_kernels();
#ifdef APL_HAVE_CUDA
  std::string name, reason;
  if (cuda::available(&name, &reason)) {
    printf("  GPU: %s\n", name.c_str());
    test_gpu_linear();
    test_gpu_forward();
    failures += test_gpu_check_and_bench(bench, layers > 0 ? layers : 22);
  } else {
    printf("  GPU tests skipped: no usable GPU (%s)\n", reason.c_str());
    if (bench) printf("  GPU bench skipped: no usable GPU (%s)\n", reason.c_str());
  }
#else
  printf("  GPU tests skipped: no usable GPU (this build has no CUDA: nvcc was not found)\n");
#endif
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
