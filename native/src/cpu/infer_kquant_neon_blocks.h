// The block helpers of infer_kquant_neon.h: activation layout, the gather and integer sums of a block,
// s/z decoding, the float combine and the scratch. A private part of that header, included by it alone
// inside its anonymous namespace (after <arm_neon.h>, kquant_ref.h, kKqNeonName and APL_KQN_INLINE).
#pragma once

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

  /** Two rows' planes × two tokens' activations (x, x2): each plane and activation load used twice. */
  static APL_KQN_INLINE void isum_unpacked22(const uint8_t* ua, const uint8_t* ub, const int8_t* x,
                                             const int8_t* x2, int32x4_t& ia, int32x4_t& ib, int32x4_t& ia2,
                                             int32x4_t& ib2) {
    ISum sa, sb, sa2, sb2;
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
      const int8x16_t xv = vld1q_s8(x + 16 * v), xv2 = vld1q_s8(x2 + 16 * v);
      const uint8x16_t pa = vld1q_u8(ua + 16 * v), pb = vld1q_u8(ub + 16 * v);
      sa.add(pa, xv);
      sb.add(pb, xv);
      sa2.add(pa, xv2);
      sb2.add(pb, xv2);
    }
    ia = sa.sums();
    ib = sb.sums();
    ia2 = sa2.sums();
    ib2 = sb2.sums();
  }
};

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
    kq_row_sz(w, r, s, z);
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
