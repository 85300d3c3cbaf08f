// The runtime records every failing call (a cudaMalloc past the device's memory, a refused copy) as its last
// error, and the next cudaGetLastError reads it, so a launch check in a later call would report it as that
// call's own: after one tensor too large for the device, every later one failed with "cudaGetLastError(): out
// of memory". Each entry point of the CUDA files holds a ClearErrorOnReturn: whatever it leaves behind is
// cleared when it returns (its own failures are in what it returns by then; errors that corrupt the context
// stay, as they must).
#pragma once

#include <cuda_runtime.h>

namespace apl {
namespace cuda {

struct ClearErrorOnReturn {
  ClearErrorOnReturn() = default;
  ClearErrorOnReturn(const ClearErrorOnReturn&) = delete;
  ClearErrorOnReturn& operator=(const ClearErrorOnReturn&) = delete;
  ~ClearErrorOnReturn() { (void)cudaGetLastError(); }
};

}  // namespace cuda
}  // namespace apl
