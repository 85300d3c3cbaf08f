// CUDA linear layers on packed and float weights (implemented in infer.cu when nvcc built it).
#pragma once

#include <string>

#include "../infer/infer.h"

namespace apl {
namespace cuda {

/**
 * y (n × rows) = x (n × cols) · Ŵᵀ on the GPU: packed weights with the int8 activation scheme of infer/ref.h
 * (bit-exact with the scalar reference), float weights in float32. False with *err on a CUDA error or no GPU.
 */
bool infer_linear(const infer::Linear& w, const float* x, int64_t n, float* y, std::string* err);

}  // namespace cuda
}  // namespace apl
