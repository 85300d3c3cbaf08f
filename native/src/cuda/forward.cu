// The forward pass on a GPU: model.cc's steps, one straightforward kernel per step, on the default stream.
// Every per-element operation and index comes from gpu_index.h (tested on the host against the CPU spec); the
// linear layers are linear.cuh's (bit-exact with the scalar reference). What can differ from the CPU model
// (APL_FORCE_SCALAR=1): RMSNorm's float64 Σx² is a tree here (a chain there: float32 var equal unless within
// ~1e-16 of a rounding tie), exp/tanh are the device's float64 functions rounded to float32 (glibc's float
// versions there: equal except in rare last-bit cases). cos/sin of RoPE are computed on the host exactly as
// model.cc does and uploaded per call. A last-bit difference can move an int8 activation by one step, so the
// tests bound logits' relative L2 difference instead of asking for equality. The KV cache is float16 (kv_f16,
// the default, rounded and read as infer/kv.cc does) or float32, as the config asks, like the CPU model's.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda.h"
#include "forward.h"
#include "last_error.cuh"
#include "linear.cuh"

namespace apl {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__device__ float dev_tanh(float v) { return (float)tanh((double)v); }
__device__ float dev_exp(float v) { return (float)exp((double)v); }
struct TanhF {
  __device__ float operator()(float v) const { return dev_tanh(v); }
};
struct ExpF {
  __device__ float operator()(float v) const { return dev_exp(v); }
};

__global__ void k_embed(gpu::DevLinear e, const int32_t* tokens, int64_t hidden, bool scale, float s,
                        float* x) {
  const int64_t t = blockIdx.x;
  const int64_t r = tokens[t];
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    float v = gpu::weight_elem(e, r, c);
    x[t * hidden + c] = scale ? v * s : v;
  }
}

__global__ void k_rmsnorm(const float* x, const float* w, int64_t hidden, float eps, bool add_one,
                          float* out) {
  __shared__ double part[kThreads];
  __shared__ float factor;
  const float* xr = x + (int64_t)blockIdx.x * hidden;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
  part[threadIdx.x] = ss;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) factor = gpu::rms_factor(part[0], hidden, eps);
  __syncthreads();
  float* o = out + (int64_t)blockIdx.x * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    o[i] = gpu::rms_apply(xr[i], factor, w[i], add_one);
}

// x: n × heads × D; cs/sn: n × D/2 (cos/sin × mscale of position pos + t).
__global__ void k_rope(float* x, int64_t n, int64_t heads, int64_t D, const float* cs, const float* sn) {
  const int64_t half = D / 2;
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n * heads * half) return;
  const int64_t t = i / (heads * half), h = (i / half) % heads, k = i % half;
  float* v = x + (t * heads + h) * D;
  gpu::rope_pair(v + k, v + k + half, cs[t * half + k], sn[t * half + k]);
}

// One block per (token, head): scores in sc (stride `stride` per block), softmax, Σ p·v
// (model.cc::attention).
// The cache in float16 (kv_f16, the CPU's default): each new key and value rounded as infer/kv.cc's store
// does.
__global__ void k_store16(const float* src, uint16_t* dst, int64_t count) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) dst[i] = f32_to_f16(src[i]);
}

