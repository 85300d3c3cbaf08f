// NEON inference kernel for kquant weights (arm64), included by two translation units: infer_kquant_neon.cc
// (plain armv8-a, every arm64 CPU: vmlal_s8 products summed in int16) and infer_kquant_neon_dotprod.cc
// (compiled with -march=armv8.2-a+dotprod: vdotq_s32). kq_kernel_for (infer/kquant_linear.cc) pairs them with
// the groupwise `neon` and `neon-dotprod` kernels (infer_neon.h), so the dot-product one runs only where the
// CPU reports the extension. The includer defines APL_KQ_NEON_KERNEL_FN (the function that returns the
// kernel); the function returns nullptr when the kernel fails its self-check against the scalar reference
// (run once), so kq_kernel_for then falls back to the reference, as kq_select_kernel does for the convert
// kernel.
//
// Bit-exact with the scalar reference (infer/kquant_ref.h): integer sums are exact in any order, and the
// float32 combine is the reference's operations in its order, lane by lane (no FMA: -ffp-contract=off).
//
// The scheme is infer_kquant_wide2.h's (AVX2) on 128-bit vectors: 2- and 4-bit rows whose groups are 1–4
// whole 4-byte lanes of packed codes (G·bits a multiple of 32: both presets convert writes, 4-bit g24 and
// 2-bit g16). A block is 4 groups (16·L bytes of codes, L lanes a group); lane j·L + i of the block goes to
// dword j of vector A_i (one vqtbl{2,3,4}q_u8 over the block's loads; none at L = 1), so dword j of every A_i
// belongs to group j, and plane k of A_i ((A_i >> k·bits) & mask) holds, in byte 4j + m, the value of packed
// byte 4(jL + i) + m at plane k. The activations are stored in that order once per token (vector i·per + k,
// per = 8/bits). With the dot-product extension one vdotq_s32 per plane leaves the 4 groups' exact sums in
// the 4 dword lanes; without it vmlal_s8 / vmlal_high_s8 sum the products in int16 (at most 8 planes ·
// 15·127 = 15240 at 4 bits, 16 · 3·127 at 2) and one vpaddq_s16 + vpaddlq_s16 gives the 4 sums (≤ 30480:
// no overflow). Block b's 4 groups are the reference's lanes 4(b % 2) + j: two float32x4 accumulators.
//
// s and z of a block's 4 groups come from one 8-byte read of the code bit stream (4·(sbits + mbits) ≤ 64 bits
// starting at bit 0 or 4 of a byte: 4 only for an odd width, at most 15, so 4 + 60 ≤ 64; any width fits)
// shifted per 64-bit lane (vshlq_u64) and narrowed, then
// masked, converted and multiplied by the super-block's d and dmin (f16_to_f32 once per super-block): the
// reference's f32(d·sc), f32(dmin·mc). That needs the 4 groups in one super-block (groups per super-block a
// multiple of 4); other layouts decode s and z per row in scalar code. The last, partial block (fewer than 4
// groups in the row) is combined in scalar code (kq_combine_group), and the packed codes of a block that
// runs past the row are read from a zero-padded copy (their activations are zero). Decode (one token) runs
// two rows side by side on the packed codes, each activation vector loaded once for both; prompts unpack two
// rows' planes once and reuse them for every token. Other layouts (8 bits, groups that are not whole lanes
// of codes: 2-bit g24, g7) run the reference's code on natural-order activations.
#ifndef APL_KQ_NEON_KERNEL_FN
#error "define APL_KQ_NEON_KERNEL_FN before including infer_kquant_neon.h"
#endif
#include "../infer/kquant_linear.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../infer/kquant_ref.h"

