// NEON inference kernel for kquant weights (arm64): not written yet; the scalar reference
// (infer/kquant_ref.h, the spec) serves arm64.
#include "../infer/kquant_linear.h"

namespace apl {
namespace infer {

const KqKernel* kq_neon_kernel() { return nullptr; }

}  // namespace infer
}  // namespace apl
