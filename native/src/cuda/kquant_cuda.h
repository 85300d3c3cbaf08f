// The CUDA path of the two-level-scale type (kquant.cu, built when nvcc is found).
#pragma once

#include <string>

#include "../kquant.h"

namespace apl {
namespace cuda {

/**
 * Quantizes the whole job on the GPU: one thread per super-block runs the scalar reference, so q, codes, d
 * and dmin match the CPU bit for bit. Returns kOk, kNonFinite or kScaleOverflow (with *bad), or -1 with *err
 * for a CUDA error. Fills *m (on the host) when j.metrics.
 */
int kq_quantize(const KqJob& j, MetricsAcc* m, int64_t* bad, std::string* err);

}  // namespace cuda
}  // namespace apl