namespace apl {
namespace infer {
// Internal linkage: the two files compile this header with different -march flags.
namespace {

// The block helpers are inlined into the row loops (GCC otherwise keeps the decode lambda out of line).
#define APL_KQN_INLINE inline __attribute__((always_inline))

#if defined(__ARM_FEATURE_DOTPROD)
constexpr const char* kKqNeonName = "neon-dotprod";
#else
constexpr const char* kKqNeonName = "neon";
#endif

/** 4-byte lanes of packed codes per group, or 0 when the block path does not take the layout. */
inline int kqn_lanes(int bits, int64_t group) {
  if (bits != 2 && bits != 4) return 0;
  if (group * bits % 32) return 0;
  const int64_t l = group * bits / 32;
  return l <= 4 ? (int)l : 0;
}

/** Natural order → the block layout, block by block (len: whole blocks of 4 groups). */
inline void kqn_act_layout(const int8_t* nat, int64_t len, int64_t group, int bits, int8_t* xq) {
  const int L = kqn_lanes(bits, group), per = 8 / bits, vpl = 4 * per;  // values per packed lane
  const int64_t blk = 4 * group;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    const int8_t* src = nat + b0;
    int8_t* dst = xq + b0;
    for (int i = 0; i < L; i++)
      for (int k = 0; k < per; k++, dst += 16)
        for (int j = 0; j < 4; j++)
          for (int m = 0; m < 4; m++) dst[4 * j + m] = src[(j * L + i) * vpl + m * per + k];
  }
}

void quantize_act(const float* x, int64_t cols, int64_t group, int bits, int8_t* xq, float* dx,
                  int32_t* xsum) {
  if (!kqn_lanes(bits, group)) {  // natural order (the reference's code)
    act_quantize_ref(x, cols, group, xq, dx, xsum);
    for (int64_t c = cols; c % 32; c++) xq[c] = 0;
    return;
  }
  const int64_t len = (groups_per_row(cols, group) + 3) / 4 * 4 * group;
  thread_local std::vector<int8_t> nat;
  if ((int64_t)nat.size() < len) nat.resize((size_t)len);
  act_quantize_ref(x, cols, group, nat.data(), dx, xsum);
  std::memset(nat.data() + cols, 0, (size_t)(len - cols));
  kqn_act_layout(nat.data(), len, group, bits, xq);
}

/** The 4 groups' integer sums of a block: vdotq_s32, or int16 products and one pairwise reduction. */
struct ISum {
#if defined(__ARM_FEATURE_DOTPROD)
  int32x4_t s = vdupq_n_s32(0);
  APL_KQN_INLINE void add(uint8x16_t q, int8x16_t x) { s = vdotq_s32(s, vreinterpretq_s8_u8(q), x); }
  APL_KQN_INLINE int32x4_t sums() const { return s; }
#else
  int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
  APL_KQN_INLINE void add(uint8x16_t q, int8x16_t x) {
    const int8x16_t qs = vreinterpretq_s8_u8(q);
    lo = vmlal_s8(lo, vget_low_s8(qs), vget_low_s8(x));
    hi = vmlal_high_s8(hi, qs, x);
  }
  APL_KQN_INLINE int32x4_t sums() const { return vpaddlq_s16(vpaddq_s16(lo, hi)); }
#endif
};

/** The byte indices of vqtbl: A_i's byte 4j + m is byte 4(jL + i) + m of the block. */
struct Gather {
  uint8x16_t idx[4];
  explicit Gather(int L) {
    for (int i = 0; i < 4; i++) {
      uint8_t t[16];
      for (int j = 0; j < 4; j++)
        for (int m = 0; m < 4; m++) t[4 * j + m] = (uint8_t)(4 * (j * L + i) + m);
      idx[i] = vld1q_u8(t);
    }
  }
};

template <int BITS, int L>
struct KqBlk {
  static constexpr int PER = 8 / BITS;
  static constexpr int NV = L * PER;  // 16-byte vectors per block

