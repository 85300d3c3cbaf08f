// Linear layers over the thread pool: y (n × rows) = x (n × cols) · Ŵᵀ.
#pragma once

#include "infer.h"
#include "pool.h"

namespace apl {
namespace infer {

/** Why a weight cannot run (empty when it can). */
const char* check_linear(const Linear& w);

/**
 * y[t·rows + r] for t < n. Packed weights quantize x per group to int8 (into act) and run integer dot
 * products; float weights run in float32.
 */
void linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const Kernel& k, ActQ& act);

}  // namespace infer
}  // namespace apl
