// Inference kernels: linear layers straight on the packed weights (and on float weights), behind one table of
// CPU variants chosen at run time. No napi.h here.
//
// The int8 scheme (the spec is the scalar reference in ref.h):
//  - activations are quantized per group of the weight's group size (the last group of a row may be shorter):
//    dx = amax/127, xq = clamp(rne(x · 127/amax), −127, 127), xsum = Σ xq (int32);
//  - a row's dot product sums, per group, the integer dot isum = Σ q·xq and combines in float32 exactly as
//    term = (s·dx)·((float)isum − zp·(float)xsum), term of group g added to lane g % 8, lanes reduced as in
//    quant.h's reduce8. The SIMD variants follow the same order, so their results are bit-exact.
//  - float weights (f32/f16/bf16) run on float32 activations (no quantization); the SIMD variants use other
//    summation orders (tolerance stated in the tests).
#pragma once

#include <stdint.h>

#include <type_traits>
#include <vector>

#include "../quant.h"

namespace apl {
namespace infer {

constexpr int64_t kMaxGroup = 65536;  // 255·127·65536 < 2^31: isum never overflows int32

/**
 * A linear weight: packed codes (kind 0), float values (kind 1) or two-level scales (kind 2, type kquant: q,
 * bits and group as packed, plus codes/kd/kdmin/super/sbits/mbits; the spec is kquant_ref.h), row-major
 * [rows, cols].
 */
struct Linear {
  int kind = 0;
  int64_t rows = 0, cols = 0;
  // packed
  const uint8_t* q = nullptr;
  const uint8_t* scales = nullptr;
  const uint8_t* zeros = nullptr;
  int bits = 4;
  int64_t group = 0;
  bool f16 = true;
  // float
  const uint8_t* data = nullptr;
  int dtype = kF32;
  // kquant (kind 2, the two-level-scale type of kquant.h: q as packed, codes, d/dmin float16 per super-block;
  // group = kq_group). The CPU kernels (kquant_ref.h, the spec) and the GPU forward read it.
  const uint8_t* codes = nullptr;
  const uint8_t* kd = nullptr;
  const uint8_t* kdmin = nullptr;
  int kq_group = 0, kq_super = 0, kq_sbits = 0, kq_mbits = 0;

  int64_t gpr() const { return groups_per_row(cols, group); }
  int64_t row_bytes() const { return packed_row_bytes(cols, bits); }
  /** Bytes read for one pass over the weight. */
  int64_t bytes() const {
    if (kind == 2)
      return rows *
             (row_bytes() + (gpr() * (kq_sbits + kq_mbits) + 7) / 8 + 4 * ((cols + kq_super - 1) / kq_super));
    return kind == 0 ? rows * row_bytes() + 2 * rows * gpr() * (f16 ? 2 : 4)
                     : rows * cols * dtype_size(dtype);
  }
};

/** Quantized activations of n tokens for one weight layout (xq permuted in SIMD variants: see permuted()). */
struct ActQ {
  int64_t cols = 0, group = 0, gpr = 0, n = 0;
  int64_t xstride = 0, gstride = 0;  // per token: xq bytes, dx/xsum entries
  std::vector<int8_t> xq;  // 64 bytes more than used: xq_of(0) is 64-byte aligned (whole-line vector loads)
  std::vector<float> dx;
  std::vector<int32_t> xsum;
  void resize(int64_t n_, int64_t cols_, int64_t group_) {
    n = n_;
    cols = cols_;
    group = group_;
    gpr = group_ > 0 ? groups_per_row(cols_, group_) : 0;
    xstride = (cols_ + 63) / 64 * 64;
    gstride = gpr;
    if ((int64_t)xq.size() < n * xstride + 64) xq.resize((size_t)(n * xstride + 64));
    if ((int64_t)dx.size() < n * gstride) dx.resize((size_t)(n * gstride));
    if ((int64_t)xsum.size() < n * gstride) xsum.resize((size_t)(n * gstride));
  }
  int8_t* xq_at(int64_t t) {
    return reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(xq.data()) + 63) & ~(uintptr_t)63) +
           t * xstride;
  }
  const int8_t* xq_of(int64_t t) const { return const_cast<ActQ*>(this)->xq_at(t); }
  const float* dx_of(int64_t t) const { return dx.data() + t * gstride; }
  const int32_t* xsum_of(int64_t t) const { return xsum.data() + t * gstride; }
};

