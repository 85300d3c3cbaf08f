#include "model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <system_error>

#include "hugepages.h"

namespace apl {
namespace infer {

namespace {
void check_weight(const Linear& w, int64_t rows, int64_t cols, const std::string& name) {
  const char* why = check_linear(w);
  if (*why) throw std::runtime_error(name + ": " + why);
  if (w.rows != rows || w.cols != cols)
    throw std::runtime_error(name + ": shape [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                             "], expected [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
}

// The steps of a decoded token timed by APL_PROFILE=1 (quant: the activations' quantization inside the
// decode linears, measured there (DispatchProfile); it is part of the linear steps).
enum Step {
  kEmbed,
  kNorm,
  kQkv,
  kRope,
  kKvStore,
  kAttn,
  kO,
  kResid,
  kGateUp,
  kGlu,
  kDown,
  kHeadNorm,
  kHead,
  kQuant,
  kSteps
};
const char* const kStepNames[kSteps] = {
    "embedding", "rms norm",           "q/k/v linear",   "rope",   "kv store",    "attention",
    "o linear",  "residual adds",      "gate/up linear", "swiglu", "down linear", "final norm",
    "lm head",   "(act. quantization)"};
double now_ns() { return DispatchProfile::now_ns(); }
}  // namespace

Model::~Model() {
  huge_stop_ = true;
  if (huge_.joinable()) huge_.join();
  prof_.ns[kQuant] = disp_.quant_ns;
  for (const Profile* pr : {&prof_, &prof_prompt_}) {
    if (!prof_.on || pr->tokens == 0) continue;
    double total = 0;
    for (int i = 0; i < kQuant; i++) total += pr->ns[i];
    std::fprintf(stderr, "APL_PROFILE %s, attention %s%s, %d thread(s), %lld %s tokens: %.3f ms per token\n",
                 k_.name, attn_ref_ ? "reference" : "blocked ", attn_ref_ ? "" : attn_.name, threads(),
                 (long long)pr->tokens, pr == &prof_ ? "decoded" : "prompt",
                 total / 1e6 / (double)pr->tokens);
    for (int i = 0; i < kSteps; i++) {
      if (i == kQuant && pr != &prof_) continue;  // measured for decoded tokens only
      std::fprintf(stderr, "APL_PROFILE   %-26s %8.3f ms %5.1f %%\n", kStepNames[i],
                   pr->ns[i] / 1e6 / (double)pr->tokens, 100.0 * pr->ns[i] / total);
    }
    if (pr != &prof_ || disp_.wall_ns <= 0) continue;
    // thread time inside the linears' pool runs without a task: hand-offs and the wait for the last task
    const double th = (double)threads(), idle = th * disp_.wall_ns - (double)disp_.busy_ns.load();
    std::fprintf(stderr,
                 "APL_PROFILE   (linears: runs %.3f ms, tasks %.3f ms over %d thread(s), idle %.3f ms = "
                 "%.1f %% of the runs' thread time)\n",
                 disp_.wall_ns / 1e6 / (double)pr->tokens,
                 (double)disp_.busy_ns.load() / 1e6 / (double)pr->tokens, threads(),
                 idle / 1e6 / (double)pr->tokens, 100.0 * idle / (th * disp_.wall_ns));
    for (int i = 0; i < threads() && i < DispatchProfile::kThreads && threads() > 1; i++) {
      const DispatchProfile::Thread& t = disp_.th[i];
      const double per = 1e6 * (double)pr->tokens;
      std::fprintf(
          stderr,
          "APL_PROFILE   (thread %d%s: tasks %.3f ms (%.1f per token); idle: before its first task %.3f "
          "ms, after its last %.3f ms, between tasks %.3f ms, %.3f ms in %lld runs without a task)\n",
          i, i ? "" : " = the caller", t.busy_ns / per, (double)t.all_tasks / (double)pr->tokens,
          t.late / per, t.early / per, t.between / per, t.none_ns / per, (long long)t.none);
    }
  }
}

Model::Model(const ModelConfig& c, const ModelWeights& w, int threads, const Kernel& k)
    : c_(c),
      w_(w),
      k_(k),
      pool_(shared_pool(threads)),
      kv_(kv_ops(&k != &scalar_kernel())),
      attn_(attn_select(attn_order(kv_))) {
  if (c.hidden < 1 || c.inter < 1 || c.layers < 0 || c.heads < 1 || c.kv_heads < 1 || c.head_dim < 2 ||
      c.head_dim % 2 || c.vocab < 1 || c.heads % c.kv_heads)
    throw std::runtime_error("inconsistent model config (sizes, heads divisible by KV heads, even head_dim)");
  if (c.context < 1) throw std::runtime_error("contextLength must be at least 1");
  const char* pv = std::getenv("APL_PROFILE");
  prof_.on = pv && pv[0] == '1';
  const char* av = std::getenv("APL_ATTN");
  attn_ref_ = av && std::string(av) == "ref";
  if ((int64_t)c.inv_freq.size() != c.head_dim / 2) throw std::runtime_error("RoPE frequencies: wrong count");
  if ((int64_t)w.layers.size() != c.layers) throw std::runtime_error("weights: wrong number of layers");
  const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  check_weight(w.embed, c.vocab, c.hidden, "embed");
  check_weight(w.lm_head, c.vocab, c.hidden, "lmHead");
  for (int64_t l = 0; l < c.layers; l++) {
    const LayerWeights& L = w.layers[(size_t)l];
    std::string p = "layers[" + std::to_string(l) + "].";
    check_weight(L.q, qd, c.hidden, p + "q");
    check_weight(L.k, kvd, c.hidden, p + "k");
    check_weight(L.v, kvd, c.hidden, p + "v");
    check_weight(L.o, c.hidden, qd, p + "o");
    check_weight(L.gate, c.inter, c.hidden, p + "gate");
    check_weight(L.up, c.inter, c.hidden, p + "up");
    check_weight(L.down, c.hidden, c.inter, p + "down");
  }
  // Sized to the context asked for: layers × contextLength × KV width, for K and for V.
  size_t kv = (size_t)(c.layers * c.context * kvd);
  try {
    if (c.kv_f16) {
      kcache16_.assign(kv, 0);
      vcache16_.assign(kv, 0);
    } else {
      kcache_.assign(kv, 0.0f);
      vcache_.assign(kv, 0.0f);
    }
  } catch (const std::exception&) {  // bad_alloc, or length_error past what a vector can hold
    throw std::runtime_error("the KV cache for contextLength " + std::to_string(c.context) + " (" +
                             std::to_string((double)kv * (c.kv_f16 ? 4 : 8) / 1e9) +
                             " GB) does not fit in memory");
  }
  // Last in the constructor: once huge_ runs, nothing may throw (a joinable std::thread would terminate).
  std::vector<ByteSpan> spans;  // the weights every decoded token streams, in 2 MiB pages (hugepages.h)
  for (const LayerWeights& L : w.layers)
    for (const Linear* x : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) weight_spans(*x, spans);
  weight_spans(w.lm_head, spans);
  const HugeMode hm = huge_mode();
  std::vector<ByteSpan> ranges = hm == HugeMode::kOff ? std::vector<ByteSpan>() : huge_ranges(spans);
  if (ranges.empty()) return;
  auto collapse = [this](std::vector<ByteSpan> r) {
    const auto h0 = std::chrono::steady_clock::now();
    const int64_t done = collapse_huge(r, &huge_stop_);
    if (prof_.on)
      std::fprintf(stderr, "APL_PROFILE huge pages: %.1f MB of the weights collapsed in %.3f s\n",
                   (double)done / 1e6,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count());
  };
  if (hm == HugeMode::kSync) {
    collapse(std::move(ranges));
    return;
  }
  try {
    huge_ = std::thread(collapse, std::move(ranges));
  } catch (const std::system_error&) {  // no thread: the pages stay as they are
  }
}

// LlamaRMSNorm / GemmaRMSNorm in float32: x · rsqrt(mean(x²) + eps), then × w (or × (1 + w)).
void Model::rms_norm(const float* x, const float* w, int64_t n, float* out) {
  const int64_t H = c_.hidden;
  pool_.run(n, [&](int64_t t) {
    const float* xr = x + t * H;
    float* o = out + t * H;
    double ss = 0;
    for (int64_t i = 0; i < H; i++) ss += (double)xr[i] * (double)xr[i];
    float var = (float)(ss / (double)H);
    float r = 1.0f / std::sqrt(var + c_.eps);
    for (int64_t i = 0; i < H; i++) {
      float v = xr[i] * r;
      float m = c_.norm_add_one ? 1.0f + w[i] : w[i];
      o[i] = v * m;
    }
  });
}

// Rotate-half RoPE (HF layout): value i pairs with i + head_dim/2; cos/sin of (position · inv_freq) in
// float32.
void Model::rope(float* x, int64_t n, int64_t heads, int64_t pos) {
  const int64_t D = c_.head_dim, half = D / 2;
  pool_.run(n, [&](int64_t t) {
    std::vector<float> cs((size_t)half), sn((size_t)half);
    float p = (float)(pos + t);
    for (int64_t i = 0; i < half; i++) {
      float f = c_.inv_freq[(size_t)i] * p;
      cs[(size_t)i] = std::cos(f) * c_.rope_mscale;
      sn[(size_t)i] = std::sin(f) * c_.rope_mscale;
    }
    for (int64_t h = 0; h < heads; h++) {
      float* v = x + (t * heads + h) * D;
      for (int64_t i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        float a1 = a * cs[(size_t)i], a2 = (-b) * sn[(size_t)i];
        float b1 = b * cs[(size_t)i], b2 = a * sn[(size_t)i];
        v[i] = a1 + a2;
        v[i + half] = b1 + b2;
      }
    }
  });
}

// Causal (optionally sliding-window) attention with grouped KV heads; softmax in float32 (attention.h). The
// blocked form keeps the float order of kv_ (float16 cache) or of the kernel's dotf / axpyf (float32 cache;
// the x86 kernels share the x86 kv order, the scalar and NEON ones the scalar order).
void Model::attention(int64_t layer, int64_t n, int64_t pos) {
  const int64_t kvd = c_.kv_heads * c_.head_dim;
  AttnArgs a;
  a.heads = c_.heads;
  a.kv_heads = c_.kv_heads;
  a.head_dim = c_.head_dim;
  a.window = c_.sliding_window;
  a.n = n;
  a.pos = pos;
  a.q = q_.data();
  a.out = att_.data();
  if (c_.kv_f16) {
    a.k16 = kcache16_.data() + layer * c_.context * kvd;
    a.v16 = vcache16_.data() + layer * c_.context * kvd;
  } else {
    a.k32 = kcache_.data() + layer * c_.context * kvd;
    a.v32 = vcache_.data() + layer * c_.context * kvd;
  }
  if (attn_ref_)
    attention_reference(a, kv_, k_, pool_);
  else
    attention_blocked(a, attn_, pool_);
}

void Model::forward(const int32_t* tokens, int64_t n, int64_t pos, bool all, float* out) {
  if (n < 1) throw std::runtime_error("forward needs at least one token");
  if (pos < 0 || pos > length_)
    throw std::runtime_error("pos " + std::to_string(pos) + " is past the cached length " +
                             std::to_string(length_));
  if (pos + n > c_.context)
    throw std::runtime_error("positions up to " + std::to_string(pos + n) + " exceed contextLength " +
                             std::to_string(c_.context));
  for (int64_t t = 0; t < n; t++)
    if (tokens[t] < 0 || tokens[t] >= c_.vocab)
      throw std::runtime_error("token id " + std::to_string(tokens[t]) + " is outside the vocabulary");
  const int64_t Hd = c_.hidden, qd = c_.heads * c_.head_dim, kvd = c_.kv_heads * c_.head_dim, I = c_.inter;
  x_.resize((size_t)(n * Hd));
  h_.resize((size_t)(n * Hd));
  o_.resize((size_t)(n * Hd));
  q_.resize((size_t)(n * qd));
  att_.resize((size_t)(n * qd));
  kk_.resize((size_t)(n * kvd));
  vv_.resize((size_t)(n * kvd));
  g_.resize((size_t)(n * I));
  u_.resize((size_t)(n * I));
  length_ = pos;  // a failure below leaves the cache valid up to pos
  const bool prof = prof_.on;
  Profile& pr = n == 1 ? prof_ : prof_prompt_;
  DispatchProfile* dp = prof && n == 1 ? &disp_ : nullptr;
  double last = prof ? now_ns() : 0;
  auto tick = [&](int step) {
    if (!prof) return;
    double t = now_ns();
    pr.ns[step] += t - last;
    last = t;
  };
  const float emb_scale = (float)std::sqrt((double)Hd);
  pool_.run(n, [&](int64_t t) {
    float* xr = x_.data() + t * Hd;
    dequantize_row_any(w_.embed, tokens[t], xr);
    if (c_.embed_scale)
      for (int64_t i = 0; i < Hd; i++) xr[i] = xr[i] * emb_scale;
  });
  tick(kEmbed);
  for (int64_t l = 0; l < c_.layers; l++) {
    const LayerWeights& L = w_.layers[(size_t)l];
    rms_norm(x_.data(), L.in_norm, n, h_.data());
    tick(kNorm);
    const LinearOut qkv[3] = {{&L.q, q_.data()}, {&L.k, kk_.data()}, {&L.v, vv_.data()}};
    linears(qkv, 3, h_.data(), n, pool_, k_, act_, dp);
    tick(kQkv);
    rope(q_.data(), n, c_.heads, pos);
    rope(kk_.data(), n, c_.kv_heads, pos);
    tick(kRope);
    const int64_t at = (l * c_.context + pos) * kvd;
    if (c_.kv_f16) {
      kv_.store(kk_.data(), kcache16_.data() + at, n * kvd);
      kv_.store(vv_.data(), vcache16_.data() + at, n * kvd);
    } else {
      std::copy(kk_.begin(), kk_.begin() + n * kvd, kcache_.data() + at);
      std::copy(vv_.begin(), vv_.begin() + n * kvd, vcache_.data() + at);
    }
    tick(kKvStore);
    attention(l, n, pos);
    tick(kAttn);
    linear(L.o, att_.data(), n, o_.data(), pool_, k_, act_, dp);
    tick(kO);
    for (int64_t i = 0; i < n * Hd; i++) x_[(size_t)i] += o_[(size_t)i];
    tick(kResid);
    rms_norm(x_.data(), L.post_norm, n, h_.data());
    tick(kNorm);
    const LinearOut gu[2] = {{&L.gate, g_.data()}, {&L.up, u_.data()}};
    linears(gu, 2, h_.data(), n, pool_, k_, act_, dp);
    tick(kGateUp);
    const bool gelu = c_.gelu_tanh;
    pool_.run(n, [&](int64_t t) {
      float* g = g_.data() + t * I;
      const float* u = u_.data() + t * I;
      if (!gelu) return silu_mul(g, u, I);  // v / (1 + exp(−v)) · u on attention.h's exp (vectorised)
      for (int64_t i = 0; i < I; i++) {
        float v = g[i];
        float inner = 0.7978845608028654f * (v + 0.044715f * (v * v * v));
        float a = 0.5f * v * (1.0f + std::tanh(inner));
        g[i] = a * u[i];
      }
    });
    tick(kGlu);
    linear(L.down, g_.data(), n, o_.data(), pool_, k_, act_, dp);
    tick(kDown);
    for (int64_t i = 0; i < n * Hd; i++) x_[(size_t)i] += o_[(size_t)i];
    tick(kResid);
  }
  const int64_t first = all ? 0 : n - 1, m = n - first;
  rms_norm(x_.data() + first * Hd, w_.final_norm, m, h_.data());
  tick(kHeadNorm);
  linear(w_.lm_head, h_.data(), m, out, pool_, k_, act_, n == 1 ? dp : nullptr);
  tick(kHead);
  if (prof && n > 1) prof_prompt_.tokens += n;
  if (prof && n == 1) prof_.tokens++;
  length_ = pos + n;
}

}  // namespace infer
}  // namespace apl
