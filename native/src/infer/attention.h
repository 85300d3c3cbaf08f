// Causal (optionally sliding-window) attention with grouped KV heads over the KV cache (float16 or float32),
// softmax in float32. Two forms:
//  - attention_reference: one dot / axpy call per (query, key) and std::exp, the form the forward pass had
//    first; kept as the reference (tests, APL_ATTN=ref).
//  - attention_blocked: threads over (KV head, block of 16 query rows: the query heads of a group ×
//  consecutive
//    tokens); each block converts its KV head's keys and values to float32 once and shares them across its
//    rows; scores for 4 rows × 4 keys at a time, the softmax over 16 rows at a time, values per row.
// The blocked form keeps the reference's float order for every (query, key): the same dot product order as
// the kv dot (or the kernel's dotf) it replaces (AttnOrder), the max, the sum over keys in key order, p = e /
// sum and the value sum in key order with the same (fused or not) multiply-add. Only exp differs: attn_exp
// (below, the spec; the SIMD variants are bit-exact with it) instead of the C library's expf (within 2 ulp of
// it; with std_exp the blocked form is bit-exact with the reference, which the tests check). A query's result
// does not depend on the block it falls in, so a prompt in one call equals the same tokens one by one bit for
// bit.
#pragma once

#include <stdint.h>

#include "infer.h"
#include "kv.h"
#include "pool.h"

namespace apl {
namespace infer {

struct AttnArgs {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  int64_t window = 0;        // 0: none; else query at position p attends to keys j with p − j < window
  int64_t n = 0, pos = 0;    // queries at positions pos..pos+n−1 (cache rows 0..pos+n−1 hold their keys)
  const float* q = nullptr;  // n × heads × head_dim
  const uint16_t *k16 = nullptr, *v16 = nullptr;  // float16 cache: position × kv_heads × head_dim, or
  const float *k32 = nullptr, *v32 = nullptr;     // float32 cache
  float* out = nullptr;                           // n × heads × head_dim
};

/**
 * The dot product order the blocked form reproduces: kLanes8, lane i % 8 with a separate multiply and add,
 * reduce8 (the scalar reference and NEON); kFma16, two 8-lane fused multiply-add accumulators over blocks of
 * 16 (and one more block of 8), added and reduced as hsum, then the rest one by one (the x86 kv dot and
 * dotf).
 */
enum class AttnOrder { kLanes8, kFma16 };

struct AttnImpl {
  const char* name;  // "scalar", "avx2", "avx512" or "neon"
  AttnOrder order;
  int isa;  // 0 scalar, 1 AVX2 + FMA, 2 AVX-512, 3 NEON (kLanes8, arm64)
};

/** The blocked form for this order on this CPU (APL_NO_AVX512=1: no AVX-512; APL_FORCE_SCALAR=1: scalar). */
AttnImpl attn_select(AttnOrder order);
/** Every implementation this CPU runs for the order (tests). */
int attn_available(AttnOrder order, AttnImpl* out /* [3] */);  // NEON: after its self-check
/** The order of a KV cache read through kv (a float16 cache) or through k's dotf (a float32 cache). */
AttnOrder attn_order(const KvOps& kv);

void attention_reference(const AttnArgs& a, const KvOps& kv, const Kernel& k, Pool& pool);
void attention_blocked(const AttnArgs& a, const AttnImpl& impl, Pool& pool, bool std_exp = false);

/** exp for the blocked softmax: 0 below −87, +inf above 88, Cody–Waite reduction and the Cephes expf
 * polynomial. */
float attn_exp(float x);

/**
 * SwiGLU's elementwise step on the same exp: g[i] = v / (1 + attn_exp(−v)) · u[i] with v = g[i]. isa: −1 the
 * best this CPU runs, 0 scalar (the spec), 1 AVX2, 2 AVX-512, 3 NEON (all bit-exact with the scalar one).
 */
void silu_mul(float* g, const float* u, int64_t n, int isa = -1);

}  // namespace infer
}  // namespace apl