  static APL_KQN_INLINE void gather(const uint8_t* p, const Gather& gi, uint8x16_t* a) {
    if constexpr (L == 1) {
      a[0] = vld1q_u8(p);
    } else if constexpr (L == 2) {
      const uint8x16x2_t t = vld1q_u8_x2(p);  // a register tuple loaded in place (no copy through the stack)
      a[0] = vqtbl2q_u8(t, gi.idx[0]);
      a[1] = vqtbl2q_u8(t, gi.idx[1]);
    } else if constexpr (L == 3) {
      const uint8x16x3_t t = vld1q_u8_x3(p);
      a[0] = vqtbl3q_u8(t, gi.idx[0]);
      a[1] = vqtbl3q_u8(t, gi.idx[1]);
      a[2] = vqtbl3q_u8(t, gi.idx[2]);
    } else {
      const uint8x16x4_t t = vld1q_u8_x4(p);
      a[0] = vqtbl4q_u8(t, gi.idx[0]);
      a[1] = vqtbl4q_u8(t, gi.idx[1]);
      a[2] = vqtbl4q_u8(t, gi.idx[2]);
      a[3] = vqtbl4q_u8(t, gi.idx[3]);
    }
  }

  static APL_KQN_INLINE uint8x16_t plane(uint8x16_t v, int k) {
    if constexpr (BITS == 4) return k == 0 ? vandq_u8(v, vdupq_n_u8(0x0f)) : vshrq_n_u8(v, 4);
    switch (k) {
      case 0:
        return vandq_u8(v, vdupq_n_u8(3));
      case 1:
        return vandq_u8(vshrq_n_u8(v, 2), vdupq_n_u8(3));
      case 2:
        return vandq_u8(vshrq_n_u8(v, 4), vdupq_n_u8(3));
      default:
        return vshrq_n_u8(v, 6);
    }
  }

  /** Two rows' blocks (packed codes at pa, pb) against one token's block of activations x. */
  static APL_KQN_INLINE void isum_packed2(const uint8_t* pa, const uint8_t* pb, const Gather& gi,
                                          const int8_t* x, int32x4_t& ia, int32x4_t& ib) {
    uint8x16_t a[L], b[L];
    gather(pa, gi, a);
    gather(pb, gi, b);
    ISum sa, sb;
#pragma GCC unroll 16
    for (int i = 0; i < L; i++)
#pragma GCC unroll 16
      for (int k = 0; k < PER; k++) {
        const int8x16_t xv = vld1q_s8(x + 16 * (i * PER + k));
        sa.add(plane(a[i], k), xv);
        sb.add(plane(b[i], k), xv);
      }
    ia = sa.sums();
    ib = sb.sums();
  }

  /** The block's planes, NV × 16 bytes (the activations' layout). */
  static APL_KQN_INLINE void unpack(const uint8_t* p, const Gather& gi, uint8_t* u) {
    uint8x16_t a[L];
    gather(p, gi, a);
#pragma GCC unroll 16
    for (int i = 0; i < L; i++)
#pragma GCC unroll 16
      for (int k = 0; k < PER; k++) vst1q_u8(u + 16 * (i * PER + k), plane(a[i], k));
  }

