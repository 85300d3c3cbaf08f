// The forward pass of llama / mistral / gemma decoder-only models on packed (or float) weights, float32
// activations, a KV cache sized to the context asked for (float16 by default, float32 on request). Every step
// follows transformers' modeling_llama.py / modeling_mistral.py / modeling_gemma.py (see model.cc).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "attention.h"
#include "kv.h"
#include "linear.h"

namespace apl {
namespace infer {

struct ModelConfig {
  int64_t hidden = 0, inter = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  float eps = 1e-6f;
  bool gelu_tanh = false;      // GeGLU with the tanh GELU (gemma) instead of SwiGLU
  bool embed_scale = false;    // embeddings × √hidden (gemma)
  bool norm_add_one = false;   // RMSNorm x̂ · (1 + w) (gemma)
  int64_t sliding_window = 0;  // 0: none; else attend to keys j with i − j < window
  int64_t context = 0;
  bool kv_f16 = true;  // KV cache in float16 (attention reads it with float32 arithmetic); false: float32
  std::vector<float> inv_freq;  // head_dim / 2 RoPE inverse frequencies (scaling already applied)
  float rope_mscale = 1.0f;     // cos/sin factor (1 for default / linear scaling)
};

struct LayerWeights {
  const float* in_norm = nullptr;
  Linear q, k, v, o;
  const float* post_norm = nullptr;
  Linear gate, up, down;
};

struct ModelWeights {
  Linear embed;
  std::vector<LayerWeights> layers;
  const float* final_norm = nullptr;
  Linear lm_head;
};

class Model {
 public:
  /** Throws std::runtime_error naming the first inconsistency. */
  Model(const ModelConfig& c, const ModelWeights& w, int threads, const Kernel& k);
  ~Model();
  /** Runs tokens at positions pos..pos+n−1; out: n × vocab (all) or vocab (last token) float32. */
  void forward(const int32_t* tokens, int64_t n, int64_t pos, bool all, float* out);
  void reset() { length_ = 0; }
  int64_t length() const { return length_; }
  const Kernel& kernel() const { return k_; }
  int threads() const { return pool_.threads(); }
  int64_t kv_bytes() const {
    return (int64_t)(kcache_.size() + vcache_.size()) * 4 +
           (int64_t)(kcache16_.size() + vcache16_.size()) * 2;
  }

 private:
  void rms_norm(const float* x, const float* w, int64_t n, float* out);
  void rope(float* x, int64_t n, int64_t heads, int64_t pos);
  void attention(int64_t layer, int64_t n, int64_t pos);
  ModelConfig c_;
  ModelWeights w_;
  const Kernel& k_;
  Pool& pool_;
  ActQ act_;
  int64_t length_ = 0;
  const KvOps& kv_;
  AttnImpl attn_;          // the blocked attention (attention.h) in the order of kv_ / the kernel's dotf
  bool attn_ref_ = false;  // APL_ATTN=ref: the reference form (A/B)
  std::vector<float> kcache_, vcache_;         // float32 cache (kv_f16 false)
  std::vector<uint16_t> kcache16_, vcache16_;  // float16 cache (kv_f16 true)
  std::vector<float> x_, h_, q_, kk_, vv_, att_, o_, g_, u_;
  // APL_PROFILE=1: wall time per step, for decoded tokens (n = 1) and for prompts (n > 1) apart, printed to
  // stderr when the model is freed
  struct Profile {
    bool on = false;
    int64_t tokens = 0;
    double ns[16] = {};
  } prof_, prof_prompt_;
  DispatchProfile disp_;  // decoded tokens' linears (APL_PROFILE=1)
  // the weights' pages collapsed to 2 MiB pages in the background (hugepages.h); stopped and joined by ~Model
  std::atomic<bool> huge_stop_{false};
  std::thread huge_;
};

}  // namespace infer
}  // namespace apl
