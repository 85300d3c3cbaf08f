// crc32(): PCLMULQDQ folding for the 16-byte blocks of buffers of 64 bytes or more where the CPU has it, a
// byte-at-a-time table for the rest (see crc32.h).
#include "crc32.h"

#include <vector>

namespace apl {

namespace {

struct Table {
  uint32_t t[256];
  Table() {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
  }
};
const Table kTable;

uint32_t table_state(uint32_t s, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) s = kTable.t[(s ^ p[i]) & 0xff] ^ (s >> 8);
  return s;
}

/** The folding reproduces the table on every length 64..400 (aligned and not) from three states (once). */
bool pclmul_agrees(Crc32Fold fold) {
  std::vector<uint8_t> b(403);
  uint32_t v = 12345;
  for (uint8_t& x : b) x = (uint8_t)((v = v * 1103515245u + 12345u) >> 16);
  for (size_t off : {0, 3})
    for (size_t n = 64; n + off <= b.size(); n += 16)
      for (uint32_t s : {0xffffffffu, 0u, 0x9e3779b9u})
        if (fold(b.data() + off, n, s) != table_state(s, b.data() + off, n)) return false;
  return true;
}

Crc32Fold fast_fold() {
#if defined(__x86_64__) || defined(_M_X64)
  static const Crc32Fold f = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1") &&
                                     crc32_pclmul() && pclmul_agrees(crc32_pclmul())
                                 ? crc32_pclmul()
                                 : nullptr;
  return f;
#else
  return nullptr;
#endif
}

}  // namespace

bool crc32_fast() { return fast_fold() != nullptr; }

uint32_t crc32(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t s = ~crc;
  if (Crc32Fold f = n >= 64 ? fast_fold() : nullptr) {
    const size_t m = n & ~(size_t)15;
    s = f(p, m, s);
    p += m;
    n -= m;
  }
  return ~table_state(s, p, n);
}

}  // namespace apl
