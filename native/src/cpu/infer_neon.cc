// NEON inference kernel (arm64): not specialised yet; the scalar reference serves arm64 (nullptr here keeps
// the table honest about what runs).
#include "../infer/infer.h"

namespace apl {
namespace infer {

const Kernel* neon_kernel() { return nullptr; }

}  // namespace infer
}  // namespace apl