  static APL_KQN_INLINE void isum_unpacked2(const uint8_t* ua, const uint8_t* ub, const int8_t* x,
                                            int32x4_t& ia, int32x4_t& ib) {
    ISum sa, sb;
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
      const int8x16_t xv = vld1q_s8(x + 16 * v);
      sa.add(vld1q_u8(ua + 16 * v), xv);
      sb.add(vld1q_u8(ub + 16 * v), xv);
    }
    ia = sa.sums();
    ib = sb.sums();
  }
};

/** Row r's s and z per group (the values kq_group_sz gives), the code bit stream read sequentially. */
void kqn_decode_sz_scalar(const Linear& w, int64_t r, float* s, float* z) {
  const int64_t gpr = w.gpr(), nsb = kq_supers(w), gps = w.kq_super / w.group;
  const uint8_t* cr = w.codes + r * kq_codes_row_bytes(w);
  const int width = w.kq_sbits + w.kq_mbits, sbits = w.kq_sbits;
  const uint32_t smask = (1u << w.kq_sbits) - 1, mmask = (1u << w.kq_mbits) - 1;
  uint64_t acc = 0;
  int nb = 0;
  for (int64_t b = 0; b < nsb; b++) {
    uint16_t dh, mh;
    std::memcpy(&dh, w.kd + (r * nsb + b) * 2, 2);
    std::memcpy(&mh, w.kdmin + (r * nsb + b) * 2, 2);
    const float d = f16_to_f32(dh), dm = f16_to_f32(mh);
    for (int64_t g = b * gps, ge = std::min(gpr, g + gps); g < ge; g++) {
      while (nb < width) {
        acc |= (uint64_t)*cr++ << nb;
        nb += 8;
      }
      const uint32_t v = (uint32_t)acc;
      acc >>= width;
      nb -= width;
      s[g] = d * (float)(v & smask);
      z[g] = dm * (float)((v >> sbits) & mmask);
    }
  }
}

/** Per call: the code fields' shifts and masks, and whether the block decode applies. */
struct KqnCodes {
  int width = 0;
  int64_t cb = 0, nsb = 0, bps = 0;  // code bytes a row, super-blocks a row, blocks a super-block
  bool fast = false;
  int64x2_t sh01, sh23;
  int32x4_t nsbits;
  uint32x4_t smask, mmask;
  explicit KqnCodes(const Linear& w) {
    width = w.kq_sbits + w.kq_mbits;
    cb = kq_codes_row_bytes(w);
    nsb = kq_supers(w);
    const int64_t gps = w.kq_super / w.group;
    fast = gps % 4 == 0;
    bps = gps / 4;
    const int64_t s01[2] = {0, -width}, s23[2] = {-2 * width, -3 * width};
    sh01 = vld1q_s64(s01);
    sh23 = vld1q_s64(s23);
    nsbits = vdupq_n_s32(-w.kq_sbits);
    smask = vdupq_n_u32((1u << w.kq_sbits) - 1);
    mmask = vdupq_n_u32((1u << w.kq_mbits) - 1);
  }
};

/** Row r's d and dmin in float32, one pair per super-block, and its last code bytes zero padded (scratch
 * `slot`), so that a block's read past the row's code bytes needs no call. */
struct RowD {
  const uint8_t* cr;
  const float* dv;
  const float* mv;
  const uint8_t* ctail;  // bytes [cstart, cb) of the row's codes, then zeros (24 bytes)
  int64_t cstart;
};
inline RowD kqn_row_d(const Linear& w, const KqnCodes& c, int64_t r, int slot) {
  thread_local std::vector<float> tls[4];
  thread_local uint8_t tail[2][24];
  std::vector<float>& dv = tls[2 * slot];
  std::vector<float>& mv = tls[2 * slot + 1];
  if ((int64_t)dv.size() < c.nsb) {
    dv.resize((size_t)c.nsb);
    mv.resize((size_t)c.nsb);
  }
  for (int64_t b = 0; b < c.nsb; b++) {
    uint16_t dh, mh;
    std::memcpy(&dh, w.kd + (r * c.nsb + b) * 2, 2);
    std::memcpy(&mh, w.kdmin + (r * c.nsb + b) * 2, 2);
    dv[(size_t)b] = f16_to_f32(dh);
    mv[(size_t)b] = f16_to_f32(mh);
  }
  const uint8_t* cr = w.codes + r * c.cb;
  const int64_t cstart = c.cb > 16 ? c.cb - 16 : 0;
  std::memset(tail[slot], 0, sizeof tail[slot]);
  std::memcpy(tail[slot], cr + cstart, (size_t)(c.cb - cstart));
  return RowD{cr, dv.data(), mv.data(), tail[slot], cstart};
}

/** s and z of block b's 4 groups (c.fast; lanes past the row are don't-care) in super-block sb. */
APL_KQN_INLINE void kqn_block_sz(const KqnCodes& c, const RowD& rd, int64_t b, int64_t sb, float32x4_t& s,
                                 float32x4_t& z) {
  uint32x4_t f;
  if (c.width == 8) {  // one byte a group (the 2-bit preset's 4 + 4)
    const int64_t off = b * 4;
    uint32_t u;
    // the block's first field lies in the row (off < cb); past cb - 4, the padded copy (off − cstart ≤ 19)
    std::memcpy(&u, off + 4 <= c.cb ? rd.cr + off : rd.ctail + (off - rd.cstart), 4);
    f = vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(u)))));
  } else {
    const int64_t bit = b * 4 * c.width, off = bit >> 3;
    uint64_t u;
    std::memcpy(&u, off + 8 <= c.cb ? rd.cr + off : rd.ctail + (off - rd.cstart), 8);  // off − cstart ≤ 16
    const uint64x2_t v = vdupq_n_u64(u >> (bit & 7));
    f = vcombine_u32(vmovn_u64(vshlq_u64(v, c.sh01)), vmovn_u64(vshlq_u64(v, c.sh23)));
  }
  const float32x4_t sc = vcvtq_f32_u32(vandq_u32(f, c.smask));
  const float32x4_t mc = vcvtq_f32_u32(vandq_u32(vshlq_u32(f, c.nsbits), c.mmask));
  s = vmulq_f32(vdupq_n_f32(rd.dv[sb]), sc);
  z = vmulq_f32(vdupq_n_f32(rd.mv[sb]), mc);
}

