// The index math and per-element formulas of the CUDA inference kernels (linear.cuh, forward.cu), shared with
// the host. The kernels compute "which element, which lane, which offset, which float32 operation" only
// through these functions, and the plain C++ test (test/native/test_gpu.cc) runs the same functions in CPU
// loops laid out like the kernels' threads and warps, against the scalar reference (infer/ref.h) and the CPU
// model, so a wrong index or a changed operation order is caught on a machine with no GPU. No CUDA API here:
// g++ compiles it (APL_HD is empty there).
#pragma once

#include "../infer/ref.h"
#include "../kquant.h"

namespace apl {
namespace gpu {

/** A linear weight as the kernels see it (device pointers there, host pointers in the emulation). */
struct DevLinear {
  int kind = 0;  // 0 packed, 1 float, 2 kquant
  int64_t rows = 0, cols = 0;
  const uint8_t* q = nullptr;
  const uint8_t* scales = nullptr;
  const uint8_t* zeros = nullptr;
  int bits = 4;
  int64_t group = 1;
  bool f16 = true;
  const uint8_t* data = nullptr;
  int dtype = kF32;
  // kind 2: kquant (kquant.h): linears as packed rows with int8 activations, embeddings element by element
  const uint8_t* codes = nullptr;
  const uint8_t* kd = nullptr;
  const uint8_t* kdmin = nullptr;
  int kq_group = 1, kq_super = 1, kq_sbits = 0, kq_mbits = 0;
};

APL_HD inline int64_t row_bytes(int64_t cols, int bits) { return (cols * bits + 7) / 8; }
APL_HD inline int64_t groups(int64_t cols, int64_t group) { return (cols + group - 1) / group; }
APL_HD inline int64_t group_end(int64_t g, int64_t group, int64_t cols) {
  return g * group + group < cols ? g * group + group : cols;
}

/** A stored scale or zero (load_param). */
APL_HD inline float param_at(const uint8_t* p, int64_t i, bool f16) {
  if (f16) return f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
  uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
               ((uint32_t)p[4 * i + 3] << 24);
  return bits_f32(u);
}

/** Element i of a float weight (float_at). */
APL_HD inline float float_elem(const uint8_t* p, int64_t i, int dtype) {
  if (dtype == kF32) {
    uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
                 ((uint32_t)p[4 * i + 3] << 24);
    return bits_f32(u);
  }
  uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
  return dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

/** s and z of row r's kquant group g: f32(d·sc) and f32(dmin·mc) (infer/kquant_ref.h kq_group_sz). */
APL_HD inline void kq_sz(const DevLinear& w, int64_t r, int64_t g, float* s, float* z) {
  const int cw = w.kq_sbits + w.kq_mbits;
  const int64_t b = g * w.kq_group / w.kq_super;
  const int64_t nsb = (w.cols + w.kq_super - 1) / w.kq_super;
  const uint8_t* cr = w.codes + r * ((groups(w.cols, w.kq_group) * cw + 7) / 8);
  const float d = param_at(w.kd, r * nsb + b, true), dm = param_at(w.kdmin, r * nsb + b, true);
  const unsigned sc = get_bits(cr, g * cw, w.kq_sbits), mc = get_bits(cr, g * cw + w.kq_sbits, w.kq_mbits);
  *s = d * (float)sc;
  *z = dm * (float)mc;
}
/** Ŵ[r, c] of a kquant weight as kq_dequantize_row computes it: f32(f32(d·sc)·q − f32(dmin·mc)). */
APL_HD inline float kq_elem(const DevLinear& w, int64_t r, int64_t c) {
  float s, z;
  kq_sz(w, r, c / w.kq_group, &s, &z);
  const unsigned q = get_bits(w.q + r * row_bytes(w.cols, w.bits), c * w.bits, w.bits);
  float v = s * (float)q;
  return v - z;
}

/** Ŵ[r, c] as dequantize_row_any computes it: ((float)q − z)·s for packed weights, the value for float ones
 * (kquant: kq_elem). */
APL_HD inline float weight_elem(const DevLinear& w, int64_t r, int64_t c) {
  if (w.kind == 2) return kq_elem(w, r, c);
  if (w.kind != 0) return float_elem(w.data, r * w.cols + c, w.dtype);
  int64_t gi = r * groups(w.cols, w.group) + c / w.group;
  unsigned q = infer::packed_at(w.q + r * row_bytes(w.cols, w.bits), c, w.bits);
  float s = param_at(w.scales, gi, w.f16), z = param_at(w.zeros, gi, w.f16);
  float t = (float)q - z;
  return t * s;
}

// ---------------------------------------------------------------------------------------------------------------
// int8 activations: one thread per (token, group), act_quantize_group_ref's operations

/** Quantizes x[lo, hi) (one group of one token): xq[lo, hi), returns dx, *sum = Σ xq. */
APL_HD inline float act_group(const float* x, int64_t lo, int64_t hi, int8_t* xq, int32_t* sum) {
  float amax = 0.0f;
  for (int64_t i = lo; i < hi; i++) {
    float a = fabsf(x[i]);
    if (a > amax) amax = a;
  }
  float d = amax / 127.0f;
  float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int64_t i = lo; i < hi; i++) {
    float t = x[i] * inv;
    t = rintf(t);
    t = t > 127.0f ? 127.0f : (t < -127.0f ? -127.0f : t);
    int v = (int)t;
    xq[i] = (int8_t)v;
    s += v;
  }
  *sum = s;
  return d;
}

// ---------------------------------------------------------------------------------------------------------------
// Packed rows: one warp per (row, tile of T tokens). Lane L handles groups L, L+32, …; per chunk of 32
// groups, lane l < 8 (the reference's acc[l]) takes the terms of lanes src_lane(l, k), k = 0..3, in k order,
// so lane l adds groups ≡ l (mod 8) in increasing order, as qdot_ref does.

/** Warp w's row and first token (tiles of T tokens, rows fastest). */
APL_HD inline void warp_task(int64_t w, int64_t rows, int T, int64_t* r, int64_t* t0) {
  *r = w % rows;
  *t0 = (w / rows) * T;
}
APL_HD inline int64_t warp_tasks(int64_t rows, int64_t n, int T) { return rows * ((n + T - 1) / T); }
APL_HD inline int src_lane(int lane, int k) { return (lane & 7) + 8 * k; }
APL_HD inline bool lane_takes(int64_t g0, int lane, int k, int64_t gpr) {
  return lane < 8 && g0 + lane + 8 * k < gpr;
}
/** Group g's term of kquant's kq_combine_group (infer/kquant_ref.h), for one token. */
APL_HD inline float kq_term(int32_t isum, float s, float z, float dx, int32_t xsum) {
  float a = (float)isum;
  float xs = (float)xsum;
  float u = s * a;
  float v = z * xs;
  float t = u - v;
  return dx * t;
}
/** Group g's term of combine_group, for one token. */
APL_HD inline float group_term(int32_t isum, float s, float z, float dx, int32_t xsum) {
  float d = s * dx;
  float a = (float)isum;
  float xs = (float)xsum;
  float b = z * xs;
  float t = a - b;
  return d * t;
}

// ---------------------------------------------------------------------------------------------------------------
// Float rows: eight threads per (row, tile of T tokens); thread k of the octet holds fdot_ref's acc[k]
// (columns k, k+8, … in order), the octet's eight values reduce with reduce8.

APL_HD inline void octet_task(int64_t o, int64_t rows, int T, int64_t* r, int64_t* t0) {
  warp_task(o, rows, T, r, t0);
}
/** One product of lane k's chain (the caller adds it: acc += p); kquant weights dequantized on the fly. */
APL_HD inline float fdot_product(const DevLinear& w, int64_t r, int64_t c, const float* xt) {
  return (w.kind == 2 ? kq_elem(w, r, c) : float_elem(w.data, r * w.cols + c, w.dtype)) * xt[c];
}

// ---------------------------------------------------------------------------------------------------------------
// Model steps (model.cc's operations)

/** First key position token p attends to (mistral's sliding window: keys j with p − j < window). */
APL_HD inline int64_t attn_lo(int64_t p, int64_t window) {
  return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
}
/** Offset of (layer, position) in a KV cache of `context` positions × kvd floats per layer. */
APL_HD inline int64_t kv_offset(int64_t layer, int64_t pos, int64_t context, int64_t kvd) {
  return (layer * context + pos) * kvd;
}
/** A KV cache value as float32: a float32 cache's as it is, a float16 cache's widened (infer/kv.cc's store).
 */
APL_HD inline float kv_value(float v) { return v; }
APL_HD inline float kv_value(uint16_t h) { return f16_to_f32(h); }
/**
 * Σ a·b in the scalar kernel's order (8 lanes, reduce8): the attention score, b a float32 or float16 key (the
 * float16 one in kv.cc's dot_scalar order).
 */
template <class KV>
APL_HD inline float dot8(const float* a, const KV* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    float p = a[i] * kv_value(b[i]);
    acc[i & 7] += p;
  }
  return reduce8(acc);
}
/** RMSNorm's factor from Σx² (float64): 1/√(mean + eps) in float32. */
APL_HD inline float rms_factor(double ss, int64_t hidden, float eps) {
  float var = (float)(ss / (double)hidden);
  return 1.0f / sqrtf(var + eps);
}
APL_HD inline float rms_apply(float x, float r, float w, bool add_one) {
  float v = x * r;
  float m = add_one ? 1.0f + w : w;
  return v * m;
}
/** Rotate-half RoPE of one pair (v[i], v[i + half]) with cos/sin already scaled. */
APL_HD inline void rope_pair(float* a, float* b, float cs, float sn) {
  float x = *a, y = *b;
  float a1 = x * cs, a2 = (-y) * sn;
  float b1 = y * cs, b2 = x * sn;
  *a = a1 + a2;
  *b = b1 + b2;
}
/** GeGLU (tanh GELU) or SwiGLU of gate v and up u; tanh/exp are passed in (the device's double versions). */
template <class Tanh, class Exp>
APL_HD inline float glu(float v, float u, bool gelu, Tanh tanh_f, Exp exp_f) {
  float a;
  if (gelu) {
    float inner = 0.7978845608028654f * (v + 0.044715f * (v * v * v));
    a = 0.5f * v * (1.0f + tanh_f(inner));
  } else {
    a = v / (1.0f + exp_f(-v));
  }
  return a * u;
}

}  // namespace gpu
}  // namespace apl