template <class KV>
__global__ void k_attention(const float* q, const KV* kc, const KV* vc, int64_t pos, int64_t heads,
                            int64_t rep, int64_t D, int64_t kvd, int64_t window, float scale, float* sc,
                            int64_t stride, float* att) {
  __shared__ float red[kThreads];
  __shared__ float total;
  const int64_t i = blockIdx.x, t = i / heads, h = i % heads, p = pos + t, kvh = h / rep;
  const int64_t lo = gpu::attn_lo(p, window);
  const float* qv = q + (t * heads + h) * D;
  float* s = sc + i * stride;
  float mx = -INFINITY;
  for (int64_t j = lo + threadIdx.x; j <= p; j += blockDim.x) {
    float v = gpu::dot8(qv, kc + j * kvd + kvh * D, D) * scale;
    s[j] = v;
    mx = v > mx ? v : mx;
  }
  red[threadIdx.x] = mx;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if ((int)threadIdx.x < k && red[threadIdx.x + k] > red[threadIdx.x])
      red[threadIdx.x] = red[threadIdx.x + k];
    __syncthreads();
  }
  mx = red[0];
  for (int64_t j = lo + threadIdx.x; j <= p; j += blockDim.x) s[j] = dev_exp(s[j] - mx);
  __syncthreads();
  if (threadIdx.x == 0) {  // the CPU's order: one float32 chain over j
    float sum = 0;
    for (int64_t j = lo; j <= p; j++) sum += s[j];
    total = sum;
  }
  __syncthreads();
  float* o = att + (t * heads + h) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = lo; j <= p; j++) {
      float w = s[j] / total;
      float pr = w * gpu::kv_value(vc[j * kvd + kvh * D + d]);
      acc += pr;
    }
    o[d] = acc;
  }
}

__global__ void k_glu(float* g, const float* u, int64_t count, bool gelu) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) g[i] = gpu::glu(g[i], u[i], gelu, TanhF(), ExpF());
}

__global__ void k_add(float* x, const float* o, int64_t count) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) x[i] += o[i];
}

unsigned blocks_for(int64_t count) { return (unsigned)((count + kThreads - 1) / kThreads); }

struct DevLayer {
  const float* in_norm;
  const float* post_norm;
  gpu::DevLinear q, k, v, o, gate, up, down;
};

}  // namespace

struct GpuModel::Impl {
  infer::ModelConfig c;
  std::string device;
  std::vector<void*> owned;         // every device allocation (weights, cache, scratch)
  std::map<const void*, void*> up;  // host pointer → its device copy (tied embeddings upload once)
  gpu::DevLinear embed, lm_head;
  std::vector<DevLayer> layers;
  const float* final_norm = nullptr;
  bool kv16 = false;       // c.kv_f16: the cache below holds float16 bits
  void* kcache = nullptr;  // layers × context × kvd values, float32 or float16
  void* vcache = nullptr;
  int64_t length = 0, cap_n = 0, cap_scores = 0;
  // scratch for cap_n tokens
  float *x = nullptr, *h = nullptr, *o = nullptr, *q = nullptr, *att = nullptr, *kk = nullptr, *vv = nullptr,
        *g = nullptr, *u = nullptr, *cs = nullptr, *sn = nullptr, *logits = nullptr, *scores = nullptr;
  int32_t* tokens = nullptr;
  ActBuffers act;
  int64_t max_cols = 0, max_rows = 0;

