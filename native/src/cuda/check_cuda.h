// The converter's output check on the GPU (check.cu, built when nvcc is found): the products of check.h.
#pragma once

#include <string>

#include "../check.h"
#include "../kquant.h"

namespace apl {
namespace cuda {

/**
 * The output check's products for a job already quantized (j.q, j.scales, j.zeros filled): for input i and
 * sampled row jj, y[i·m + jj] = Σ_c x[i, c]·f[c] and yq[i·m + jj] = (float)Σ_c x[i, c]·ŵ[c], each a float64
 * chain over c in order — OutputCheck::row's arithmetic, so the results are the CPU's bit for bit. Only the
 * sampled rows travel to the device. False with *err on a CUDA error.
 */
bool check_products(const QuantJob& j, const CheckJob& c, double* y, float* yq, std::string* err);

/**
 * The same products for a two-level-scale job already quantized (j.q, codes, d, dmin filled): one thread per
 * (sampled row, input) runs kq_check_pair (kquant_check.h), so the results are the CPU check's bit for bit.
 */
bool kq_check_products(const KqJob& j, const CheckJob& c, double* y, float* yq, std::string* err);

}  // namespace cuda
}  // namespace apl
