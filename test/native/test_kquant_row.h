// test_kquant's checks of the x86 builds' row-level helpers (native/src/cpu/kquant_simd_row.h): the codes'
// eight-group packer against the reference bit writer (kquant.h's kq_pack_codes) for every code width and
// many group counts, into buffers that hold garbage and guard bytes. Included by test_kquant.cc after its
// includes; x86-64 only.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include "../../native/src/cpu/kquant_simd_row.h"

static void test_pack_codes_fast() {
  std::mt19937 rng(13);
  const int64_t counts[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 64, 85, 86, 87, 171, 1000};
  int bad = 0, cases = 0;
  for (int sbits = 1; sbits <= 8; sbits++)
    for (int mbits = 1; mbits <= 8; mbits++) {
      KqParams p{4, 24, 1536, sbits, mbits};
      for (int64_t groups : counts) {
        std::vector<uint8_t> sc((size_t)groups + 1), mc((size_t)groups + 1);
        for (int64_t g = 0; g < groups; g++) {
          sc[(size_t)g] = (uint8_t)(rng() & ((1u << sbits) - 1));
          mc[(size_t)g] = (uint8_t)(rng() & ((1u << mbits) - 1));
        }
        const int64_t bytes = (groups * (sbits + mbits) + 7) / 8, guard = 16;
        std::vector<uint8_t> ref((size_t)(bytes + 2 * guard), 0x00), got((size_t)(bytes + 2 * guard), 0xa5);
        kq_pack_codes(sc.data(), mc.data(), groups, p, ref.data() + guard);
        kq_pack_codes_fast(sc.data(), mc.data(), groups, p, got.data() + guard);
        bool ok = memcmp(ref.data() + guard, got.data() + guard, (size_t)bytes) == 0;
        for (int64_t k = 0; k < guard; k++)
          ok = ok && got[(size_t)k] == 0xa5 && got[(size_t)(guard + bytes + k)] == 0xa5;
        cases++;
        if (!ok) bad++;
        CHECK(ok, "kq_pack_codes_fast sbits %d mbits %d groups %lld", sbits, mbits, (long long)groups);
      }
    }
  printf("kquant: the eight-group codes packer = the reference bit writer on %d cases (%d differ)\n", cases,
         bad);
}

static void test_pack_codes_row() { test_pack_codes_fast(); }
#else
static void test_pack_codes_row() {}
#endif