/** Row r's s and z for blocks [0, nblk) (4 per block; entries past the row are zero or don't-care). */
inline void kqn_decode_sz(const Linear& w, const KqnCodes& c, int64_t r, int64_t nblk, float* s, float* z) {
  if (!c.fast) {
    kqn_decode_sz_scalar(w, r, s, z);
    for (int64_t g = w.gpr(); g < nblk * 4; g++) s[g] = z[g] = 0.0f;
    return;
  }
  const RowD rd = kqn_row_d(w, c, r, 0);
  int64_t sb = 0, inb = 0;
  for (int64_t b = 0; b < nblk; b++) {
    float32x4_t sv, zv;
    kqn_block_sz(c, rd, b, sb, sv, zv);
    vst1q_f32(s + 4 * b, sv);
    vst1q_f32(z + 4 * b, zv);
    if (++inb == c.bps) {
      inb = 0;
      sb++;
    }
  }
}

/** kq_combine_group for a block's 4 groups, in the reference's order. */
APL_KQN_INLINE float32x4_t kqn_combine(float32x4_t acc, int32x4_t isum, float32x4_t s, float32x4_t z,
                                       const float* dx, const int32_t* xs) {
  const float32x4_t a = vcvtq_f32_s32(isum);
  const float32x4_t xv = vcvtq_f32_s32(vld1q_s32(xs));
  const float32x4_t u = vmulq_f32(s, a);
  const float32x4_t v = vmulq_f32(z, xv);
  const float32x4_t term = vmulq_f32(vld1q_f32(dx), vsubq_f32(u, v));
  return vaddq_f32(acc, term);
}

/** The row's 8 lanes (two accumulators), the last partial block's groups in scalar code, reduced. */
inline float kqn_finish(float32x4_t acc0, float32x4_t acc1, int64_t full, int rem, int32x4_t is,
                        float32x4_t s, float32x4_t z, const float* dx, const int32_t* xs) {
  float lanes[8];
  vst1q_f32(lanes, acc0);
  vst1q_f32(lanes + 4, acc1);
  if (rem) {
    int32_t iv[4];
    float sv[4], zv[4];
    vst1q_s32(iv, is);
    vst1q_f32(sv, s);
    vst1q_f32(zv, z);
    for (int j = 0; j < rem; j++) {
      const int64_t g = full * 4 + j;
      kq_combine_group(lanes, g, iv[j], sv[j], zv[j], dx[g], xs[g]);
    }
  }
  return reduce8(lanes);
}

