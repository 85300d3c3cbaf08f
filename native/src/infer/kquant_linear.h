// Linear layers on two-level-scale weights (type kquant, Linear kind 2): a kernel table of their own beside
// infer.h's (kept apart from the groupwise kernels), chosen to match the groupwise variant in use. The spec
// is the scalar reference in kquant_ref.h.
#pragma once

#include "infer.h"
#include "pool.h"

namespace apl {
namespace infer {

/**
 * The prompt path of a kquant variant (matrix × matrix, natural-order activations as act_quantize_ref), for
 * the weights and token counts fits() accepts (cpu/infer_kquant_gemm.h).
 */
struct KqGemm {
  bool (*fits)(const Linear& w, int64_t n);
  void (*quantize_act)(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx, int32_t* xsum);
  /** y[t·ystride + r] for rows [r0, r1) and tokens [t0, t1). */
  void (*rows)(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
               int64_t ystride);
};

/** One CPU variant for kquant weights. */
struct KqKernel {
  const char* name;
  /**
   * Quantizes one token's activations x[cols] per group of `group` for weights of `bits` bits
   * (act_quantize_ref's values; the scalar kernel in natural order with xq[cols, round_up(cols, 32)) zeroed,
   * a SIMD variant in its own order within max(round_up(cols, 32), kq_blocked_len) bytes).
   */
  void (*quantize_act)(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                       int32_t* xsum);
  /** y[t·ystride + r] for rows [r0, r1) and tokens [t0, t1) (activations from quantize_act). */
  void (*qrows)(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                int64_t ystride);
  /** The prompt path (nullptr: qrows for every token count). */
  const KqGemm* gemm = nullptr;
};

/** Activation bytes per token a SIMD variant may use: whole blocks of 16 groups (cpu/infer_kquant_x86.h uses
 * blocks of 8, cpu/infer_kquant_wide.h blocks of 16). */
inline int64_t kq_blocked_len(int64_t cols, int64_t group) {
  return (groups_per_row(cols, group) + 15) / 16 * 16 * group;
}

const KqKernel& kq_scalar_kernel();
const KqKernel* kq_avx2_kernel();  // nullptr when not compiled in
const KqKernel* kq_vnni_kernel();  // AVX-512 VNNI: the 512-bit kernel of cpu/infer_kquant_wide.h
const KqKernel* kq_gemm_kernel();  // the same with the row-interleaved prompt path (cpu/infer_kquant_gemm.h)
const KqKernel* kq_amx_kernel();   // kq_gemm_kernel named avx512-amx (goes with amx_kernel: cpu/infer_amx.cc)
const KqKernel* kq_neon_kernel();  // arm64 (cpu/infer_kquant_neon.h); nullptr elsewhere
const KqKernel* kq_neon_dotprod_kernel();  // the same with vdotq_s32 (armv8.2-a+dotprod); nullptr elsewhere
/** The kquant variant that goes with a groupwise kernel (by name: avx512-gemm → kq_gemm_kernel, the other
 * avx512* → kq_vnni_kernel, neon → kq_neon_kernel, neon-dotprod → kq_neon_dotprod_kernel; the scalar
 * reference when none, or when a NEON kernel failed its self-check). */
const KqKernel& kq_kernel_for(const Kernel& k);

/**
 * Whether the wide decode runs cpu/infer_kquant_wide_dec.h (the default: one row at a time in memory order)
 * or the row-pair loop of cpu/infer_kquant_wide_rows.h, block b of row a then block b of row b (the kernel
 * before): APL_WIDE_SEQ=0, read once, the switch of the groupwise kernel too. For A/B runs;
 * bench/native/kq-stream.cc flips it per call.
 */
bool& kq_wide_seq();

/** Why a kquant weight cannot run (empty when it can). */
const char* kq_check_linear(const Linear& w);

/** y[t·rows + r] for t < n: x quantized per group to int8 (into act), integer dot products. */
void kq_linear(const Linear& w, const float* x, int64_t n, float* y, Pool& pool, const KqKernel& k,
               ActQ& act);

}  // namespace infer
}  // namespace apl
