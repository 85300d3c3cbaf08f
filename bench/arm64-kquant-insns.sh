#!/usr/bin/env bash
# Guest instructions the kquant convert kernel executes on arm64 under qemu, NEON against the scalar reference:
# `bash bench/arm64-kquant-insns.sh` (after `npm run test:native:arm64`, whose objects it links). An instruction
# count, NOT a speed: qemu's timings say nothing about an arm64 CPU, and an instruction count ignores latency
# (the metrics' float64 sums are sequential chains in both kernels), issue width and memory. It counts each
# executed translation block's instructions (bench/arm64-insns-lib.sh), quantizing
# 8 × 3072 float32 minus the same run without the quantization.
set -euo pipefail
. "$(dirname "$0")/arm64-insns-lib.sh"
insns_build native/build/arm64/neon kquant_neon.o arm64-kquant-insns
for bits in 4 2; do
  read -r n1 _ < <(insns_net APL_FORCE_SCALAR=0 -- $bits)
  read -r s1 _ < <(insns_net APL_FORCE_SCALAR=1 -- $bits)
  awk -v b=$bits -v n=$n1 -v s=$s1 'BEGIN { printf "kquant %d-bit, 8 x 3072: scalar %d, neon %d instructions (%.0f / %.0f per element): %.2fx fewer\n", b, s, n, s / 24576, n / 24576, s / n }'
done