/** Per-row scratch of one thread. */
struct KqnScratch {
  std::vector<float> s, z;
  std::vector<uint8_t> u;  // prompts: two rows' planes
  uint8_t tail[64], tail2[64];
};

template <int BITS, int L>
void kqn_rows(const Linear& w, int64_t r0, int64_t r1, const ActQ& act, int64_t t0, int64_t t1, float* y,
              int64_t ystride) {
  using K = KqBlk<BITS, L>;
  const int64_t gpr = w.gpr(), nblk = (gpr + 3) / 4, full = gpr / 4, rb = w.row_bytes(), bbytes = 16 * L;
  const int64_t ublk = 16 * K::NV, qfull = rb / bbytes;  // blocks [0, qfull) lie inside the row
  const int rem = (int)(gpr % 4);
  const Gather gi(L);
  const KqnCodes c(w);
  thread_local KqnScratch sc;
  // a block past the row's packed codes: a zero-padded copy (its activations are zero)
  auto tails = [&](const uint8_t* qa, const uint8_t* qb) {
    if (qfull >= nblk) return;
    std::memset(sc.tail, 0, sizeof sc.tail);
    std::memcpy(sc.tail, qa + qfull * bbytes, (size_t)(rb - qfull * bbytes));
    std::memset(sc.tail2, 0, sizeof sc.tail2);
    std::memcpy(sc.tail2, qb + qfull * bbytes, (size_t)(rb - qfull * bbytes));
  };
  if (t1 - t0 == 1 && c.fast) {  // decode: two rows side by side on the packed codes
    const int8_t* x = act.xq_of(t0);
    const float* dx = act.dx_of(t0);
    const int32_t* xs = act.xsum_of(t0);
    for (int64_t r = r0; r < r1; r += 2) {
      const int64_t r2 = r + 1 < r1 ? r + 1 : r;  // an odd row count: the last row twice, written once
      const uint8_t* qa = w.q + r * rb;
      const uint8_t* qb = w.q + r2 * rb;
      const RowD da = kqn_row_d(w, c, r, 0), db = kqn_row_d(w, c, r2, 1);
      tails(qa, qb);
      // named accumulators (block b adds to lanes 4(b % 2) + j): blocks two at a time
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      float32x4_t sa = a0, za = a0, sb = a0, zb = a0;
      int64_t sup = 0, inb = 0;
      auto block = [&](int64_t b) __attribute__((always_inline)) {
        kqn_block_sz(c, da, b, sup, sa, za);
        kqn_block_sz(c, db, b, sup, sb, zb);
        if (++inb == c.bps) {
          inb = 0;
          sup++;
        }
        const bool in = b < qfull;
        K::isum_packed2(in ? qa + b * bbytes : sc.tail, in ? qb + b * bbytes : sc.tail2, gi, x + b * ublk, ia,
                        ib);
      };
      int64_t b = 0;
      for (; b + 2 <= full; b += 2) {
        block(b);
        a0 = kqn_combine(a0, ia, sa, za, dx + 4 * b, xs + 4 * b);
        b0 = kqn_combine(b0, ib, sb, zb, dx + 4 * b, xs + 4 * b);
        block(b + 1);
        a1 = kqn_combine(a1, ia, sa, za, dx + 4 * b + 4, xs + 4 * b + 4);
        b1 = kqn_combine(b1, ib, sb, zb, dx + 4 * b + 4, xs + 4 * b + 4);
      }
      if (b < full) {  // b is even
        block(b);
        a0 = kqn_combine(a0, ia, sa, za, dx + 4 * b, xs + 4 * b);
        b0 = kqn_combine(b0, ib, sb, zb, dx + 4 * b, xs + 4 * b);
        b++;
      }
      if (b < nblk) block(b);  // the partial block: combined in kqn_finish
      y[t0 * ystride + r] = kqn_finish(a0, a1, full, rem, ia, sa, za, dx, xs);
      if (r2 != r) y[t0 * ystride + r2] = kqn_finish(b0, b1, full, rem, ib, sb, zb, dx, xs);
    }
    return;
  }
  // prompts (and rows whose s and z need the scalar decode): two rows at a time, their planes unpacked once
  // for every token, each token's activations read once for both rows
  if ((int64_t)sc.s.size() < 2 * nblk * 4) {
    sc.s.resize((size_t)(2 * nblk * 4));
    sc.z.resize((size_t)(2 * nblk * 4));
  }
  if ((int64_t)sc.u.size() < 2 * nblk * ublk) sc.u.resize((size_t)(2 * nblk * ublk));
  float *s = sc.s.data(), *z = sc.z.data(), *s2 = s + nblk * 4, *z2 = z + nblk * 4;
  uint8_t *ua = sc.u.data(), *ub = ua + nblk * ublk;
  for (int64_t r = r0; r < r1; r += 2) {
    const int64_t r2 = r + 1 < r1 ? r + 1 : r;
    const uint8_t* qa = w.q + r * rb;
    const uint8_t* qb = w.q + r2 * rb;
    kqn_decode_sz(w, c, r, nblk, s, z);
    kqn_decode_sz(w, c, r2, nblk, s2, z2);
    tails(qa, qb);
    for (int64_t b = 0; b < nblk; b++) {
      K::unpack(b < qfull ? qa + b * bbytes : sc.tail, gi, ua + b * ublk);
      K::unpack(b < qfull ? qb + b * bbytes : sc.tail2, gi, ub + b * ublk);
    }
    for (int64_t t = t0; t < t1; t++) {
      const int8_t* x = act.xq_of(t);
      const float* dx = act.dx_of(t);
      const int32_t* xs = act.xsum_of(t);
      float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      auto comb = [&](int64_t b, float32x4_t & pa, float32x4_t & pb) __attribute__((always_inline)) {
        K::isum_unpacked2(ua + b * ublk, ub + b * ublk, x + b * ublk, ia, ib);
        pa = kqn_combine(pa, ia, vld1q_f32(s + 4 * b), vld1q_f32(z + 4 * b), dx + 4 * b, xs + 4 * b);
        pb = kqn_combine(pb, ib, vld1q_f32(s2 + 4 * b), vld1q_f32(z2 + 4 * b), dx + 4 * b, xs + 4 * b);
      };
      int64_t b = 0;
      for (; b + 2 <= full; b += 2) {
        comb(b, a0, b0);
        comb(b + 1, a1, b1);
      }
      if (b < full) comb(b++, a0, b0);  // b is even
      if (b < nblk) K::isum_unpacked2(ua + b * ublk, ub + b * ublk, x + b * ublk, ia, ib);
      const int64_t lb = full * 4;  // the partial block's s and z (zero past the row when rem is 0: unused)
      y[t * ystride + r] = kqn_finish(a0, a1, full, rem, ia, vld1q_f32(s + (rem ? lb : 0)),
                                      vld1q_f32(z + (rem ? lb : 0)), dx, xs);
      if (r2 != r)
        y[t * ystride + r2] = kqn_finish(b0, b1, full, rem, ib, vld1q_f32(s2 + (rem ? lb : 0)),
                                         vld1q_f32(z2 + (rem ? lb : 0)), dx, xs);
    }
  }
}