/**
 * The prompt path of a variant (matrix × matrix, its own natural-order activations), for the weights and
 * token counts fits() accepts.
 */
struct Gemm {
  bool (*fits)(const Linear& w, int64_t n);
  void (*quantize_act)(const float* x, int64_t cols, int64_t group, int8_t* xq, float* dx, int32_t* xsum);
  /** y[t·ystride + r] for rows [r0, r1) and tokens [t0, t1). */
  void (*rows)(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
               int64_t ystride);
};

/** One CPU variant. */
struct Kernel {
  const char* name;
  /** Quantizes one token's activations x[cols] (layout for weights of `bits` bits). */
  void (*quantize_act)(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                       int32_t* xsum);
  /** y[t·ystride + r] for rows [r0, r1) and tokens [t0, t1). */
  void (*qrows)(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
                int64_t ystride);
  /** Float weights: y[t·ystride + r] = Σ w[r, c]·x[t·cols + c]. */
  void (*frows)(const Linear& w, int64_t r0, int64_t r1, const float* x, int64_t t0, int64_t t1, float* y,
                int64_t ystride);
  /** Attention helpers: Σ a·b, and y += s·x. */
  float (*dotf)(const float* a, const float* b, int64_t n);
  void (*axpyf)(float s, const float* x, float* y, int64_t n);
  /** The prompt path (nullptr: qrows for every token count). */
  const Gemm* gemm = nullptr;
};

const Kernel& scalar_kernel();
const Kernel* avx2_kernel();          // nullptr when not compiled in
const Kernel* vnni_kernel();          // AVX-512 VNNI (+VL) dot products on 256-bit vectors
const Kernel* avx512_kernel();        // 512-bit vectors with VNNI
const Kernel* gemm_kernel();          // avx512 with the row-interleaved prompt path (cpu/infer_gemm.h)
const Kernel* amx_kernel();           // avx512-gemm with the prompt GEMM on AMX-INT8 tiles (cpu/infer_amx.cc)
const Kernel* neon_kernel();          // plain armv8-a
const Kernel* neon_dotprod_kernel();  // armv8.2-a dot product (vdotq_s32); listed only where the CPU has it
/** Whether AMX-INT8 can run in this process: nullptr if so (the CPU has it and the OS granted the tile data
 * state, requested once), else why not. */
const char* amx_unusable();
/** Every variant this CPU can run, best last (the scalar reference first). */
std::vector<const Kernel*> available_kernels();
/** The best variant (APL_FORCE_SCALAR=1: the scalar reference; APL_NO_AVX512=1: no AVX-512; APL_NO_AMX=1: no
 * AMX; APL_NO_DOTPROD=1: no arm64 dot-product kernel). */
const Kernel& select_kernel();
const Kernel* kernel_by_name(const char* name);

/** f(std::integral_constant<int, B>{}) for a groupwise weight's bit width B (1, 2 or 8; any other: 4): the
 * one switch from the run-time width to a kernel's template argument (the prompt paths' rows functions). */
template <class F>
inline void with_bits(int bits, F&& f) {
  switch (bits) {
    case 8:
      return f(std::integral_constant<int, 8>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 1:
      return f(std::integral_constant<int, 1>{});
    default:
      return f(std::integral_constant<int, 4>{});
  }
}

/** Dequantizes row r of a packed or float weight into dst (float32). */
void dequantize_row_any(const Linear& w, int64_t r, float* dst);

}  // namespace infer
}  // namespace apl

// A kernel function where its file is built for another architecture (or without the extension): no
// kernel. Used outside any namespace: APL_NO_KERNEL(Kernel, neon_kernel).
#define APL_NO_KERNEL(Type, fn)        \
  namespace apl {                      \
  namespace infer {                    \
  const Type* fn() { return nullptr; } \
  }                                    \
  }
