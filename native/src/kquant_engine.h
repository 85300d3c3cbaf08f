// Threaded CPU engine for the two-level-scale type (kquant.h): quantize with progress and cancellation,
// dequantize, error metrics. No N-API here, so the plain C++ test program links it.
#pragma once

#include "cpu/kquant_kernels.h"
#include "engine.h"

namespace apl {

/** Validates p (the limits in kquant.h); returns an empty string or the problem. */
std::string kq_check_params(const KqParams& p);

/**
 * Quantizes on the CPU with `kernel` (kq_select_kernel() by default) over the engine's threads (engine.h
 * parallel_chunks). Status as quantize_cpu's; with `check`, its products are computed as rows are quantized
 * and its other tasks run on the same threads.
 */
QuantStatus kq_quantize_cpu(const KqJob& j, int threads, Control* ctl, const KqKernel* kernel = nullptr,
                            OutputCheck* check = nullptr);
/** backend: 0 cpu, 1 gpu (error when none), 2 auto. With `check`, the status carries the output check. */
QuantStatus kq_quantize(const KqJob& j, int backend, int threads, Control* ctl,
                        const CheckJob* check = nullptr);

void kq_dequantize(const KqTensor& t, float* out, int threads);
MetricsOut kq_error_metrics(const uint8_t* data, int dtype, const KqTensor& t, int threads);

}  // namespace apl