void qrows(const Linear& w, int64_t r0, int64_t r1, const ActQ& a, int64_t t0, int64_t t1, float* y,
           int64_t ystride) {
  const int L = kqn_lanes(w.bits, w.group);
  if (w.bits == 4) {
    if (L == 1) return kqn_rows<4, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) return kqn_rows<4, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) return kqn_rows<4, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) return kqn_rows<4, 4>(w, r0, r1, a, t0, t1, y, ystride);
  } else if (w.bits == 2) {
    if (L == 1) return kqn_rows<2, 1>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 2) return kqn_rows<2, 2>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 3) return kqn_rows<2, 3>(w, r0, r1, a, t0, t1, y, ystride);
    if (L == 4) return kqn_rows<2, 4>(w, r0, r1, a, t0, t1, y, ystride);
  }
  for (int64_t r = r0; r < r1; r++)
    for (int64_t t = t0; t < t1; t++)
      y[t * ystride + r] = kq_qdot_ref(w, r, a.xq_of(t), a.dx_of(t), a.xsum_of(t));
}

/**
 * The self-check run once before the kernel is handed out: both presets (and a layout whose s and z take the
 * scalar decode) on odd shapes (partial last blocks, a super-block change, odd row counts), 1 and 3 tokens,
 * bit for bit against the scalar kquant kernel.
 */
