// The forward pass on a GPU (forward.cu, built when nvcc is found): the CPU model's operations
// (infer/model.cc) on device buffers. Weights are uploaded once, packed as they are (float weights as
// stored); the KV cache lives on the device; logits come back to the host.
#pragma once

#include <string>

#include "../infer/model.h"

namespace apl {
namespace cuda {

class GpuModel {
 public:
  /** Uploads the weights (checked as the CPU model checks them). nullptr with *err on any problem. */
  static GpuModel* create(const infer::ModelConfig& c, const infer::ModelWeights& w, std::string* err);
  ~GpuModel();
  /** As infer::Model::forward; false with *err on a bad argument or a CUDA error. */
  bool forward(const int32_t* tokens, int64_t n, int64_t pos, bool all, float* out, std::string* err);
  void reset();
  int64_t length() const;
  int64_t kv_bytes() const;
  /** "cuda:<device name>" */
  std::string name() const;

  struct Impl;

 private:
  explicit GpuModel(Impl* p) : p_(p) {}
  Impl* p_;
};

}  // namespace cuda
}  // namespace apl