  ~Impl() {
    for (void* p : owned) cudaFree(p);
  }
  cudaError_t alloc(void** p, size_t bytes) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) owned.push_back(*p);
    return e;
  }
  void release(void* p) {
    if (!p) return;
    for (auto& q : owned)
      if (q == p) q = nullptr;
    cudaFree(p);
  }
  cudaError_t upload(const void* host, size_t bytes, const void** dev) {
    auto it = up.find(host);
    if (it != up.end()) {
      *dev = it->second;
      return cudaSuccess;
    }
    void* d = nullptr;
    cudaError_t e = alloc(&d, bytes);
    if (e == cudaSuccess) e = cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) up[host] = d;
    *dev = d;
    return e;
  }
  cudaError_t weight(const infer::Linear& w, gpu::DevLinear* d) {
    max_cols = std::max(max_cols, w.cols);
    max_rows = std::max(max_rows, w.rows);
    return device_linear(
        w, d, [this](const void* host, size_t bytes, const void** dev) { return upload(host, bytes, dev); });
  }
  cudaError_t norm(const float* host, const float** dev) {
    const void* p = nullptr;
    cudaError_t e = upload(host, (size_t)c.hidden * 4, &p);
    *dev = (const float*)p;
    return e;
  }
  /** Scratch for n tokens and scores of n tokens attending to `keys` positions. */
  cudaError_t reserve(int64_t n, int64_t keys) {
    cudaError_t e = cudaSuccess;
    if (n > cap_n) {
      cap_n = 0;  // until every buffer is there again: a failure below leaves none to be used
      const int64_t H = c.hidden, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim, I = c.inter;
      float** bufs[] = {&x, &h, &o, &q, &att, &kk, &vv, &g, &u, &cs, &sn, &logits};
      const int64_t sizes[] = {H, H, H, qd, qd, kvd, kvd, I, I, c.head_dim / 2, c.head_dim / 2, c.vocab};
      for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && e == cudaSuccess; i++) {
        release(*bufs[i]);
        *bufs[i] = nullptr;
        e = alloc((void**)bufs[i], (size_t)(n * sizes[i]) * 4);
      }
      void* pp[] = {tokens, act.xq, act.dx, act.xsum};
      for (void* p : pp) release(p);
      tokens = nullptr;
      act = ActBuffers();
      if (e == cudaSuccess) e = alloc((void**)&tokens, (size_t)n * 4);
      if (e == cudaSuccess) e = alloc((void**)&act.xq, (size_t)(n * max_cols));
      // dx / xsum: n × groups ≤ n × cols entries
      if (e == cudaSuccess) e = alloc((void**)&act.dx, (size_t)(n * max_cols) * 4);
      if (e == cudaSuccess) e = alloc((void**)&act.xsum, (size_t)(n * max_cols) * 4);
      if (e != cudaSuccess) return e;
      cap_n = n;
    }
    if (n * c.heads * keys >
        cap_scores) {  // room for keys up to the next multiple of 256 (decode grows by one)
      const int64_t room = std::min(c.context, (keys + 255) / 256 * 256);
      cap_scores = 0;
      release(scores);
      scores = nullptr;
      if ((e = alloc((void**)&scores, (size_t)(n * c.heads * room) * 4)) != cudaSuccess) return e;
      cap_scores = n * c.heads * room;
    }
    return cudaSuccess;
  }
};

