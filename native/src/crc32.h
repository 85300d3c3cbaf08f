// CRC-32 of the zip format (zlib's crc32), for the NPZ writer's members: PCLMULQDQ folding where the CPU has
// it (cpu/crc32_pclmul.cc, ~10× the table-driven zlib that Node links on some systems), a byte table
// elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace apl {

/** zlib's crc32(crc, p, n): the CRC-32 of n bytes continuing from crc (0 to start). */
uint32_t crc32(uint32_t crc, const uint8_t* p, size_t n);
/** Whether crc32() folds with PCLMULQDQ here (the CPU has it and it reproduces the table on a self-check). */
bool crc32_fast();
/**
 * cpu/crc32_pclmul.cc: folds n bytes (n ≥ 64, a multiple of 16) into the bit-reflected state s (not
 * complemented: crc32() does that) and returns the new state; nullptr off x86-64.
 */
using Crc32Fold = uint32_t (*)(const uint8_t* p, size_t n, uint32_t s);
Crc32Fold crc32_pclmul();

}  // namespace apl
