// The CUDA backend's host-side entry points (implemented in quant.cu when nvcc built it).
#pragma once

#include <string>

#include "../quant.h"

namespace apl {
namespace cuda {

/** Whether a GPU is usable; name or the reason none is. */
bool available(std::string* name, std::string* reason);

/**
 * Quantizes the whole job on the GPU (same results as the CPU reference). Returns kOk, kNonFinite or
 * kScaleOverflow (with *bad), or -1 with *err for a CUDA error. Fills *m when j.metrics. *kernel_ms: kernel
 * time.
 */
int quantize(const QuantJob& j, MetricsAcc* m, int64_t* bad, std::string* err, float* kernel_ms);

}  // namespace cuda
}  // namespace apl
