// The row level of the scalar reference (the spec, with quant.h, which includes this file at its end): the
// options of a quantize call, decoding an input row and the stored scales/zeros, the row loop that quantizes,
// stores and packs, the error metrics' finish, and dequantize_row. Include quant.h, not this file.
#pragma once

#include "quant.h"

namespace apl {

// ---------------------------------------------------------------------------------------------------------------
// Rows

/** Everything a quantize call needs, copied out of the JavaScript options. Pointers stay valid for the call.
 */
struct QuantJob {
  const uint8_t* data;
  int dtype;
  int64_t rows, cols;
  int bits;
  int64_t group;
  bool symmetric, optimized, f16, metrics;
  uint8_t* q;
  uint8_t* scales;
  uint8_t* zeros;
  /** The metrics' sums of the rows before this call (a tensor quantized in several calls), added to first. */
  MetricsAcc metrics_from{};
};

struct MetricsOut {
  double rel_error, snr_db, cosine, max_abs;
};
inline MetricsOut finish_metrics(const MetricsAcc& m) {
  MetricsOut o;
  o.rel_error = m.sxx > 0 ? sqrt(m.sdd / m.sxx) : (m.sdd > 0 ? INFINITY : 0);
  o.snr_db = m.sdd > 0 ? (m.sxx > 0 ? 10 * log10(m.sxx / m.sdd) : -INFINITY) : INFINITY;
  o.cosine = m.sxx > 0 && m.sww > 0 ? m.sxw / sqrt(m.sxx * m.sww) : (m.sxx == 0 && m.sww == 0 ? 1 : 0);
  o.max_abs = m.max_abs;
  return o;
}

/** Row r of the input as float32: the input itself when it is aligned f32, else decoded into dst. */
inline const float* load_row_scalar(const QuantJob& j, int64_t r, float* dst) {
  const uint8_t* p = j.data + (size_t)(r * j.cols) * dtype_size(j.dtype);
  if (j.dtype == kF32) {
    if (((uintptr_t)p & 3) == 0) return reinterpret_cast<const float*>(p);
    memcpy(dst, p, (size_t)j.cols * 4);
  } else {
    for (int64_t i = 0; i < j.cols; i++) {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      dst[i] = j.dtype == kF16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return dst;
}

/** Reads the stored scale or zero of group gi. */
inline float load_param(const uint8_t* src, int64_t gi, bool f16) {
  if (f16) {
    uint16_t h;
    memcpy(&h, src + gi * 2, 2);
    return f16_to_f32(h);
  }
  float f;
  memcpy(&f, src + gi * 4, 4);
  return f;
}

/** Scratch space for one thread: a decoded row and its unpacked q values. */
struct RowScratch {
  float* row;
  uint8_t* qv;
};

/**
 * Quantizes row r with primitive set Ops. `load` decodes the row; returns kOk, kNonFinite (with *bad set to
 * the flat index) or kScaleOverflow (with *bad set to the flat index of the group start).
 */
template <class Ops, class Load, class Find>
inline int quantize_row(const QuantJob& j, int64_t r, RowScratch& s, MetricsAcc* m, int64_t* bad, Load load,
                        Find find_nonfinite) {
  const float* row = load(j, r, s.row);
  int64_t nf = find_nonfinite(row, j.cols);
  if (nf >= 0) {
    *bad = r * j.cols + nf;
    return kNonFinite;
  }
  GroupParams p{j.bits, j.symmetric, j.optimized, j.f16};
  int64_t gpr = groups_per_row(j.cols, j.group);
  for (int64_t g = 0; g < gpr; g++) {
    int64_t off = g * j.group;
    int n = (int)(j.cols - off < j.group ? j.cols - off : j.group);
    float sc, z;
    int st = quantize_group<Ops>(row + off, n, p, s.qv + off, &sc, &z);
    if (st != kOk) {
      *bad = r * j.cols + off;
      return st;
    }
    int64_t gi = r * gpr + g;
    if (j.f16) {
      uint16_t hs = Ops::f16_bits(sc), hz = Ops::f16_bits(z);
      memcpy(j.scales + gi * 2, &hs, 2);
      memcpy(j.zeros + gi * 2, &hz, 2);
    } else {
      memcpy(j.scales + gi * 4, &sc, 4);
      memcpy(j.zeros + gi * 4, &z, 4);
    }
    if (m) Ops::metrics(row + off, s.qv + off, n, sc, z, m);
  }
  Ops::pack(s.qv, j.cols, j.bits, j.q + r * packed_row_bytes(j.cols, j.bits));
  return kOk;
}

inline int64_t find_nonfinite_scalar(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!is_finite_f32(x[i])) return i;
  return -1;
}

// ---------------------------------------------------------------------------------------------------------------
// Dequantize (scalar; memory-bound)

struct QTensor {
  const uint8_t* q;
  const uint8_t* scales;
  const uint8_t* zeros;
  int64_t rows, cols;
  int bits;
  int64_t group;
  bool f16;
};

inline void dequantize_row(const QTensor& w, int64_t r, float* dst) {
  int64_t rb = packed_row_bytes(w.cols, w.bits);
  int64_t gpr = groups_per_row(w.cols, w.group);
  const uint8_t* qr = w.q + r * rb;
  // 8 / bits values per byte (a power of two): value c is in byte c >> lg, at bit (c & (per − 1)) · bits.
  const int lg = w.bits == 8 ? 0 : w.bits == 4 ? 1 : w.bits == 2 ? 2 : 3;
  const int64_t per = (int64_t)1 << lg;
  unsigned mask = (1u << w.bits) - 1;
  for (int64_t g = 0; g < gpr; g++) {
    float s = load_param(w.scales, r * gpr + g, w.f16);
    float z = load_param(w.zeros, r * gpr + g, w.f16);
    int64_t end = (g + 1) * w.group < w.cols ? (g + 1) * w.group : w.cols;
    for (int64_t c = g * w.group; c < end; c++) {
      unsigned q = (qr[c >> lg] >> ((c & (per - 1)) * w.bits)) & mask;
      float t = (float)q - z;
      dst[c] = t * s;
    }
  }
}

}  // namespace apl
