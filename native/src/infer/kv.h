// The KV cache's float16 storage: attention reads K and V as float16 with float32 arithmetic. Scalar
// reference plus AVX2/F16C (function-level target attributes, chosen at run time) and NEON variants; the
// scalar one runs when the model's kernel is the scalar reference (APL_FORCE_SCALAR=1).
#pragma once

#include <stdint.h>

namespace apl {
namespace infer {

struct KvOps {
  const char* name;
  /** Σ q[i]·k[i] with k float16 bits. */
  float (*dot)(const float* q, const uint16_t* k, int64_t n);
  /** y[i] += s·v[i] with v float16 bits. */
  void (*axpy)(float s, const uint16_t* v, float* y, int64_t n);
  /** dst[i] = float16 bits of src[i] (round to nearest even). */
  void (*store)(const float* src, uint16_t* dst, int64_t n);
};

/** The scalar reference (lanes i % 8, as the kernels' dotf) or, when simd, the best variant this CPU runs. */
const KvOps& kv_ops(bool simd);

}  // namespace infer
}  // namespace apl
