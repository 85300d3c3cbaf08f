// The output check's products for the two-level-scale type, as the GPU computes them (cuda/check.cu), in one
// host-and-device function so the CPU can run it too (test/native/test_kquant.cc checks it against the CPU
// check, check.cc, bit for bit). OutputCheck::row's arithmetic: for input i and sampled row jj, two float64
// chains over the columns in order, Σ x·f and Σ x·ŵ, with ŵ = f32(f32(d·sc)·q − f32(dmin·mc)) as
// kq_dequantize_row computes it (float32 × float32 products are exact in float64; the device code is built
// with --fmad=false so no add is fused).
#pragma once

#include <cstring>
#include <vector>

#include "check.h"
#include "kquant.h"

namespace apl {

/** Element i of raw little-endian input (f32, f16 or bf16), as load_row_scalar decodes it. */
APL_HD inline float kq_raw_at(const uint8_t* p, int64_t i, int dtype) {
  if (dtype == kF32) {
    uint32_t u = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
                 ((uint32_t)p[4 * i + 3] << 24);
    return bits_f32(u);
  }
  uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
  return dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

/**
 * y = Σ_c x[c]·f[c] and yq = (float)Σ_c x[c]·ŵ[c] for row jj of a gathered tensor t (t.rows = the sampled
 * rows; raw: their input, cols values each of dtype).
 */
APL_HD inline void kq_check_pair(const uint8_t* raw, int dtype, const KqTensor& t, int64_t jj, const float* x,
                                 double* y, float* yq) {
  const KqParams& p = t.p;
  // (the row sizes of packed_row_bytes, kq_code_row_bytes and kq_supers_per_row, which are host-only)
  const int64_t cols = t.cols, rb = (cols * p.bits + 7) / 8;
  const int64_t cb = ((cols + p.group - 1) / p.group * (p.sbits + p.mbits) + 7) / 8;
  const int64_t nsb = (cols + p.super - 1) / p.super;
  const uint8_t* qr = t.q + jj * rb;
  const uint8_t* cr = t.codes + jj * cb;
  const int w = p.sbits + p.mbits;
  double a = 0, aq = 0;
  for (int64_t c0 = 0; c0 < cols; c0 += p.group) {
    const int64_t g = c0 / p.group, b = c0 / p.super;
    const uint8_t* dp = t.d + (jj * nsb + b) * 2;
    const uint8_t* mp = t.dmin + (jj * nsb + b) * 2;
    const float d = f16_to_f32((uint16_t)(dp[0] | (dp[1] << 8)));
    const float dm = f16_to_f32((uint16_t)(mp[0] | (mp[1] << 8)));
    const unsigned sc = get_bits(cr, g * w, p.sbits), mc = get_bits(cr, g * w + p.sbits, p.mbits);
    const float s = d * (float)sc;
    const float z = dm * (float)mc;
    const int64_t end = c0 + p.group < cols ? c0 + p.group : cols;
    for (int64_t c = c0; c < end; c++) {
      const unsigned q = get_bits(qr, c * p.bits, p.bits);
      const float v = s * (float)q;
      const float wv = v - z;
      const double xc = (double)x[c];
      a += xc * (double)kq_raw_at(raw, jj * cols + c, dtype);
      aq += xc * (double)wv;
    }
  }
  *y = a;
  *yq = (float)aq;
}

/** The sampled rows of a kquant job gathered into contiguous buffers (what the GPU is sent). */
struct KqGathered {
  std::vector<uint8_t> raw, q, codes, d, dmin;
  KqTensor tensor(const KqJob& j, int64_t m) const {
    return KqTensor{q.data(), codes.data(), d.data(), dmin.data(), m, j.cols, j.p};
  }
};

/** Gathers the rows c.rows[0..m) of a quantized job: input bytes, q, codes, d and dmin. */
inline KqGathered kq_gather(const KqJob& j, const CheckJob& c) {
  const int64_t cols = j.cols, es = dtype_size(j.dtype), rb = packed_row_bytes(cols, j.p.bits);
  const int64_t cb = kq_code_row_bytes(cols, j.p), db = kq_supers_per_row(cols, j.p.super) * 2;
  KqGathered g;
  g.raw.resize((size_t)(c.m * cols * es));
  g.q.resize((size_t)(c.m * rb));
  g.codes.resize((size_t)(c.m * cb));
  g.d.resize((size_t)(c.m * db));
  g.dmin.resize((size_t)(c.m * db));
  for (int64_t jj = 0; jj < c.m; jj++) {
    const int64_t r = c.rows[jj];
    memcpy(g.raw.data() + jj * cols * es, j.data + r * cols * es, (size_t)(cols * es));
    memcpy(g.q.data() + jj * rb, j.q + r * rb, (size_t)rb);
    memcpy(g.codes.data() + jj * cb, j.codes + r * cb, (size_t)cb);
    memcpy(g.d.data() + jj * db, j.d + r * db, (size_t)db);
    memcpy(g.dmin.data() + jj * db, j.dmin + r * db, (size_t)db);
  }
  return g;
}

}  // namespace apl
