// Registers the two-level-scale functions (kqQuantize, kqDequantize, kqErrorMetrics, kqKernel) on the addon.
#pragma once

#include <napi.h>

#include "check.h"

namespace apl {
void kq_register(Napi::Env env, Napi::Object exports);

/**
 * The converter's output check of quantize options `o` (its `check`: x n × cols float32, the sampled rows
 * ascending int32), validated against rows × cols; false when there is none. Shared by both quantize types.
 */
bool read_check(const Napi::Object& o, int64_t rows, int64_t cols, CheckJob* out);
/** { fSq, ySq, dySq } of a check. */
Napi::Object check_object(Napi::Env env, const CheckOut& c);
}  // namespace apl