GpuModel* GpuModel::create(const infer::ModelConfig& c, const infer::ModelWeights& w, std::string* err) {
  ClearErrorOnReturn clear_on_return;
  std::string name, reason;
  if (!available(&name, &reason)) {
    *err = reason;
    return nullptr;
  }
  // The CPU model's checks first (sizes, shapes), without its host KV cache: a one-context probe.
  try {
    infer::ModelConfig probe = c;
    probe.context = 1;
    infer::ModelWeights pw = w;  // kquant weights (checked when parsed) stand in as float ones for the shapes
    auto as_float = [](infer::Linear& L) {
      if (L.kind != 2) return;
      L.kind = 1;
      L.dtype = kF32;
      L.data = L.q;
    };
    as_float(pw.embed);
    as_float(pw.lm_head);
    for (auto& L : pw.layers)
      for (infer::Linear* x : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) as_float(*x);
    infer::Model check(probe, pw, 1, infer::scalar_kernel());
  } catch (const std::exception& e) {
    *err = e.what();
    return nullptr;
  }
  std::unique_ptr<Impl> p(new Impl());
  p->c = c;
  p->device = name;
  cudaError_t e = cudaSuccess;
  if (e == cudaSuccess) e = p->weight(w.embed, &p->embed);
  if (e == cudaSuccess) e = p->weight(w.lm_head, &p->lm_head);
  if (e == cudaSuccess) e = p->norm(w.final_norm, &p->final_norm);
  for (size_t l = 0; l < w.layers.size() && e == cudaSuccess; l++) {
    const infer::LayerWeights& L = w.layers[l];
    DevLayer d{};
    const infer::Linear* src[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
    gpu::DevLinear* dst[] = {&d.q, &d.k, &d.v, &d.o, &d.gate, &d.up, &d.down};
    for (int i = 0; i < 7 && e == cudaSuccess; i++) e = p->weight(*src[i], dst[i]);
    if (e == cudaSuccess) e = p->norm(L.in_norm, &d.in_norm);
    if (e == cudaSuccess) e = p->norm(L.post_norm, &d.post_norm);
    p->layers.push_back(d);
  }
  p->kv16 = c.kv_f16;
  const size_t kv = (size_t)(c.layers * c.context * c.kv_heads * c.head_dim) * (c.kv_f16 ? 2 : 4);
  if (e == cudaSuccess) e = p->alloc((void**)&p->kcache, kv);
  if (e == cudaSuccess) e = p->alloc((void**)&p->vcache, kv);
  if (e != cudaSuccess) {
    *err = std::string("uploading the model: ") + cudaGetErrorString(e);
    return nullptr;
  }
  p->up.clear();
  return new GpuModel(p.release());
}

GpuModel::~GpuModel() { delete p_; }
void GpuModel::reset() { p_->length = 0; }
int64_t GpuModel::length() const { return p_->length; }
int64_t GpuModel::kv_bytes() const {
  return 2 * p_->c.layers * p_->c.context * p_->c.kv_heads * p_->c.head_dim * (p_->kv16 ? 2 : 4);
}
std::string GpuModel::name() const { return "cuda:" + p_->device; }

bool GpuModel::forward(const int32_t* tokens, int64_t n, int64_t pos, bool all, float* out,
                       std::string* err) {
  ClearErrorOnReturn clear_on_return;
  Impl& m = *p_;
  const infer::ModelConfig& c = m.c;
  if (n < 1) return *err = "forward needs at least one token", false;
  if (pos < 0 || pos > m.length)
    return *err = "pos " + std::to_string(pos) + " is past the cached length " + std::to_string(m.length),
           false;
  if (pos + n > c.context)
    return *err = "positions up to " + std::to_string(pos + n) + " exceed contextLength " +
                  std::to_string(c.context),
           false;
  for (int64_t t = 0; t < n; t++)
    if (tokens[t] < 0 || tokens[t] >= c.vocab)
      return *err = "token id " + std::to_string(tokens[t]) + " is outside the vocabulary", false;
  const int64_t Hd = c.hidden, D = c.head_dim, half = D / 2, kvd = c.kv_heads * D, I = c.inter;
  const int64_t keys = pos + n;
  cudaError_t e = m.reserve(n, keys);
  // RoPE's cos/sin exactly as model.cc computes them (host libm), n × half.
  std::vector<float> cs((size_t)(n * half)), sn((size_t)(n * half));
  for (int64_t t = 0; t < n; t++) {
    float p = (float)(pos + t);
    for (int64_t i = 0; i < half; i++) {
      float f = c.inv_freq[(size_t)i] * p;
      cs[(size_t)(t * half + i)] = std::cos(f) * c.rope_mscale;
      sn[(size_t)(t * half + i)] = std::sin(f) * c.rope_mscale;
    }
  }
  if (e == cudaSuccess) e = cudaMemcpy(m.tokens, tokens, (size_t)n * 4, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(m.cs, cs.data(), cs.size() * 4, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(m.sn, sn.data(), sn.size() * 4, cudaMemcpyHostToDevice);
  m.length = pos;  // a failure below leaves the cache valid up to pos
  auto lin = [&](const gpu::DevLinear& w, const float* x, int64_t k, float* y) {
    if (e == cudaSuccess) e = launch_linear(w, x, k, y, m.act);
  };
  auto check = [&]() {
    if (e == cudaSuccess) e = cudaGetLastError();
  };
  if (e == cudaSuccess) {
    k_embed<<<(unsigned)n, kThreads>>>(m.embed, m.tokens, Hd, c.embed_scale, (float)std::sqrt((double)Hd),
                                       m.x);
    check();
  }
  const float scale = (float)(1.0 / std::sqrt((double)D));
  for (int64_t l = 0; l < c.layers && e == cudaSuccess; l++) {
    const DevLayer& L = m.layers[(size_t)l];
    k_rmsnorm<<<(unsigned)n, kThreads>>>(m.x, L.in_norm, Hd, c.eps, c.norm_add_one, m.h);
    check();
    lin(L.q, m.h, n, m.q);
    lin(L.k, m.h, n, m.kk);
    lin(L.v, m.h, n, m.vv);
    if (e != cudaSuccess) break;
    k_rope<<<blocks_for(n * c.heads * half), kThreads>>>(m.q, n, c.heads, D, m.cs, m.sn);
    k_rope<<<blocks_for(n * c.kv_heads * half), kThreads>>>(m.kk, n, c.kv_heads, D, m.cs, m.sn);
    check();
    const int64_t at = gpu::kv_offset(l, 0, c.context, kvd);
    if (m.kv16) {
      uint16_t* kc = (uint16_t*)m.kcache + at;
      uint16_t* vc = (uint16_t*)m.vcache + at;
      k_store16<<<blocks_for(n * kvd), kThreads>>>(m.kk, kc + pos * kvd, n * kvd);
      k_store16<<<blocks_for(n * kvd), kThreads>>>(m.vv, vc + pos * kvd, n * kvd);
      k_attention<uint16_t>
          <<<(unsigned)(n * c.heads), kThreads>>>(m.q, kc, vc, pos, c.heads, c.heads / c.kv_heads, D, kvd,
                                                  c.sliding_window, scale, m.scores, keys, m.att);
    } else {
      float* kc = (float*)m.kcache + at;
      float* vc = (float*)m.vcache + at;
      if (e == cudaSuccess)
        e = cudaMemcpy(kc + pos * kvd, m.kk, (size_t)(n * kvd) * 4, cudaMemcpyDeviceToDevice);
      if (e == cudaSuccess)
        e = cudaMemcpy(vc + pos * kvd, m.vv, (size_t)(n * kvd) * 4, cudaMemcpyDeviceToDevice);
      if (e != cudaSuccess) break;
      k_attention<float>
          <<<(unsigned)(n * c.heads), kThreads>>>(m.q, kc, vc, pos, c.heads, c.heads / c.kv_heads, D, kvd,
                                                  c.sliding_window, scale, m.scores, keys, m.att);
    }
    check();
    lin(L.o, m.att, n, m.o);
    if (e != cudaSuccess) break;
    k_add<<<blocks_for(n * Hd), kThreads>>>(m.x, m.o, n * Hd);
    k_rmsnorm<<<(unsigned)n, kThreads>>>(m.x, L.post_norm, Hd, c.eps, c.norm_add_one, m.h);
    check();
    lin(L.gate, m.h, n, m.g);
    lin(L.up, m.h, n, m.u);
    if (e != cudaSuccess) break;
    k_glu<<<blocks_for(n * I), kThreads>>>(m.g, m.u, n * I, c.gelu_tanh);
    check();
    lin(L.down, m.g, n, m.o);
    if (e != cudaSuccess) break;
    k_add<<<blocks_for(n * Hd), kThreads>>>(m.x, m.o, n * Hd);
    check();
  }
  const int64_t first = all ? 0 : n - 1, rows = n - first;
  if (e == cudaSuccess) {
    k_rmsnorm<<<(unsigned)rows, kThreads>>>(m.x + first * Hd, m.final_norm, Hd, c.eps, c.norm_add_one, m.h);
    check();
  }
  lin(m.lm_head, m.h, rows, m.logits);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(out, m.logits, (size_t)(rows * c.vocab) * 4, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    *err = std::string("CUDA: ") + cudaGetErrorString(e);
    return false;
  }
  m.length = pos + n;
  return true;
}

}  // namespace cuda
}  // namespace apl
