// Registers the two-level-scale functions (kqQuantize, kqDequantize, kqErrorMetrics, kqKernel) on the addon.
#pragma once

#include <napi.h>

namespace apl {
void kq_register(Napi::Env env, Napi::Object exports);
}  // namespace apl
