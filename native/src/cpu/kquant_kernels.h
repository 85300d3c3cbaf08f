// CPU variants of the two-level-scale kernels (kquant.h): the scalar reference, AVX-512 and AVX2 (x86-64) and
// NEON (arm64), chosen at run time.
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <new>

#include "../kquant.h"

namespace apl {

struct KqKernel {
  const char* name;
  /** Quantizes row r (kq_quantize_row). */
  int (*quantize_row)(const KqJob& j, int64_t r, KqScratch& s, MetricsAcc* m, int64_t* bad);
  /** Dequantizes row r (same values as kq_dequantize_row). */
  void (*dequantize_row)(const KqTensor& t, int64_t r, float* dst);
  /** The build, for tests and benches ("avx512", "avx2-fma", …); `name` is what the report shows. */
  const char* build = nullptr;
};

/** Unpacks `count` q values starting at element c0 (c0·bits a multiple of 8) into bytes. */
inline void kq_unpack_q(const uint8_t* qr, int64_t c0, int count, int bits, uint8_t* out) {
  const uint8_t* p = qr + c0 * bits / 8;
  if (bits == 8) {
    memcpy(out, p, (size_t)count);
  } else if (bits == 4) {
    for (int i = 0; i < count; i += 2) {
      uint8_t b = p[i >> 1];
      out[i] = b & 15;
      out[i + 1] = b >> 4;
    }
  } else {
    for (int i = 0; i < count; i += 4) {
      uint8_t b = p[i >> 2];
      out[i] = b & 3;
      out[i + 1] = (b >> 2) & 3;
      out[i + 2] = (b >> 4) & 3;
      out[i + 3] = b >> 6;
    }
  }
}

const KqKernel& kq_scalar_kernel();
/** nullptr when not compiled in (other architectures). */
const KqKernel* kq_avx2_kernel();
/** The same kernel built with -mfma (kquant_avx2_fma.cc): exact products fused, the same bits. */
const KqKernel* kq_avx2_fma_kernel();
/** AVX-512 (kquant_avx512.cc): 16 groups per vector, exact products fused, the same bits; named "avx2" too.
 */
const KqKernel* kq_avx512_kernel();
/**
 * The AVX-512 build with the AVX2 FMA build's metrics (256-bit products, the exact ones fused): the same
 * bits, chosen where the CPU splits 512-bit operations in two (cpu_splits_512).
 */
const KqKernel* kq_avx512_ymm_kernel();
const KqKernel* kq_neon_kernel();
/**
 * Whether this CPU runs a 512-bit vector operation as two 256-bit halves, so that 256-bit code is as fast
 * where a loop is bound by issue slots: AMD family 19h with AVX-512 (Zen 4; Zen 3 has no AVX-512, Zen 5 is
 * family 1Ah). APL_SPLIT_512=1 or =0 says so instead (read on every call: tests and benches choose).
 */
bool cpu_splits_512();
/**
 * The best variant this CPU runs that reproduces the reference; APL_FORCE_SCALAR=1 forces the reference,
 * APL_NO_AVX512=1 an AVX2 build (the FMA one), APL_NO_FMA=1 the AVX2 build without FMA (all read on every
 * call). Of the AVX-512 builds, the one with 256-bit metrics where cpu_splits_512().
 */
const KqKernel& kq_select_kernel();

}  // namespace apl