bool kqn_self_check(const KqKernel& k) {
  struct Case {
    int bits, group, super, sbits, mbits;
    int64_t rows, cols;
  };
  static const Case cases[] = {
      {4, 24, 1536, 5, 6, 3, 1600}, {2, 16, 256, 4, 4, 5, 300}, {4, 32, 96, 6, 6, 3, 203}};
  uint32_t st = 12345u;
  auto rnd = [&st]() {
    st = st * 1664525u + 1013904223u;
    return st >> 8;
  };
  for (const Case& cs : cases) {
    Linear w;
    w.kind = 2;
    w.rows = cs.rows;
    w.cols = cs.cols;
    w.bits = cs.bits;
    w.group = cs.group;
    w.kq_group = cs.group;
    w.kq_super = cs.super;
    w.kq_sbits = cs.sbits;
    w.kq_mbits = cs.mbits;
    std::vector<uint8_t> q((size_t)(w.rows * w.row_bytes())), codes((size_t)(w.rows * kq_codes_row_bytes(w)));
    std::vector<uint8_t> d((size_t)(w.rows * kq_supers(w) * 2)), dm(d.size());
    for (auto& v : q) v = (uint8_t)rnd();
    for (auto& v : codes) v = (uint8_t)rnd();
    for (size_t i = 0; i < d.size(); i += 2) {
      const uint16_t h = (uint16_t)(0x1c00 + rnd() % 0x0800), hm = (uint16_t)(0x2000 + rnd() % 0x0800);
      std::memcpy(&d[i], &h, 2);
      std::memcpy(&dm[i], &hm, 2);
    }
    w.q = q.data();
    w.codes = codes.data();
    w.kd = d.data();
    w.kdmin = dm.data();
    for (int64_t n : {1, 3}) {
      std::vector<float> x((size_t)(n * w.cols));
      for (auto& v : x) v = (float)((int32_t)(rnd() % 20001) - 10000) * 1e-4f;
      const KqKernel* ks[2] = {&kq_scalar_kernel(), &k};
      std::vector<float> y[2];
      for (int i = 0; i < 2; i++) {
        ActQ act;
        act.resize(n, w.cols, w.group);
        act.xstride = (std::max(w.cols, kq_blocked_len(w.cols, w.group)) + 63) / 64 * 64;
        act.xq.assign((size_t)(n * act.xstride + 64), 0);
        for (int64_t t = 0; t < n; t++)
          ks[i]->quantize_act(x.data() + t * w.cols, w.cols, w.group, w.bits, act.xq_at(t),
                              act.dx.data() + t * act.gstride, act.xsum.data() + t * act.gstride);
        y[i].assign((size_t)(n * w.rows), 0.0f);
        ks[i]->qrows(w, 0, w.rows, act, 0, n, y[i].data(), w.rows);
      }
      if (std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) != 0) return false;
    }
  }
  return true;
}

}  // namespace

const KqKernel* APL_KQ_NEON_KERNEL_FN() {
  static const KqKernel k{kKqNeonName, quantize_act, qrows};
  static const bool ok = kqn_self_check(k);
  return ok ? &k : nullptr;
}

}  // namespace infer
}  // namespace apl
#else
namespace apl {
namespace infer {
const KqKernel* APL_KQ_NEON_KERNEL_FN() { return nullptr; }
}  // namespace infer
}  // namespace apl
#endif
